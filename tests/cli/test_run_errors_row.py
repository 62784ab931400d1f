"""The `mmaudit run` summary's errors row names the engine's market-data errors (protocol errors,
gaps, session changes, other sessions' packets, unknown messages, an unrecoverable feed) beside
the runner's journal failures, order-entry framing errors and refused market-data senders; no
row when nothing went wrong."""
from types import SimpleNamespace

from cli.run_cmd import error_counts
from mm_core.runnertypes import RunnerReport


def summary(runner: RunnerReport, **counts) -> SimpleNamespace:
    base = {"events": 10, "md_packets": 5, "protocol_errors": 0, "gaps": 0, "md_session_changes": 0}
    return SimpleNamespace(runner=runner, engine={"counts": {**base, **counts}})


def test_the_engines_market_data_errors_are_in_the_row():
    row = error_counts(summary(RunnerReport(), protocol_errors=2, gaps=3, md_session_changes=1,
                               md_foreign=4, md_skipped=5, md_unrecoverable=1))
    assert row == ("protocol errors 2, market-data gaps 3, market-data session changes 1, "
                   "other sessions' packets 4, unknown messages skipped 5, market data unrecoverable 1")


def test_the_runners_counts_come_first_and_zeros_are_left_out():
    row = error_counts(summary(RunnerReport(journal_failures=1, md_foreign=7), gaps=2))
    assert row == "journal failures 1, market data from other addresses 7, market-data gaps 2"
    assert error_counts(summary(RunnerReport())) == ""
    assert error_counts(SimpleNamespace(runner=RunnerReport(protocol_errors=1), engine={})) == \
        "order-entry framing errors 1"
