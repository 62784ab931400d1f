"""The runner's refresh of the scrape text (mm_core.sessionmetrics), through a real venue, journal
and audit.monitor.ClockMonitor: once a clock step, never per packet; the clock shown is the one
the runner journaled (a stalled monitor's UNKNOWN record, bits cleared, included); a refresh that
fails is turned off with one alert while trading goes on."""
import json

import pytest

from journal.catalogue import ClockState, RecordType, unpack
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.runnerrecords import engine_events
from mm_core.session import positions_by_name
from mm_core.sessionmetrics import SessionMetrics
from tests.cli.test_run_metrics_listen import check_families, parse, value
from tests.mm_core.test_runner_clock import StallingSampler, run_with_monitor
from tests.mm_core.wire import SYMBOLS, gateway

NAMES = {s.id: s.name for s in SYMBOLS.symbols}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A 5 Hz monitor, stale after 1 s, whose ptp4l hangs after 8 answers (~1.6 s), under a runner
    that looks at the clock (and refreshes the text) once a second for 4.5 s."""
    texts: list[str] = []

    def prepare(runner, journal) -> None:
        runner.publish_metrics = SessionMetrics(
            runner.engine, runner, journal, journal.next_seq, lambda: positions_by_name(runner.engine, NAMES),
            texts.append, {"uds": 'lab "a"\\b'})
    report, engine, records, _ = run_with_monitor(tmp_path_factory.mktemp("published"), StallingSampler(8),
                                                  4.5, rate_hz=5, stale_after_s=1.0, prepare=prepare)
    return texts, report, engine, records


def test_the_text_is_refreshed_once_a_clock_step_not_per_packet(published):
    texts, report, _, records = published
    packets = sum(r.rtype == RecordType.MD_PACKET for r in records)
    # the loop's first look, one a second, the close-out's looks and its last: never per packet
    assert 4 <= len(texts) <= 10 < packets
    for text in texts:
        check_families(*parse(text))
    orders = [value(parse(t)[2], "mmaudit_orders_sent_total") for t in texts]
    assert orders == sorted(orders) and 0 < orders[-1] <= report.orders_sent


def test_refreshing_the_text_leaves_the_engine_as_a_replay_finds_it(published):
    _, _, engine, records = published
    fresh = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
    for event in engine_events(records):
        fresh.on_event(event)
    assert fresh.state_hash() == engine.state_hash()


def test_the_clock_shown_is_the_one_journaled_a_stall_included(published):
    texts, _, _, records = published
    samples = [unpack(RecordType.CLOCK_SAMPLE, r.payload) for r in records if r.rtype == RecordType.CLOCK_SAMPLE]
    assert int(samples[-1]["state"]) == ClockState.UNKNOWN
    uds = 'lab \\"a\\"\\\\b'              # the label escaped as the exposition format says
    assert f'mmaudit_clock_state{{uds="{uds}"}} 1\n' in texts[0]
    first = parse(texts[0])[2]
    assert value(first, "mmaudit_clock_compliant", profile="eu-hft", uds=uds) == 1
    last = parse(texts[-1])[2]
    assert value(last, "mmaudit_clock_state", uds=uds) == ClockState.UNKNOWN
    assert value(last, "mmaudit_clock_error_bound_ns", uds=uds) == -1
    assert all(value(last, "mmaudit_clock_compliant", profile=p, uds=uds) == 0 for p in ("eu-hft", "eu-algo", "us-cat"))


def test_a_failing_refresh_is_turned_off_with_one_alert_and_trading_goes_on(tmp_path):
    calls = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("display gone")

    def prepare(runner, journal) -> None:
        runner.publish_metrics = broken
    report, _, records, _ = run_with_monitor(tmp_path, StallingSampler(100), 2.5, rate_hz=5, stale_after_s=5.0,
                                             prepare=prepare)
    assert calls == [1]
    alerts = [json.loads(r.payload) for r in records if r.rtype == RecordType.METRICS]
    failed = [a for a in alerts if a.get("alert") == "metrics-publish-failed"]
    assert len(failed) == 1 and "RuntimeError: display gone" in failed[0]["detail"]
    assert report.orders_sent > 0 and report.journal_failures == 0
