"""A snapshot records the replay settings it was made under (clock profile, fresh_session): a
replay under other settings does not resume from it (it would trust state those settings did not
produce) and says why; the standby makes its snapshots under the engine's own clock profile, the
one recovery replays with."""
from __future__ import annotations

import json
import pathlib

from mm_core.engine import Engine
from mm_core.risk import Limits, RiskGateway
from recovery.replay import replay_journal
from recovery.standby import follow
from tests.mm_core.wire import LIMITS_TEXT
from journal import Journal
from journal.catalogue import RecordType, TsSource, pack
from mm_core.events import ClockSample
from tests.recovery.journaling import RunnerLike, fresh_engine, session_events, write_session


def headers(snaps) -> list[dict]:
    return [json.loads(p.read_bytes().partition(b"\n")[0]) for p in sorted(pathlib.Path(snaps).glob("*.snap"))]


def engine_with_profile(profile: str) -> Engine:
    base = fresh_engine()
    text = LIMITS_TEXT.replace('clock_profile = "eu-hft"', f'clock_profile = "{profile}"')
    return Engine(base.cfg, base.symbols, RiskGateway(Limits.from_toml(text)))


class AllProfiles(RunnerLike):
    """Journals a compliant clock sample as compliant for every profile (journaling's marks only
    eu-hft's bit), so a us-cat engine's replay sees what it was fed."""

    def feed(self, event) -> list:
        if not isinstance(event, ClockSample):
            return super().feed(event)
        mask = 0b111 if event.compliant else 0
        self.journal.append(RecordType.CLOCK_SAMPLE, pack(RecordType.CLOCK_SAMPLE, state=1, compliant_mask=mask),
                            ts_ns=event.now_ns, ts_source=int(TsSource.USER))
        actions = self.engine.on_event(event)
        self.act(actions, event.now_ns)
        return actions


def test_a_snapshot_made_under_other_replay_settings_is_skipped(tmp_path):
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    write_session(path, session_events(3, 200)).journal.close()
    made = replay_journal(path, fresh_engine(), snapshots=snaps, snapshot_every=100)    # eu-hft, fresh
    assert made.snapshots_written >= 1
    assert {json.dumps(h["replay"], sort_keys=True) for h in headers(snaps)} == {
        json.dumps({"profile": "eu-hft", "fresh_session": True}, sort_keys=True)}
    for other in ({"profile": "us-cat"}, {"fresh_session": False}):
        full = replay_journal(path, fresh_engine(), **other)
        fast = replay_journal(path, fresh_engine(), snapshots=snaps, **other)
        assert not fast.snapshot, other
        assert fast.snapshots_skipped and all("made by a replay under other settings" in r
                                              for r in fast.snapshots_skipped)
        assert (fast.state_hash, fast.events, fast.divergence_count) == (
            full.state_hash, full.events, full.divergence_count)
    same = replay_journal(path, fresh_engine(), snapshots=snaps)
    assert same.snapshot and same.state_hash == made.state_hash


def test_the_standby_snapshots_under_the_engines_clock_profile(tmp_path):
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    events = session_events(5, 200)
    with Journal(path, segment_size=1 << 20, checkpoint_every=64) as journal:     # a us-cat session
        shell = AllProfiles(engine_with_profile("us-cat"), journal)
        shell.start(events[0].now_ns)
        for event in events:
            shell.feed(event)
    result = follow(path, engine_with_profile("us-cat"), snaps, every=100, idle_s=0.5, stop=None)
    assert result.deterministic and result.snapshots_written >= 1
    assert {h["replay"]["profile"] for h in headers(snaps)} == {"us-cat"}
    resumed = replay_journal(path, engine_with_profile("us-cat"), profile="us-cat", snapshots=snaps)
    full = replay_journal(path, engine_with_profile("us-cat"), profile="us-cat")
    assert resumed.snapshot and resumed.state_hash == full.state_hash
