"""`mmaudit run --metrics-listen`: a real session on the embedded venue scraped over real HTTP
while it trades (the PTP lab's clock when this machine can make it, the real monitor finding no
ptp4l otherwise), its figures agreeing with the summary and journal it ends with, the port free
once the run ends however it ends, and bad or busy addresses refused before a journal is made."""
from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from audit.metrics_http import CONTENT_TYPE
from cli.run_cmd import command as run
from journal import Reader, RecordType
from journal.catalogue import unpack
from mm_core.sessionconfig import lab_available
from tests.cli.runproc import running

LAB = lab_available()
needs_lab = pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
_SERVING = re.compile(r"serving session metrics at http://([\d.]+):(\d+)/metrics")
_SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def parse(text: str) -> tuple[dict, dict, dict]:
    """(HELP by family, TYPE by family, {(name, sorted labels): value}) of a text exposition;
    AssertionError on a line that is none of those."""
    helps, types, values = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, f"not an exposition line: {line!r}"
            labels = tuple(sorted(_LABEL.findall(match.group(2) or "")))
            values[(match.group(1), labels)] = float(match.group(3))
    return helps, types, values


def served_port(run_proc, seconds: float) -> int:
    """The port `run --metrics-listen 127.0.0.1:0` printed on stderr (bounded in time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = _SERVING.search(run_proc.stderr())
        if found:
            return int(found.group(2))
        assert run_proc.proc.poll() is None, run_proc.stderr()
        time.sleep(0.05)
    raise AssertionError(f"no serving line within {seconds:g} s: {run_proc.stderr()}")


def scrape_until_done(run_proc, port: int, seconds: float) -> list[str]:
    """Every 200 scrape while the run lasts: at most 400 tries and `seconds`, 0.1 s apart."""
    texts, deadline = [], time.monotonic() + seconds
    for _ in range(400):
        if run_proc.proc.poll() is not None or time.monotonic() > deadline:
            break
        try:
            status, kind, body = scrape(port)
        except (OSError, urllib.error.URLError):     # the run closed the endpoint as it ended
            break
        if status == 200:
            assert kind == CONTENT_TYPE
            texts.append(body)
        else:
            assert status == 503, (status, body)
        time.sleep(0.1)
    return texts


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def value(values: dict, name: str, **labels) -> float:
    return values[(name, tuple(sorted(labels.items())))]


def check_families(helps: dict, types: dict, values: dict) -> None:
    """Every series of a family with HELP and TYPE, prefixed mmaudit_, counters named _total."""
    for name, _ in values:
        assert name.startswith("mmaudit_") and name in helps and name in types, name
    for name, kind in types.items():
        assert kind in ("gauge", "counter") and (kind == "counter") == name.endswith("_total"), name


def run_scraped(tmp_path, args: list[str], seconds: float):
    """A `run --metrics-listen 127.0.0.1:0 --json` process scraped until it ends: (scrapes, the
    JSON summary, the exit status, the port)."""
    journal = tmp_path / "journal"
    with running(["--journal", str(journal), "--metrics-listen", "127.0.0.1:0", "--json", *args]) as run_proc:
        port = served_port(run_proc, 30)
        texts = scrape_until_done(run_proc, port, seconds)
        code = run_proc.proc.wait(60)
    run_proc.finish()
    assert texts, run_proc.err
    return texts, json.loads(run_proc.out), code, port


@needs_lab
def test_a_trading_session_is_scraped_and_agrees_with_its_summary(tmp_path):
    texts, summary, code, port = run_scraped(tmp_path, ["--duration", "5s", "--ptp-lab"], 90)
    assert code == 0, summary["problems"]
    assert refused(port)                  # the endpoint closed with the run
    parsed = [parse(text) for text in texts]
    for helps, types, values in parsed:
        check_families(helps, types, values)
    helps, types, last = parsed[-1]
    orders = [value(v, "mmaudit_orders_sent_total") for _, _, v in parsed]
    assert orders == sorted(orders)       # a counter never goes back
    # the last scrape is at most a refresh behind the end: no more than the summary counts
    assert 0 < orders[-1] <= summary["runner"]["orders_sent"]
    counts = summary["engine"]["counts"]
    assert value(last, "mmaudit_fills_total") <= counts["fills"]
    assert value(last, "mmaudit_md_packets_total") <= counts["md_packets"]
    assert value(last, "mmaudit_gateway_denials_total") <= counts["denials"]
    assert value(last, "mmaudit_md_gaps_total") <= counts["gaps"]
    assert value(last, "mmaudit_md_rerequests_total") <= summary["runner"]["md_rerequests"]
    assert 0 < value(last, "mmaudit_journal_records_total") <= summary["journal"]["records"]
    assert value(last, "mmaudit_journal_failures_total") == 0
    quote_fills = sum(value(last, "mmaudit_quote_fills_total", side=s) for s in ("bid", "ask"))
    assert quote_fills <= sum(summary["engine"]["fills"].values())
    # positions by the summary's symbol names; money in dollars, as the summary's cents say
    assert {dict(labels)["symbol"] for name, labels in last if name == "mmaudit_position_shares"} \
        == set(summary["positions"])
    assert "dollars" in helps["mmaudit_pnl_realized_dollars"] and "10000" in helps["mmaudit_pnl_realized_dollars"]
    assert abs(value(last, "mmaudit_pnl_realized_dollars")) < 1e6
    # trading ACTIVE while it ran (the close-out's kill comes after the loop's last refreshes)
    assert any(value(v, "mmaudit_trading_state") == 1 and value(v, "mmaudit_trading_state_info", state="ACTIVE") == 1
               for _, _, v in parsed)
    assert "1 ACTIVE" in helps["mmaudit_trading_state"] and "4 HALTED" in helps["mmaudit_trading_state"]
    # the lab's clock, LOCKED and compliant, as the journal's CLOCK_SAMPLE records say
    clock = {labels: v for (name, labels), v in last.items() if name == "mmaudit_clock_state"}
    assert list(clock.values()) == [1.0]
    uds = dict(next(iter(clock)))["uds"]
    assert value(last, "mmaudit_clock_compliant", profile="eu-hft", uds=uds) == 1
    with Reader(str(tmp_path / "journal")) as reader:
        samples = [unpack(RecordType.CLOCK_SAMPLE, r.payload) for r in reader.records()
                   if r.rtype == RecordType.CLOCK_SAMPLE]
    assert samples and all(int(s["state"]) == 1 for s in samples)


def test_the_real_monitor_without_a_ptp4l_is_scraped_unknown(tmp_path):
    texts, summary, code, port = run_scraped(tmp_path, ["--duration", "3s", "--no-ptp-lab"], 60)
    assert code == 3 and summary["runner"]["orders_sent"] == 0      # fail-closed: no clock, no order
    assert refused(port)
    helps, types, last = parse(texts[-1])
    check_families(helps, types, last)
    assert value(last, "mmaudit_orders_sent_total") == 0
    assert value(last, "mmaudit_md_packets_total") > 0              # it listened to the market
    assert [v for (name, _), v in last.items() if name == "mmaudit_clock_state"] == [0.0]   # UNKNOWN
    assert [v for (name, _), v in last.items() if name == "mmaudit_clock_compliant"] == [0.0, 0.0, 0.0]
    assert [v for (name, _), v in last.items() if name == "mmaudit_clock_error_bound_ns"] == [-1.0]


@pytest.mark.parametrize("listen", ["host:port", "70000", ":9100", "", "127.0.0.1:-1"])
def test_a_bad_address_is_a_usage_error_before_any_journal(tmp_path, listen):
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--journal", str(journal), "--duration", "1s", "--metrics-listen", listen])
    assert result.exit_code == 2, result.output
    assert "--metrics-listen" in result.output and "Traceback" not in result.output
    assert not journal.exists()


def test_a_port_in_use_is_refused_before_any_journal(tmp_path):
    journal = tmp_path / "journal"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(run, ["--journal", str(journal), "--duration", "1s",
                                          "--metrics-listen", f"127.0.0.1:{port}"])
    assert result.exit_code != 0 and result.exit_code == 2, result.output
    assert "--metrics-listen" in result.output and "in use" in result.output
    assert not journal.exists()


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("args, code", [
    (["--duration", "1s", "--no-ptp-lab"], 3),                                    # ran to its end
    (["--venue", "127.0.0.1:9", "--rerequest-port", "9", "--no-ptp-lab", "--duration", "1s"], 1),   # failed
])
def test_the_endpoint_is_closed_when_the_run_ends_in_this_process(tmp_path, args, code):
    port = _free_tcp_port()
    result = CliRunner().invoke(run, ["--journal", str(tmp_path / "journal"), "--metrics-listen",
                                      f"127.0.0.1:{port}", *args])
    assert result.exit_code == code, result.output
    assert refused(port)                  # this process lives on: the command closed its server
