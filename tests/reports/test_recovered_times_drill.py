"""A real crash: the runner SIGKILLed mid-session on the embedded venue, its journal's tail torn,
recovery delivering the venue messages the journal lost (journaled at the recovery's clock). RTS
22 field 28 of each execution recovery journaled is the venue's own execution time: its OUCH
timestamp from midnight New York of the venue session's date (the date the venue recorded)."""
from __future__ import annotations

import datetime as dt

from journal import Reader, RecordType
from journal.catalogue import raw_bytes, unpack
from mm_core.protocol import ouch, soupbintcp
from mm_core.venue import sessiontime
from recovery.recover import recover
from reports.rts22 import COLUMNS, TIME_SOURCE
from reports.run import run
import pytest

from journal import JournalError
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.recovery.conftest import free_udp_port, sigkilled_session
from tests.recovery.journaling import tear
from tests.recovery.session import settings_for
from tests.reports.conftest import read

NS = 1_000_000_000


def _venue_executions(journal: str) -> dict[int, tuple[int, int]]:
    """Journal sequence -> (OUCH timestamp, record time) of each Executed the journal holds."""
    out = {}
    with Reader(journal) as reader:
        for rec in reader.records(rtypes=[RecordType.VENUE_MSG]):
            packet = soupbintcp.decode(raw_bytes(unpack(RecordType.VENUE_MSG, rec.payload)),
                                       soupbintcp.Direction.FROM_SERVER)
            if isinstance(packet, soupbintcp.SequencedData) and packet.payload[:1] == b"E":
                out[rec.seq] = (ouch.decode_outbound(packet.payload).timestamp, rec.ts_ns)
    return out


def _tear_point(records) -> int:
    """The journal sequence of an ORDER_SENT that comes after the ORDER_SENT creating the order of a
    fill and before that fill: torn there, the order's own record survives (its fills map to it) and
    the fill is recovery's to journal. (Tearing at the last ORDER_SENT before the first fill tore
    away the filled order's own record whenever it was that last one: every fill then rejected.)"""
    created: dict[str, int] = {}          # order token -> position of the ORDER_SENT creating it
    last_sent = -1
    for i, r in enumerate(records):
        if r.rtype == RecordType.ORDER_SENT:
            sent = unpack(RecordType.ORDER_SENT, r.payload)
            if sent["msg_type"] in (ord("O"), ord("U")):
                created.setdefault(bytes(sent["token"]).decode().rstrip(), i)
            last_sent = i
        elif r.rtype == RecordType.VENUE_MSG and unpack(RecordType.VENUE_MSG, r.payload)["msg_type"] == ord("E"):
            packet = soupbintcp.decode(raw_bytes(unpack(RecordType.VENUE_MSG, r.payload)),
                                       soupbintcp.Direction.FROM_SERVER)
            made = created.get(ouch.decode_outbound(packet.payload).token.rstrip())
            if made is not None and last_sent > made:
                return records[last_sent].seq
    raise AssertionError("no fill came after another order was sent: the session is too short")


def _has_tear_point(journal: str) -> bool:
    try:
        with Reader(journal) as reader:
            _tear_point(list(reader.records()))
        return True
    except (AssertionError, JournalError):
        return False


@pytest.fixture
def crashed_after_a_later_fill(tmp_path):
    """The runner SIGKILLed once its journal holds a fill of an order followed by another order
    (the tear point this test needs; a fixed count of orders and fills was not always enough on
    a loaded machine)."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=40.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    with Venue(config) as venue:
        journal = str(tmp_path / "journal")
        sigkilled_session(journal, venue.ports, port, lambda: _has_tear_point(journal),
                          "journaled no fill followed by another order (machine overloaded?)")
        yield venue, journal, ("127.0.0.1", venue.ports.ouch)


def test_field_28_of_the_fills_a_real_recovery_journaled_is_the_venues_execution_time(crashed_after_a_later_fill, tmp_path):
    venue, journal, address = crashed_after_a_later_fill
    with Reader(journal) as reader:
        records = list(reader.records())
    tear(journal, _tear_point(records), False)
    result = recover(settings_for(journal, address))
    assert result.reconciled, result.reasons
    day = dt.date.fromisoformat(next((tmp_path / "venue").rglob(sessiontime.DATE_FILE)).read_text().strip())
    stamps = _venue_executions(journal)
    run(["rts22"], journal, tmp_path / "o")
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    recovered = [r for r in rows if r[TIME_SOURCE] == "VENUE_EXECUTION_TIMESTAMP"]
    assert recovered, "the torn tail held the session's fills: recovery journaled them again"
    for r in recovered:
        seq = int(r[COLUMNS[2]][-20:])                    # the TRN ends with the execution's sequence
        stamp, journaled_at = stamps[seq]
        utc = sessiontime.to_utc_ns(stamp, day)
        assert journaled_at - utc > 1_000_000         # the recovery's clock: well after the fill
        expected = dt.datetime.fromtimestamp(utc // NS, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") \
            + f"{utc % NS // 1000:06d}Z"
        assert r[COLUMNS[28]] == expected
