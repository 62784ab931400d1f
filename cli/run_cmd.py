"""`mmaudit run`: one trading session — venue, engine, risk gateway, journal, clock monitor.

Thin: parse options, build mm_core.session settings, print a progress line a second and a summary
table. Session errors (venue unreachable, bad config or limits, journal locked, pmc missing)
become one ClickException line. Also holds the option and output helpers `mmaudit demo` shares.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import pathlib
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

import click

from audit.health import PROFILES
from cli.clock_cmd import LOG_OPTIONS, metrics_server
from cli.metrics_rows import metrics_rows, money
from cli.operator_cmd import CONTROL_NAME
from cli.params import byte_size, phc_device as checked_phc
from cli.run_resume import resumer
from audit.rxbuffer import MAX_RCVBUF, MIN_RCVBUF
from journal import JournalError, Reader
from mm_core.cpuplan import CpuPlanError, check_cpu
from mm_core.session import Session
from mm_core.sessionsetup import joined_group
from mm_core.sessionconfig import (
    ClockSpec,
    JournalInUse,
    MAX_CLOSE_OUT_S,
    MAX_SESSION_S,
    Progress,
    SessionError,
    SessionSettings,
    SessionSummary,
    VenueSpec,
    load_inputs,
)
from mm_core.venue.errors import ConfigError as VenueConfigError
from recovery.midsession import LiveReconciler
from mm_core.venue.process import parse_duration


def seconds(text: str, option: str = "--duration") -> float:
    """A duration option (--duration by default): at most MAX_SESSION_S, checked before anything is made."""
    try:
        return parse_duration(text, MAX_SESSION_S)
    except VenueConfigError as exc:
        raise click.BadParameter(exc.problem, param_hint=option) from None


def close_out_seconds(text: str) -> float:
    """--close-out: a positive duration of at most MAX_CLOSE_OUT_S, a usage error otherwise."""
    try:
        value = parse_duration(text, math.inf)
    except VenueConfigError as exc:
        raise click.BadParameter(exc.problem, param_hint="--close-out") from None
    if not value <= MAX_CLOSE_OUT_S:    # infinity too
        raise click.BadParameter(f"{text.strip()[:40]!r} is longer than the close-out may wait, "
                                 f"{MAX_CLOSE_OUT_S:g} s", param_hint="--close-out")
    return value


_MAX_WARM_NS = 1_000_000_000


def interval_ns(text: str) -> int:
    """--warm-interval: "0" (off) or a duration such as 250us, 1ms, 0.5ms."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)?\s*", text)
    if match is None or (float(match.group(1)) > 0 and match.group(2) is None):
        raise click.BadParameter(f"{text!r} is not 0 or an interval like 250us, 1ms", param_hint="--warm-interval")
    ns = float(match.group(1)) * {"us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, None: 0}[match.group(2)]
    if not ns <= _MAX_WARM_NS:          # infinity too (a 400-digit value), which round() cannot take
        raise click.BadParameter(f"{text.strip()[:40]!r} is over 1s: a shadow step that rare keeps nothing warm",
                                 param_hint="--warm-interval")
    ns = round(ns)
    if ns == 0 and float(match.group(1)) > 0:
        raise click.BadParameter(f"{text!r} rounds to 0 ns; use 0 to turn warming off", param_hint="--warm-interval")
    return ns


def progress_line(p: Progress) -> str:
    positions = " ".join(f"{name} {qty:+d}" for name, qty in p.positions.items())
    clock = f"{p.clock_state}{'' if p.clock_compliant else ' (not compliant)'}"
    # P&L as the risk gateway marks it (to fair value); the summary's unrealized is at the mid
    return (f"[{p.elapsed_s:6.1f}s] events {p.events:6d}  orders {p.orders_sent:5d}  quote fills {p.fills:4d}  "
            f"pos {positions}  P&L at fair {money(p.pnl_price4)}  {p.trading_state}  clock {clock}")


_STAGE_NAMES = {"rx->read": "RX stamp to read", "read->journaled": "journal",
                "journaled->decided": "decide (first orders sent inside)", "decided->sent": "other orders journaled and sent"}


# --metrics-listen answers 503 once the trading loop's once-a-second refresh is this late: a few
# periods, so a slow turn (a journal flush, a close-out) does not flap it, a wedged loop does
METRICS_STALE_S = 5.0

EXIT_FAILED = 3          # the session ended failed: venue lost, latched with faults or by a limit's
                         # breach, journal failures, the clock never compliant
EXIT_ORDERS_OPEN = 4     # orders of ours still open at the venue after the close-out


def exit_status(s: SessionSummary) -> tuple[int, str]:
    """The exit code of a session that ran, and the summary's outcome row. Orders still open
    exit 4 only when the close-out ran and the venue stayed: a lost venue (no close-out, or one
    cut short) exits 3, what it holds unknown. An operator's kill with no fault is a clean end
    (exit 0) whose row says who halted trading, when and why."""
    problems = s.problems()
    if not problems:
        halt = s.operator_halt if s.trading_state == "HALTED" else None
        if halt is None:
            return 0, "clean (exit 0)"
        at = datetime.datetime.fromtimestamp(halt.ts_ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return 0, f"clean (exit 0): trading halted by an operator's kill, by {halt.actor} at {at} UTC ({halt.reason})"
    r = s.runner
    code = EXIT_ORDERS_OPEN if r.orders_open and r.close_out_ran and not r.venue_lost else EXIT_FAILED
    return code, f"FAILED (exit {code}): {'; '.join(problems)}"


def orders_sent_text(r) -> str:
    """The summary's orders row: TX stamps as journaled (a late stamp follows its order's missing
    one: counted in both), stamps the runner could match to no send, and, when there were any,
    repeated stamps of sends TCP retransmitted (the send's own stamp is its first)."""
    repeated = f"; stamped again on retransmission {r.tx_repeated}" if r.tx_repeated else ""
    return (f"{r.orders_sent} (TX stamped {r.tx_stamped}, missing {r.tx_missing}, of those stamped "
            f"late {r.tx_late}; TX stamps for no known send {r.tx_unmatched}{repeated})")


def trading_state_text(s: SessionSummary) -> str:
    """The state trading ended in, with the faults and any limit breach holding it, and that the
    close-out's kill halted it after (as the last progress line shows), when it did."""
    halted_after = s.runner.close_out_ran and s.trading_state != "HALTED"
    return (s.trading_state + (f" (faults: {', '.join(s.faults)})" if s.faults else "")
            + (f" (latched: {'; '.join(s.breaches())})" if s.breaches() else "")
            + (" when trading ended; the close-out's kill then halted it" if halted_after else ""))


def summary_rows(s: SessionSummary) -> list[tuple[str, str]]:
    venue = s.venue
    where = (f"{venue['kind']} {venue['host']}:{venue['ouch_port']}"
             + (f" session {venue['session']}" if venue.get("session") else ""))
    rows = [
        ("session", f"{s.session_id} ({s.seconds:.1f} s, stopped: {s.runner.stop_reason or 'error'})"),
        ("venue", where),
        ("clock", f"{s.clock.source}: {s.clock.state}, {s.clock.profile} "
                  f"{'compliant' if s.clock.compliant else 'NOT compliant'}"),
        ("clock evidence", s.clock.note),
        ("trading state", trading_state_text(s)),
        ("inputs journaled", str(s.runner.inputs)),
        ("orders sent", orders_sent_text(s.runner)),
        ("positions", " ".join(f"{k} {v:+d}" for k, v in s.positions.items()) or "none"),
        *metrics_rows(s.engine, s.symbol_names),
        ("journal", f"{s.journal['path']} seq {s.journal['first_seq']}..{s.journal['last_seq']} "
                    f"({s.journal['records']} records)"),
    ]
    if s.runner.md_rcvbuf:
        rows.append(("market-data socket", md_socket_text(s.runner)))
    if s.engine.get("counts", {}).get("md_gap_packets"):
        rows.append(("packets past gaps", gap_packets_text(s.engine["counts"])))
    if s.runner.closing_state:
        rows.append(("close-out", close_out_text(s.runner)))
    if s.runner.trading_cpus:
        rows.append(("trading CPU", f"the trading loop alone on CPU {','.join(map(str, s.runner.trading_cpus))} "
                                    "(--cpu); everything else the session started on the others"))
    if s.runner.warm_steps:
        rows.append(("idle warming", f"{s.runner.warm_steps} shadow engine events, "
                                     f"{s.runner.tx_warm_sends} bytes through the kernel's send path "
                                     "(--warm-interval)"))
    if s.latency:
        n = max(v["n"] for v in s.latency.values())
        rows.append(("latency p50/p99 µs", ", ".join(
            f"{_STAGE_NAMES[k]} {v['p50_us']:g}/{v['p99_us']:g}" for k, v in s.latency.items())
            + f" ({n} market-data packets that sent orders)"))
    errors = error_counts(s)
    if errors:
        rows.append(("errors", errors))
    if s.not_trading_reason:
        rows.append(("not trading", s.not_trading_reason))
    rows.append(("outcome", exit_status(s)[1]))
    return rows


def md_socket_text(r) -> str:
    """The market-data socket's row: its receive buffer and the datagrams the kernel dropped."""
    return (f"receive buffer {r.md_rcvbuf:,} bytes as the kernel counts them; "
            f"{r.md_kernel_drops} datagrams dropped by the kernel")


def gap_packets_text(counts: dict) -> str:
    """The row of the packets that came past a market-data gap: kept and applied once the gap was
    filled, dropped over the buffer's caps (re-requested), discarded (another packet brought them)."""
    return (f"{counts.get('md_gap_kept', 0)} kept, {counts.get('md_gap_applied', 0)} applied once the gap "
            f"was filled, {counts.get('md_gap_dropped', 0)} dropped (buffer full, re-requested), "
            f"{counts.get('md_gap_discarded', 0)} discarded (their messages came in another packet)")


def close_out_text(r) -> str:
    """The close-out row: the pulls at the end of trading, the orders still open, the logout; or
    that none ran (the order entry had ended under the run) and what the OMS still held."""
    shown = ", ".join(r.orders_open[:8]) + (f" and {len(r.orders_open) - 8} more" if len(r.orders_open) > 8 else "")
    if not r.close_out_ran:
        left = (f"{len(r.orders_open)} orders left open, state at the venue unknown: {shown}" if r.orders_open
                else "no order was open")
        return f"no close-out (order entry ended: {r.stop_reason or 'before the end'}); {left}"
    parts = [f"{r.closing_cancels} cancels sent" if r.closing_cancels else "no cancel needed"]
    if r.orders_open:
        parts.append(f"{len(r.orders_open)} orders STILL OPEN after {r.close_out_s:g} s: {shown}")
    else:
        parts.append(f"no order open after {r.close_out_s:g} s")
    parts.append("logged out" if r.logged_out else "no logout (the order entry had ended)")
    return "; ".join(parts)


# the engine's counts of what went wrong, as the errors row names them
_ENGINE_ERRORS = (("protocol_errors", "protocol errors"), ("book_errors", "book errors"),
                  ("gaps", "market-data gaps"), ("md_gap_packets", "packets past a gap"),
                  ("md_gap_dropped", "packets past a gap not kept (buffer full, re-requested)"),
                  ("md_session_changes", "market-data session changes"),
                  ("md_foreign", "other sessions' packets"), ("md_skipped", "unknown messages skipped"),
                  ("md_unrecoverable", "market data unrecoverable"),
                  ("md_duplicates", "unreadable packets duplicated"),
                  ("alerts_held", "alerts held back (flood)"))


def error_counts(s: SessionSummary) -> str:
    """The errors row: the runner's and the engine's counts that are not zero ("" when none)."""
    counts = s.engine.get("counts", {})
    items = [("journal failures", s.runner.journal_failures),
             ("order-entry framing errors", s.runner.protocol_errors),
             ("market data from other addresses", s.runner.md_foreign),
             ("market data dropped by the kernel (receive buffer full)", s.runner.md_kernel_drops)]
    items += [(name, counts.get(key, 0)) for key, name in _ENGINE_ERRORS]
    return ", ".join(f"{name} {n}" for name, n in items if n)


def echo_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        say(f"  {key:<{width}}  {value}")


@contextlib.contextmanager
def temporary_journal(journal_dir: str | None):
    """The journal directory: `journal_dir`, or `journal` in a new temporary directory
    (mmaudit-run-*). A run that fails leaves that temporary directory only when its journal holds
    a record (the error then names it); one failed before anything was journaled (an unreachable
    venue, a refused setting) is removed, so failed runs do not fill /tmp."""
    if journal_dir:
        yield journal_dir
        return
    made = pathlib.Path(tempfile.mkdtemp(prefix="mmaudit-run-"))
    journal = made / "journal"
    try:
        yield str(journal)
    except BaseException:
        if _holds_records(journal):
            click.echo(f"the journal of the failed run is kept in {journal}", err=True)
        else:
            shutil.rmtree(made, ignore_errors=True)
        raise


def _holds_records(journal: pathlib.Path) -> bool:
    """Whether the journal directory holds a record (True when it cannot be read: keep it)."""
    if not journal.exists():
        return False
    try:
        with Reader(str(journal)) as reader:
            return reader.last_seq > 0
    except JournalError:
        return True


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@contextlib.contextmanager
def stop_on_signals():
    """Ctrl-C, SIGTERM, SIGHUP (the terminal or SSH connection closed) and SIGQUIT end the session
    cleanly: SESSION_STOP journaled and the journal sealed, the lab and venue torn down after.
    Left to their defaults, SIGHUP and SIGQUIT would kill the process with all of that undone.
    A signal the parent set to be ignored stays ignored: `nohup mmaudit run` must outlive a
    hang-up, and a shell's background job ignores SIGINT and SIGQUIT."""
    stop = threading.Event()
    previous = {}
    terminals = [fd for fd in (1, 2) if os.isatty(fd)]

    def on_signal(signum, _frame) -> None:
        stop.set()
        if signum == signal.SIGHUP:
            _detach_hung_up(terminals)

    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, on_signal)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _detach_hung_up(terminals: list[int]) -> None:
    """Point stdout/stderr that were a terminal at start and are no longer one (it hung up: every
    write now fails with EIO) at /dev/null, so the summary and messages after the stop do not turn
    a clean stop into a traceback; the journal holds the session either way. A terminal still
    there (a plain `kill -HUP`) keeps its output."""
    gone = [fd for fd in terminals if not os.isatty(fd)]
    if not gone:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in gone:
            os.dup2(null, fd)
    finally:
        os.close(null)


def clock_spec(ptp_uds: str | None, ptp_lab: bool | None, venue_kind: str, free_running: bool,
               ptp4l_log: str | None = None, phc2sys_log: str | None = None,
               phc_device: str | None = None) -> ClockSpec:
    if ptp_uds and ptp_lab:
        raise click.UsageError("give --ptp-uds or --ptp-lab, not both")
    if (ptp4l_log or phc2sys_log) and not ptp_uds:
        raise click.UsageError("--ptp4l-log and --phc2sys-log follow the logs of the ptp4l named by --ptp-uds: "
                               "give --ptp-uds too")
    if phc_device and not ptp_uds:
        raise click.UsageError("--phc names the PHC of the ptp4l named by --ptp-uds: give --ptp-uds too")
    checked_phc(phc_device)
    if ptp_uds:
        return ClockSpec("uds", ptp_uds, free_running=free_running, explicit=True, ptp4l_log=ptp4l_log,
                         phc2sys_log=phc2sys_log, phc_device=phc_device)
    if ptp_lab:
        return ClockSpec("lab")
    if ptp_lab is None and venue_kind != "external":
        return ClockSpec("auto")         # the lab when this machine can run it
    return ClockSpec("uds")


def clock_notice(source: str, note: str) -> str:
    """The plain statement of what the clock evidence is worth, for the lab or a missing ptp4l."""
    if source == "ptp-lab":
        return f"NOTE: {note}."
    return f"NOTE: {note}: the gateway will not trade without a compliant clock."


def say(text: str = "") -> None:
    """One line of display output. A reader gone (`mmaudit run | head -1`: EPIPE) must not stop
    the session nor its summary's exit status: stdout then goes to /dev/null."""
    try:
        click.echo(text)
    except OSError:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sink = os.open(os.devnull, os.O_WRONLY)
            os.dup2(sink, sys.stdout.fileno())
            os.close(sink)


def run_session(settings: SessionSettings, inputs, quiet: bool, resume=None, metrics=None) -> SessionSummary:
    """Run with a progress line per second (unless quiet); SessionError -> ClickException.
    `resume`: Session's (cli.run_resume), for a journal whose session crashed; `metrics`:
    Session's, the sink of its Prometheus text (a MetricsServer's publish)."""
    def show(p: Progress) -> None:
        say(progress_line(p))

    with stop_on_signals() as stop:
        session = Session(settings, inputs, progress=None if quiet else show, stop=stop,
                          on_started=lambda s: _started(s, quiet), reconciler=LiveReconciler(), resume=resume,
                          metrics=metrics)
        try:
            return session.run()
        except JournalInUse as exc:
            raise JournalInUseError(str(exc)) from None
        except SessionError as exc:
            raise click.ClickException(str(exc)) from None


def _progress_err(quiet: bool):
    """Progress lines to stderr (as `mmaudit recover` prints them), none with --json."""
    return (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))


class JournalInUseError(click.ClickException):
    """A journal that already holds a session: refused as a usage error (exit 2), nothing written."""

    exit_code = 2


def _started(session: Session, quiet: bool) -> None:
    if quiet:
        return
    venue = session.venue
    say(clock_notice(session.clock_source, session.clock_note))
    say(f"venue {venue['kind']} at {venue['host']}:{venue['ouch_port']}; clock profile "
        f"{session.profile}; journal {session.settings.journal_dir}")
    if session.settings.control_path:
        say(f"operator commands: mmaudit operator COMMAND --control {session.settings.control_path} "
            "--actor NAME --reason TEXT")
    sample = session.monitor.current()
    say(f"clock {sample.state.name}, "
        f"{'compliant' if session.monitor.compliant(session.profile) else 'NOT compliant'} "
        f"for {session.profile} at start")


@click.command("run")
@click.option("--venue", "venue_text", default="embedded", show_default=True,
              help="embedded (in this process), process (a venue subprocess) or HOST:PORT (SoupBinTCP).")
@click.option("--itch-port", type=click.IntRange(1, 65535), default=None,
              help="MoldUDP64 port the venue publishes to (HOST:PORT default 31001; else a free port).")
@click.option("--rerequest-port", type=click.IntRange(1, 65535), default=None,
              help="The venue's MoldUDP64 re-request port (needed with HOST:PORT).")
@click.option("--md-bind", default="", help="Local IPv4 address that receives the venue's MoldUDP64 (a multicast "
              "group is joined; default: loopback for a venue here, its itch_group when its config names one, "
              "else every local address).")
@click.option("--md-interface", default="", help="Local IPv4 address of the interface a multicast --md-bind is "
              "joined on (default: the kernel's choice; for a venue started here with an itch_group, its itch_interface).")
@click.option("--md-source", "md_sources", multiple=True,
              help="IPv4 address the venue's market data (and re-request replies) come from; repeat for "
                   "several (default: the venue's host). Datagrams from anywhere else are refused.")
@click.option("--md-rcvbuf", default="4M", show_default=True,
              help="Receive buffer of the market-data socket, e.g. 256K, 4M (forced past net.core.rmem_max "
                   "when root; the kernel's drops on it are counted and journaled).")
@click.option("--duration", default="60s", show_default=True, help="Trading time, e.g. 60s, 2m.")
@click.option("--journal", "journal_dir", type=click.Path(file_okay=False), default=None,
              help="Journal directory (default: a new directory under the system temp dir).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Engine config TOML (default: the engine's built-in parameters).")
@click.option("--limits", "limits_path", type=click.Path(dir_okay=False), default=None,
              help="Risk limits TOML (default: mm_core.risk.EXAMPLE_TOML).")
@click.option("--venue-config", "venue_config_path", type=click.Path(dir_okay=False), default=None,
              help="Venue and symbols TOML (default: mm_core/venue/default.toml).")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=None,
              help="Clock profile the gateway requires (default: the limits' clock_profile).")
@click.option("--ptp-uds", default=None, help="Monitor the ptp4l at this UDS path (uds_address).")
@click.option("--ptp-lab/--no-ptp-lab", default=None,
              help="Clock from a loopback PTP lab (default for a venue started here, when root).")
@click.option("--ptp-free-running", is_flag=True,
              help="The --ptp-uds ptp4l is a verifier (free_running 1): judge lock by steady samples.")
@LOG_OPTIONS[1]
@LOG_OPTIONS[0]
@click.option("--phc", "phc_device", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The --ptp-uds ptp4l's PHC device (hardware timestamping), e.g. /dev/ptp0 "
                   "(default: found with ethtool -T).")
@click.option("--seed", type=int, default=None, help="Seed of the embedded venue's background flow.")
@click.option("--busy-poll", is_flag=True, help="Spin instead of sleeping between events (uses one core).")
@click.option("--cpu", "trading_cpu", type=click.IntRange(0, None), default=None, metavar="N",
              help="Run the trading loop alone on CPU N (busy-poll's spinning included), and everything else "
                   "the session starts (venue, clock lab, clock monitor, the journal's helper thread) on the other "
                   "CPUs this process may use. N must be one of those, and another must remain.")
@click.option("--warm-interval", default=None,
              help="With --busy-poll: step a shadow engine this often while idle, so a packet finds the "
                   "order path in the CPU caches, and send one byte over a private loopback connection, "
                   "so an order's send() finds the kernel's send path there too; e.g. 250us (the "
                   "default), 1ms; 0 turns both off.")
@click.option("--control", "control_path", default=None,
              help="The operator's control socket for `mmaudit operator` (default: control.sock in the journal "
                   "directory; 'none' for none).")
@click.option("--close-out", "close_out", default="2s", show_default=True,
              help="At a clean end the engine pulls every order; wait this long at most for the venue to "
                   "close them before logging out (above 0, at most 60s).")
@click.option("--resume", is_flag=True,
              help="The --journal holds a session that crashed: recover it first (replay, reconcile with the "
                   "HOST:PORT venue it traded on, resolve) and, once reconciled, trade on in the same journal.")
@click.option("--metrics-listen", default=None, metavar="[HOST:]PORT",
              help="Serve the session's Prometheus text at http://HOST:PORT/metrics while it runs (host "
                   "127.0.0.1 when left out; port 0: the kernel picks one, printed on stderr): trading state, "
                   "positions, P&L, orders, fills, denials, market-data gaps, journal records and the clock's "
                   "health, refreshed once a second; 503 before the first refresh and once they stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON, without progress lines.")
@click.pass_context
def command(ctx, venue_text, itch_port, rerequest_port, md_bind, md_interface, md_sources, md_rcvbuf, duration, journal_dir, config_path, limits_path,
            venue_config_path, profile, ptp_uds, ptp_lab, ptp_free_running, ptp4l_log, phc2sys_log, phc_device,
            seed, busy_poll, trading_cpu, warm_interval, close_out, control_path, resume, metrics_listen, as_json) -> None:
    """Trade on a venue for a while, journaling ahead, with the clock monitored.

    The gateway trades only on a compliant clock: without --ptp-uds or the PTP lab the monitor
    finds no ptp4l and the engine does not quote (the summary says why).

    Example: mmaudit run --duration 30s --journal ./journal --ptp-lab

    After a crash: mmaudit run --resume --journal ./journal --venue HOST:PORT ...

    \b
    Exit status: 0 a clean session (an operator's kill included); 3 it ended
    failed (the clock never compliant, so no order left; venue lost; trading
    latched with faults or by a limit's breach; journal failures); 4 orders still open at the venue
    after the close-out; 1 it could not start; 2 a usage error or a used journal.
    """
    duration_s = seconds(duration)      # every check before the temporary journal directory is made
    close_out_s = close_out_seconds(close_out)
    md_rcvbuf = byte_size(md_rcvbuf, "--md-rcvbuf", MIN_RCVBUF, MAX_RCVBUF)
    warm_interval_ns = None if warm_interval is None else interval_ns(warm_interval)
    if trading_cpu is not None:
        try:
            check_cpu(trading_cpu)
        except CpuPlanError as exc:
            raise click.BadParameter(str(exc), param_hint="--cpu") from None
    try:
        venue = VenueSpec.parse(venue_text, itch_port, rerequest_port, md_bind, md_sources, md_interface)
        clock = clock_spec(ptp_uds, ptp_lab, venue.kind, ptp_free_running, ptp4l_log, phc2sys_log, phc_device)
        inputs = load_inputs(config_path, limits_path, venue_config_path, profile)
        venue = joined_group(venue, inputs.venue_config.venue)
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None
    if resume and (journal_dir is None or venue.kind != "external"):
        raise click.UsageError("--resume goes on in the crashed session's --journal, on the venue it traded "
                               "with: --venue HOST:PORT (an embedded or process venue died with it)")
    # the endpoint before the journal: an address in use leaves nothing behind
    server = (metrics_server(ctx, metrics_listen, "--metrics-listen", METRICS_STALE_S, "session metrics",
                             what="refresh of the session's metrics", who="the trading loop")
              if metrics_listen is not None else None)
    started = time.monotonic()
    with temporary_journal(journal_dir) as journal_dir:
        if control_path is None:
            control_path = str(pathlib.Path(journal_dir) / CONTROL_NAME)
        try:
            settings = SessionSettings(journal_dir, duration_s, venue, clock, seed=seed, busy_poll=busy_poll,
                                       warm_interval_ns=warm_interval_ns, close_out_s=close_out_s,
                                       md_rcvbuf=md_rcvbuf, trading_cpu=trading_cpu,
                                       control_path=None if control_path == "none" else control_path)
        except SessionError as exc:
            raise click.ClickException(str(exc)) from None
        summary = run_session(settings, inputs, quiet=as_json,
                              resume=resumer(journal_dir, venue, _progress_err(as_json)) if resume else None,
                              metrics=None if server is None else server.publish)
    if as_json:
        say(json.dumps(summary.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        say(f"session summary ({time.monotonic() - started:.1f} s):")
        echo_table(summary_rows(summary))
        say(clock_notice(summary.clock.source, summary.clock.note))
    code = exit_status(summary)[0]
    if code:
        raise click.exceptions.Exit(code)
