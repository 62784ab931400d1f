"""The SRE recovery drills against the real embedded venue on loopback, with real engine processes:
crash (SIGKILLed at random moments and at hook points, recovered, resumed, judged by the venue),
venue-disconnect (exactly-once after re-login) and feed-gap (quotes pulled until the gap fills).
Also the drills' judges on their own: a lost or changed acknowledged record, a repeated venue
message and a position or order state that differs from the venue's are all caught."""
from __future__ import annotations

import json
import pathlib

import pytest
from click.testing import CliRunner

from journal import Journal, Reader, RecordType
from journal.catalogue import raw_bytes, unpack, unpack_json
from mm_core.protocol import ouch, soupbintcp
from cli.drill_cmd import command as drill_group
from recovery.drills import _engine_proc as proc_main
from recovery.drills.common import compare_with_venue, lost_acks
from recovery.drills.crash import KILL_POINTS, CrashReport, CrashRun, CrashSettings, run_crash_drill
from recovery.drills.venue_disconnect import (
    DisconnectSettings, exactly_once, run_venue_disconnect_drill, sent_at_drops, split_lost_in_drops,
)
from recovery.replay import replay_journal

CRASH_RUNS = 20


def drill_results(path: str) -> list[dict]:
    with Reader(path) as reader:
        return [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.DRILL_RESULT])]


def venue_log_from_journal(path: str) -> list[bytes]:
    """The venue's sequenced OUCH payloads as the journal holds them (each once, in order), from
    sequence 1: the fresh session joined the drill's fresh venue right after its start-of-day
    System Event (its first LoginAccepted says where), the one message before them."""
    log: dict[int, bytes] = {}
    joined = 0
    with Reader(path) as reader:
        for rec in reader.records(rtypes=[RecordType.VENUE_MSG]):
            msg = unpack(RecordType.VENUE_MSG, rec.payload)
            if int(msg["packet_type"]) == ord("S"):
                log[int(msg["soup_seq"])] = raw_bytes(msg)[3:]
            elif int(msg["packet_type"]) == ord("A") and not joined:
                joined = soupbintcp.decode(raw_bytes(msg), soupbintcp.Direction.FROM_SERVER).sequence
    assert joined == 2 and min(log) == joined, (joined, min(log, default=0))
    return [ouch.encode(ouch.SystemEvent(0, "S"))] + [log[s] for s in sorted(log)]


@pytest.mark.slow
def test_crash_drill_loses_nothing_and_agrees_with_the_venue(tmp_path):
    journal = str(tmp_path / "journal")
    shown: list[tuple[int, bool]] = []
    report = run_crash_drill(CrashSettings(runs=CRASH_RUNS, seed=11, journal_dir=journal),
                             lambda run: shown.append((run.run, run.passed)))
    assert len(report.runs) == CRASH_RUNS, report.table()
    # progress shows each run once, with its final verdict (a kill inside the C writer waits for
    # the next recovery's judgement of its torn record, so runs may show out of order)
    assert sorted(number for number, _ in shown) == list(range(1, CRASH_RUNS + 1)), shown
    assert all(passed for _, passed in shown), shown
    assert report.lost == 0 and report.differences == 0, report.as_dict()
    assert report.final_reconciled and report.passed, report.table()
    for run in report.runs:
        assert run.reconciled and run.rto_s > 0 and run.events_replayed > 0 and run.acked > 0, run
    # every kill point really killed a process (a fallback to a random moment does not count),
    # and the hooks held the process where they say
    assert set(report.kill_points) == set(KILL_POINTS) and report.missed_kill_points == [], report.kill_points
    assert all(n["hit"] >= 1 for n in report.kill_points.values()), report.kill_points
    hooked = [r for r in report.runs if r.hit and r.planned != "random"]
    assert all(r.kill_detail.startswith(proc_main.HOOKS) for r in hooked), report.table()
    assert {r.planned for r in hooked} == set(proc_main.HOOKS), report.table()
    # journal and venue confirm each hook's kill point (an order killed between its append and its
    # send is journaled and the venue never saw it; a record killed right after its append returned
    # is published; one killed inside its append, or mid-roll, is not, and the next recovery
    # reports it as the first record lost: a torn record discarded, a half-rolled segment removed)
    assert all(r.hook_check == "ok" for r in hooked), [(r.kill_detail, r.hook_check) for r in hooked]
    with Reader(journal) as reader:
        assert len(reader.segments()) > 2                # small segments: rolls happened
    results = drill_results(journal)
    assert results[-1]["drill"] == "crash" and results[-1]["passed"] is True
    assert len(results[-1]["runs"]) == CRASH_RUNS and results[-1]["lost"] == 0
    assert "RTO s" in report.table() and report.rto_percentile(0.99) >= report.rto_percentile(0.5) > 0


def test_a_crash_drill_that_never_hit_a_planned_kill_point_fails_and_says_so():
    """A hook not reached falls back to a random kill and that run may pass, but the drill did not
    test that kill point: its verdict counts the kills per point and fails when one was planned
    and never hit."""
    def run(number, point, hit=True):
        r = CrashRun(number, point, kill_detail="x", rto_s=0.5, reconciled=True, hook_check="ok" if hit else "")
        if not hit:
            r.kill_point, r.hit = point + " (fallback)", False
        return r
    report = CrashReport(1, "j", runs=[run(1, "random"), run(2, "after-roll", hit=False),
                                       run(3, "append-returned"), run(4, "after-roll", hit=False)],
                         final_reconciled=True)
    assert all(r.passed for r in report.runs)
    assert report.kill_points == {"random": {"planned": 1, "hit": 1}, "append-returned": {"planned": 1, "hit": 1},
                                  "after-roll": {"planned": 2, "hit": 0}}
    assert report.missed_kill_points == ["after-roll"] and not report.passed
    assert report.as_dict()["missed_kill_points"] == ["after-roll"] and report.as_dict()["passed"] is False
    report.runs.append(run(5, "after-roll"))
    assert report.missed_kill_points == [] and report.passed
    assert report.kill_points["after-roll"] == {"planned": 3, "hit": 1}


def test_lost_and_changed_acknowledged_records_are_reported(tmp_path):
    import zlib
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        acks = [(journal.append(RecordType.TIMER, payload), int(RecordType.TIMER), zlib.crc32(payload))
                for payload in (bytes([i]) * 12 for i in range(5))]
    assert lost_acks(path, acks) == []
    seq, rtype, crc = acks[2]
    changed = acks[:2] + [(seq, rtype, crc ^ 1)] + acks[3:]
    assert lost_acks(path, changed) == [f"seq {seq}: changed"]
    assert lost_acks(path, acks + [(6, rtype, crc)]) == ["seq 6: missing"]


def test_venue_disconnect_is_exactly_once_and_its_judges_catch_tampering(tmp_path):
    journal = str(tmp_path / "journal")
    report = run_venue_disconnect_drill(DisconnectSettings(drops=2, seed=4, journal_dir=journal))
    assert report.passed, report.table() + json.dumps(report.as_dict())
    assert [r.requested for r in report.rows] == [r.last_seen + 1 for r in report.rows]
    assert report.repeated == report.missing == report.different == []
    assert drill_results(journal)[-1]["drill"] == "venue-disconnect"
    # the judges, fed the same session: the journal agrees with itself and with the engine ...
    log = venue_log_from_journal(journal)
    assert 0 < len(log) <= report.venue_messages
    state = proc_main.engine_state(replay_journal(journal, proc_main.new_engine()).engine)
    # orders whose bytes died with a dropped connection: the engine holds them unanswered
    at_drops = sent_at_drops(journal, log)
    state, lost = split_lost_in_drops(state, log, at_drops)
    assert lost == report.lost_in_drops and set(lost) <= at_drops
    # orders still unanswered when the engine stopped are judged by the drill against the venue's
    # settled log; the journal cannot know their answers
    state["orders"] = {t: o for t, o in state["orders"].items() if o[0] != "pending-new"}
    assert compare_with_venue(state, log) == []
    # ... and a changed position, a closed order shown live, and a lost fill are all caught
    symbol = next(iter(state["positions"]), "ACME")
    assert compare_with_venue(dict(state, positions={**state["positions"], symbol: 10**6}), log)
    token, (status, leaves, filled, terminal) = next(iter(state["orders"].items()))
    flipped = dict(state, orders={**state["orders"], token: [status, leaves, filled, not terminal]})
    assert any(token in d for d in compare_with_venue(flipped, log))
    # a venue message journaled twice is a repeat; one the venue never sent is a difference
    with Reader(journal) as reader:
        rec = next(reader.records(rtypes=[RecordType.VENUE_MSG]))
    with Reader(journal) as reader:
        sequenced = [r for r in reader.records(rtypes=[RecordType.VENUE_MSG])
                     if int(unpack(RecordType.VENUE_MSG, r.payload)["packet_type"]) == ord("S")]
    again = sequenced[len(sequenced) // 2]
    with Journal(journal) as writer:
        writer.append(RecordType.VENUE_MSG, bytes(again.payload), ts_ns=rec.ts_ns)
    repeated, missing, different = exactly_once(journal, log)
    assert repeated == [int(unpack(RecordType.VENUE_MSG, again.payload)["soup_seq"])] and missing == []
    assert exactly_once(journal, log[:-1])[2] == [len(log)]


def test_feed_gap_pulls_quotes_until_filled_then_resumes_by_itself(tmp_path):
    """Through the CLI: the JSON it prints is the DRILL_RESULT it journaled."""
    journal = str(tmp_path / "journal")
    result = CliRunner().invoke(drill_group, ["feed-gap", "--gaps", "2", "--seed", "6", "--hold", "0.5",
                                              "--journal", journal, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["drill"] == "feed-gap" and report["passed"] is True and len(report["rows"]) == 2
    for row in report["rows"]:
        assert row["withheld"] and row["pulled_s"] >= 0 and row["live_while_open"] == 0
        assert row["accepted_while_open"] == 0 and row["rerequests"] >= 1 and row["resumed_s"] > 0
    assert report["trading_state"] != "HALTED" and report["differences"] == []
    with Reader(journal) as reader:
        alerts = [unpack_json(r.payload).get("alert") for r in reader.records(rtypes=[RecordType.METRICS])]
    assert alerts.count("book-stale") >= 2 and alerts.count("book-recovered") >= 2
    assert drill_results(journal)[-1] == report


def _files(path) -> dict:
    return {str(f): f.read_bytes() for f in sorted(pathlib.Path(path).rglob("*")) if f.is_file()}


@pytest.mark.parametrize("name", ["crash", "venue-disconnect", "feed-gap", "risk"])
def test_a_drill_refuses_a_journal_that_holds_records_and_leaves_it_as_it_was(tmp_path, name):
    """A drill starts a new session: on a journal that already holds one it would make a journal
    no recovery can replay (SecondSession), so it refuses before it writes anything."""
    from journal.catalogue import TsSource
    from recovery.codecheck import session_start
    from recovery.drills.common import DrillError
    from recovery.drills.feed_gap import GapSettings, run_feed_gap_drill
    from recovery.drills.risk import DrillError as RiskDrillError, DrillSettings, run_risk_drill
    journal = str(tmp_path / "used")
    with Journal(journal) as writer:
        writer.append(RecordType.SESSION_START, session_start(), ts_ns=1, ts_source=int(TsSource.USER))
    before = _files(journal)
    run = {"crash": lambda: run_crash_drill(CrashSettings(runs=1, journal_dir=journal)),
           "venue-disconnect": lambda: run_venue_disconnect_drill(DisconnectSettings(drops=1, journal_dir=journal)),
           "feed-gap": lambda: run_feed_gap_drill(GapSettings(gaps=1, journal_dir=journal)),
           "risk": lambda: run_risk_drill(DrillSettings(journal_dir=journal, clock="drill"))}[name]
    with pytest.raises((DrillError, RiskDrillError), match="already holds 1 records"):
        run()
    assert _files(journal) == before
    with Reader(journal) as reader:
        assert len(reader) == 1
    # and through the CLI: a usage-level error naming the journal, nothing written
    args = ["risk", "--clock", "drill"] if name == "risk" else [name]
    result = CliRunner().invoke(drill_group, [*args, "--journal", journal])
    assert result.exit_code == 1 and "already holds 1 records" in result.output, result.output
    assert _files(journal) == before


def test_cli_commands_have_help_and_reject_bad_options():
    runner = CliRunner()
    for name in ("crash", "venue-disconnect", "feed-gap"):
        result = runner.invoke(drill_group, [name, "--help"])
        assert result.exit_code == 0 and "Example: mmaudit drill " + name in result.output
    assert runner.invoke(drill_group, ["crash", "--runs", "0"]).exit_code == 2
    assert runner.invoke(drill_group, ["feed-gap", "--hold", "0"]).exit_code == 2


def test_an_unknown_hook_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(proc_main.HOOK_ENV, "nowhere:1")
    with pytest.raises(SystemExit, match="unknown hook"):
        proc_main.main(["--journal", str(tmp_path / "j"), "--ouch", "1", "--itch", "1",
                        "--rerequest", "1", "--report", str(tmp_path / "r")])


def test_the_journals_c_kill_hooks_arm_only_when_enabled(monkeypatch):
    """The C writer's kill points (in-append, mid-roll) are a test hook: without MMJ_TEST_HOOKS=1
    in the environment, or for an unknown kind or a zeroth occurrence, arming refuses (-1) and the
    writer is untouched."""
    monkeypatch.delenv("MMJ_TEST_HOOKS", raising=False)
    assert proc_main._c_hook_arm(proc_main.C_HOOKS[proc_main.IN_APPEND], 1, 2) == -1
    monkeypatch.setenv("MMJ_TEST_HOOKS", "1")
    assert proc_main._c_hook_arm(9, 1, 2) == -1
    assert proc_main._c_hook_arm(proc_main.C_HOOKS[proc_main.MID_ROLL], 0, 2) == -1
