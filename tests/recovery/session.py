"""A trading session for recovery tests: the real runner (mm_core.runner) journaling ahead of the
engine against a venue on loopback. Run as a module it trades until killed or its time is up, so a
test can SIGKILL it mid-session: `python3 -m tests.recovery.session JOURNAL OUCH ITCH RR SECONDS`.

Also the settings recovery needs to rebuild that engine (the same config, symbols and limits).
"""
from __future__ import annotations

import sys
import time

from audit.health import ClockSample as HealthSample, Verdict
from journal import Journal
from journal.catalogue import ClockState, RecordType, TsSource
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from recovery.codecheck import session_start
from recovery.recover import RecoverySettings
from tests.mm_core.wire import LIMITS_TEXT, SYMBOLS, gateway

CONFIG = EngineConfig(quoted=("ACME", "BOLT"))


class LockedClock:
    """Test double for audit.monitor.ClockMonitor: loopback has no PTP grandmaster, so this clock
    declares itself LOCKED and compliant for eu-hft (the runner journals it as such)."""

    def current(self):
        # a fresh measurement on every call, at the time it is taken (the runner journals a
        # sample once, at its own time)
        return HealthSample(ClockState.LOCKED, time.clock_gettime_ns(time.CLOCK_REALTIME), time.monotonic_ns(),
                            0, 0, 100, 0, None, None, 6, 0x21, 37, True,
                            False, False, True, True, 1, (), {"eu-hft": Verdict("eu-hft", True, ())})

    def compliant(self, profile, now_mono_ns=None):
        return profile == "eu-hft"


def settings_for(journal: str, venue=None, **overrides) -> RecoverySettings:
    return RecoverySettings(journal=journal, config=CONFIG, symbols=SYMBOLS, limits_text=LIMITS_TEXT,
                            venue=venue, **overrides)


def run(journal: str, ouch_port: int, itch_port: int, rerequest_port: int, seconds: float,
        config: EngineConfig = CONFIG, **runner):
    """A session as mm_core.session starts one: its SESSION_START names the code and its tokens'
    tag; `runner` overrides RunnerSettings (another venue user, say)."""
    settings = RunnerSettings(itch_port=itch_port, ouch_port=ouch_port, rerequest_port=rerequest_port, **runner)
    engine = Engine(config, SYMBOLS, gateway())
    with Journal(journal) as j:
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        j.append(RecordType.SESSION_START, session_start(engine=engine, now_ns=now), ts_ns=now,
                 ts_source=int(TsSource.USER))
        report = Runner(engine, j, settings, LockedClock()).run(seconds)
    return report, engine


if __name__ == "__main__":
    path, ouch, itch, rr, secs = sys.argv[1:6]
    print("ready", flush=True)
    run(path, int(ouch), int(itch), int(rr), float(secs))
