"""`mmaudit clock ...`: clock compliance check, live watch, and a NIC's timestamping abilities.

Thin: parse options, call audit/, print. Exit status of `check` is 0 only when compliant.
"""
from __future__ import annotations

import json
import time

import click

from audit.errors import AuditError, HwTimestampingUnsupported
from audit.health import PROFILES, HealthConfig, HealthTracker
from audit.metrics_http import MetricsServer, parse_listen
from audit.monitor import ClockMonitor
from audit.nic import ethtool_timestamping, get_hw_timestamping
from audit.pmc import DEFAULT_UDS, PmcClient, PmcSession
from audit.sampler import PmcSampler
from cli.params import phc_device as checked_phc


# the servo logs a monitor can follow besides pmc (also `mmaudit run`'s, with --ptp-uds)
LOG_OPTIONS = [
    click.option("--phc2sys-log", default=None, type=click.Path(exists=True, dir_okay=False),
                 help="phc2sys log to follow: its offset joins the bound; unlocked blocks LOCKED."),
    click.option("--ptp4l-log", default=None, type=click.Path(exists=True, dir_okay=False),
                 help="ptp4l log (-m output or syslog) to follow: a jump it logs between two pmc "
                      "samples counts, and s0/s1 is not settled."),
]


def _health_options(fn):
    options = [
        click.option("--uds", default=DEFAULT_UDS, show_default=True, help="ptp4l's UDS socket (uds_address)."),
        click.option("--free-running", is_flag=True,
                     help="ptp4l is a verifier (free_running 1): judge lock by steady samples, not SLAVE."),
        click.option("--asymmetry-budget-ns", type=click.IntRange(min=0), default=1_000, show_default=True,
                     help="Un-observable path asymmetry to add to the error bound."),
        click.option("--max-sync-age", type=click.FloatRange(min=0), default=2.0, show_default=True,
                     help="Seconds after which the last Sync is stale."),
        click.option("--pmc-timeout", type=click.FloatRange(min=0.1), default=3.0, show_default=True,
                     help="Seconds one pmc run may take."),
        click.option("--phc", "phc_device", default=None, callback=lambda ctx, param, value: checked_phc(value),
                     help="PHC device for hardware timestamping, a PTP hardware clock such as /dev/ptp0 "
                          "(default: found with ethtool -T)."),
        click.option("--pmc-session", is_flag=True,
                     help="Keep one interactive pmc running instead of one pmc per sample (faster; "
                          "single-port clocks)."),
        *LOG_OPTIONS,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _monitor(ctx: click.Context, uds, free_running, asymmetry_budget_ns, max_sync_age, pmc_timeout,
             phc_device, pmc_session, phc2sys_log, ptp4l_log) -> ClockMonitor:
    config = HealthConfig(asymmetry_budget_ns=asymmetry_budget_ns, free_running=free_running,
                          max_sync_age_ns=int(max_sync_age * 1e9))
    client = PmcSession(uds, timeout_s=pmc_timeout) if pmc_session else PmcClient(uds, timeout_s=pmc_timeout)
    sampler = PmcSampler(client, phc_device, phc2sys_log, ptp4l_log=ptp4l_log)
    ctx.call_on_close(sampler.close)
    if pmc_session:
        ctx.call_on_close(client.close)
    return ClockMonitor(sampler, HealthTracker(config), labels={"uds": uds})


def _summary(sample) -> str:
    bound = "unbounded" if sample.error_bound_ns < 0 else f"{sample.error_bound_ns / 1000:.3f} us"
    return (f"{sample.state.name:8s} port {sample.port_state or '?':12s} offset {sample.offset_ns / 1000:+.3f} us "
            f"delay {sample.path_delay_ns / 1000:.3f} us bound {bound} gm {sample.gm_identity or '?'} "
            f"class {sample.gm_clock_class}")


@click.group(name="clock")
def command() -> None:
    """Clock evidence: PTP health against RTS 25 / CAT profiles, NIC timestamping.

    Example: mmaudit clock check --profile eu-hft --uds /var/run/ptp4l
    """


@command.command("check")
@click.option("--profile", "profile_name", type=click.Choice(sorted(PROFILES)), default="eu-hft",
              show_default=True, help="Regulatory profile to judge against.")
@click.option("--samples", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Samples to take (a verifier needs several to show a steady offset).")
@click.option("--interval", type=click.FloatRange(0, 60), default=0.5, show_default=True,
              help="Seconds between samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@_health_options
@click.pass_context
def check(ctx, profile_name, samples, interval, as_json, **health) -> None:
    """Judge the clock now; exit status 1 (with the reasons) when it is not compliant.

    Example: mmaudit clock check --profile eu-algo --uds /var/run/ptp4l --free-running
    """
    monitor = _monitor(ctx, **health)
    sample = None
    for i in range(samples):
        if i:
            time.sleep(interval)
        sample = monitor.sample_once()
    verdict = sample.verdicts[profile_name]
    if as_json:
        click.echo(json.dumps({
            "profile": profile_name, "compliant": verdict.compliant, "state": sample.state.name,
            "offset_ns": sample.offset_ns, "error_bound_ns": sample.error_bound_ns,
            "reasons": [{"code": r.code, "text": r.text} for r in verdict.reasons],
        }, indent=2))
    else:
        click.echo(_summary(sample))
        click.echo(f"{profile_name}: {'COMPLIANT' if verdict.compliant else 'NOT COMPLIANT'}")
        for reason in verdict.reasons:
            click.echo(f"  - {reason}")
    if not verdict.compliant:
        raise click.exceptions.Exit(1)


@command.command("watch")
@click.option("--count", type=click.IntRange(1, 1_000_000), default=10, show_default=True,
              help="Number of samples before exiting.")
@click.option("--interval", type=click.FloatRange(0, 3600), default=1.0, show_default=True,
              help="Seconds between samples.")
@click.option("--prometheus", is_flag=True, help="Print Prometheus text exposition instead of lines.")
@click.option("--listen", default=None, metavar="[HOST:]PORT",
              help="Also serve the latest sample's Prometheus text at http://HOST:PORT/metrics while "
                   "watching (host 127.0.0.1 when left out); 503 before the first sample and once "
                   "the samples stop.")
@_health_options
@click.pass_context
def watch(ctx, count, interval, prometheus, listen, **health) -> None:
    """Live view of clock health, one line per sample, bounded by --count.

    Example: mmaudit clock watch --count 5 --interval 1
    """
    # stale once two samples in a row are overdue (each takes at most the pmc timeout)
    server = (metrics_server(ctx, listen, "--listen", 2 * (interval + health["pmc_timeout"]) + 1, "clock metrics")
              if listen else None)
    monitor = _monitor(ctx, **health)
    for i in range(count):
        if i:
            time.sleep(interval)
        sample = monitor.sample_once()
        text = monitor.prometheus() if server is not None or prometheus else ""
        if server is not None:
            server.publish(text)
        if prometheus:
            click.echo(text)
        else:
            flags = " ".join(f"{name}={'ok' if v.compliant else 'FAIL'}" for name, v in sample.verdicts.items())
            click.echo(f"{_summary(sample)} {flags}")


def metrics_server(ctx: click.Context, listen: str, option: str, stale_after_s: float, served: str,
                   **names) -> MetricsServer:
    """A scrape endpoint (`watch --listen`, `run --metrics-listen`), closed with the command
    (however it ends); its address on stderr. A bad address or one in use is a usage error
    naming `option`. `names`: MetricsServer's what/who, for its 503 answers."""
    try:
        host, port = parse_listen(listen, option)
        server = MetricsServer(host, port, stale_after_s=stale_after_s, **names)
    except AuditError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    ctx.call_on_close(server.close)
    bound_host, bound_port = server.address
    click.echo(f"serving {served} at http://{bound_host}:{bound_port}/metrics", err=True)
    return server


@command.command("nic")
@click.argument("iface")
def nic(iface) -> None:
    """Show an interface's timestamping capabilities (ethtool -T) and whether NIC stamping is on.

    Example: mmaudit clock nic eth0
    """
    try:
        caps = ethtool_timestamping(iface)
    except AuditError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"interface: {caps.interface}")
    click.echo(f"capabilities: {', '.join(caps.capabilities) or 'none'}")
    click.echo(f"PTP hardware clock: {caps.phc_device or 'none'}")
    click.echo(f"hardware TX modes: {', '.join(caps.tx_modes) or 'none'}")
    click.echo(f"hardware RX filters: {', '.join(caps.rx_filters) or 'none'}")
    click.echo(f"hardware timestamping capable: {'yes' if caps.hardware_capable else 'no'}")
    try:
        current = get_hw_timestamping(iface)
        click.echo(f"hardware timestamping: {'on' if current.enabled else 'off'} ({current.describe()})")
    except HwTimestampingUnsupported:
        click.echo("hardware timestamping: off (not supported by the driver)")
    except AuditError as exc:
        click.echo(f"hardware timestamping: unknown ({exc})")
