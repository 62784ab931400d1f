"""After a recovery the resumed runner converts a NIC's PHC (TAI) stamps with the UTC offset the
journal last recorded, as a replay of the journal does, not with the 37 s default until its first
clock sample carries a valid one: live and replay give the engine the same times. Real runner,
real journal, the embedded venue on loopback; the market-data socket's stamps are put on the PHC
(TAI) timescale, as a NIC with hardware timestamping would give them."""
from __future__ import annotations

import dataclasses
import time

import pytest

from journal import Journal, Reader, RecordType
from journal.catalogue import TsSource, unpack_json
from mm_core.engine import Engine
from mm_core.events import MarketData
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.codecheck import session_start
from recovery.recover import recover
from recovery.replay import replay_journal
from tests.mm_core.wire import SYMBOLS, gateway
from tests.recovery.conftest import free_udp_port
from tests.recovery.session import CONFIG, LockedClock, settings_for

S = 1_000_000_000
ANNOUNCED = 38            # TAI - UTC after a (future) leap second: not the 37 s default


class AnnouncingClock(LockedClock):
    """A locked clock whose grandmaster announces `offset` (valid or not) as TAI - UTC."""

    def __init__(self, offset: int, valid: bool) -> None:
        self.offset, self.valid = offset, valid

    def current(self):
        return dataclasses.replace(super().current(), utc_offset=self.offset, utc_offset_valid=self.valid)


class PhcStamped:
    """The market-data socket as a NIC's PHC stamps it: on the TAI timescale (UTC + TAI-UTC)."""

    def __init__(self, sock, offset_s: int) -> None:
        self._sock, self._offset_ns = sock, offset_s * S

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def recv(self, bufsize: int = 65536):
        data, rx_ns, _ = self._sock.recv(bufsize)
        return data, rx_ns + self._offset_ns, TsSource.HW_PHC

    def recvfrom(self, bufsize: int = 65536):
        data, sender, rx_ns, _ = self._sock.recvfrom(bufsize)
        return data, sender, rx_ns + self._offset_ns, TsSource.HW_PHC


def trade(engine: Engine, journal, settings: RunnerSettings, clock, seconds: float) -> Runner:
    runner = Runner(engine, journal, settings, clock)
    runner.connect()
    runner._md = PhcStamped(runner._md, ANNOUNCED)
    runner.run(seconds)
    return runner


def md_after(path: str, seq: int) -> list:
    with Reader(path) as reader:
        return [r for r in reader.records(rtypes=[RecordType.MD_PACKET]) if r.seq > seq]


def last_recon_seq(path: str) -> int:
    with Reader(path) as reader:
        recon = list(reader.records(rtypes=[RecordType.RECON]))
    assert unpack_json(recon[-1].payload)["kind"] == "outcome"
    return recon[-1].seq


def test_the_resumed_runner_starts_from_the_journals_utc_offset(tmp_path):
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=30.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    path = str(tmp_path / "journal")
    with Venue(config) as venue:
        ports = venue.ports
        settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest)
        engine = Engine(CONFIG, SYMBOLS, gateway())
        with Journal(path) as journal:
            now = time.clock_gettime_ns(time.CLOCK_REALTIME)
            journal.append(RecordType.SESSION_START, session_start(engine=engine, now_ns=now), ts_ns=now,
                           ts_source=int(TsSource.USER))
            trade(engine, journal, settings, AnnouncingClock(ANNOUNCED, True), 1.0)
        assert any(r.ts_source == TsSource.HW_PHC for r in md_after(path, 0))
        result = recover(settings_for(path, ("127.0.0.1", ports.ouch)))
        assert result.reconciled, result.reasons
        assert result.utc_offset_s == ANNOUNCED
        recovered = last_recon_seq(path)           # its OUTCOME: what follows is the resumed run
        # the grandmaster no longer marks its offset valid: only the journal's tells TAI from UTC
        resumed = dataclasses.replace(settings, fresh_session=False)
        engine = result.engine
        seen: list[int] = []
        feed = engine.on_event

        def on_event(event):
            if isinstance(event, MarketData):
                seen.append(event.now_ns)
            return feed(event)
        engine.on_event = on_event
        with Journal(path) as journal:
            with pytest.raises(RunnerError, match="UTC offset its journal last recorded"):
                Runner(engine, journal, resumed, AnnouncingClock(ANNOUNCED, False))
            runner = trade(engine, journal, dataclasses.replace(resumed, utc_offset_s=result.utc_offset_s),
                           AnnouncingClock(ANNOUNCED, False), 1.0)
        assert runner.utc_offset_s == ANNOUNCED
    stamped = md_after(path, recovered)
    assert stamped and all(r.ts_source == TsSource.HW_PHC for r in stamped)
    assert seen == [r.ts_ns - ANNOUNCED * S for r in stamped]
    # and a replay of the whole journal (both sessions and the recovery) decides as the live engine
    # did (its event count differs by the runner's unjournaled journal-health feed at start)
    again = replay_journal(path, Engine(CONFIG, SYMBOLS, gateway()))
    assert again.deterministic, again.divergences[:3]
    assert again.utc_offset_s == ANNOUNCED and again.engine.now == engine.now
    assert again.engine.oms.state_items() == engine.oms.state_items()


def test_a_resumed_runner_refuses_an_implausible_offset():
    engine = Engine(CONFIG, SYMBOLS, gateway())
    for offset in (-1, 1001, True, 37.0):
        with pytest.raises(RunnerError, match="implausible TAI-UTC offset"):
            Runner(engine, None, RunnerSettings(fresh_session=False, utc_offset_s=offset), LockedClock())
