"""SESSION_START grew a code fingerprint (layout 2) and then the order-token tag (layout 3); records
of layouts 1 (90 bytes) and 2 (122 bytes), written before, still read: unpack and Reader.read_fixed
give them the current layout with the fields they lack zero (the fingerprint read as unknown, the tag
as none), alone or mixed with records of layout 3, and the reports that read SESSION_START keep
working on such journals. Any other payload size is still an error."""
from __future__ import annotations

import numpy as np
import pytest

import journal.writer
from journal import Journal, Reader
from journal.catalogue import (EARLIER_SIZES, PAYLOAD_DTYPES, RecordType, TsSource, code_fingerprint, pack,
                               token_tag, unpack)
from journal.errors import PayloadSizeError

START = RecordType.SESSION_START
FP = bytes(range(1, 33))


def v1(session_id: int, venue: bytes = b"V1SESSION") -> bytes:
    return pack(START, session_id=session_id, code_version=b"0.1.0", limits_version=b"L7",
                venue_session=venue, profile=b"eu-hft")[:EARLIER_SIZES[START][0]]


def v2(session_id: int, venue: bytes = b"V2SESSION") -> bytes:
    return pack(START, session_id=session_id, code_version=b"0.1.0", venue_session=venue,
                code_fingerprint=FP)[:EARLIER_SIZES[START][1]]


def v3(session_id: int, venue: bytes = b"V3SESSION", tag: bytes = b"AYS0E") -> bytes:
    return pack(START, session_id=session_id, code_version=b"0.1.0", venue_session=venue, code_fingerprint=FP,
                token_tag=tag)


def timer(now: int) -> bytes:
    return pack(RecordType.TIMER, timer_id=1, now_ns=now)


def write_old(path, monkeypatch, payloads, size: int | None = None) -> None:
    """As the code before wrote: the writer registers SESSION_START's earlier size."""
    with monkeypatch.context() as m:
        sizes = dict(PAYLOAD_DTYPES)
        sizes[START] = np.dtype((np.void, size or EARLIER_SIZES[START][0]))
        m.setattr(journal.writer, "PAYLOAD_DTYPES", sizes)
        with Journal(path) as j:
            for rtype, payload in payloads:
                j.append(rtype, payload, ts_ns=10**9, ts_source=int(TsSource.USER))


def test_earlier_layouts_are_prefixes_of_layout_3_ending_on_field_boundaries():
    dtype = PAYLOAD_DTYPES[START]
    ends = {dtype.fields[name][1] + dtype.fields[name][0].itemsize for name in dtype.names}
    assert EARLIER_SIZES[START] == (90, 122) and {90, 122} <= ends and dtype.itemsize == 130
    assert dtype.names[-2:] == ("code_fingerprint", "token_tag")


def test_unpack_widens_layout_1_with_an_unknown_fingerprint_and_layout_2_with_no_tag():
    old, mid, new = unpack(START, v1(3)), unpack(START, v2(3)), unpack(START, v3(3))
    assert int(old["session_id"]) == 3 and old["profile"] == b"eu-hft" and old["limits_version"] == b"L7"
    assert code_fingerprint(old) is None and code_fingerprint(mid) == code_fingerprint(new) == FP.hex()
    assert token_tag(old) == token_tag(mid) == "" and token_tag(new) == "AYS0E"
    assert old.tobytes()[:90] == v1(3) and mid.tobytes()[:122] == v2(3)
    for cut in (v1(3)[:-1], v2(3)[:-1], v3(3)[:-1]):
        with pytest.raises(ValueError, match="layout needs 130"):
            unpack(START, cut)


def test_read_fixed_reads_old_and_new_records_together(tmp_path, monkeypatch):
    path = str(tmp_path / "j")
    write_old(path, monkeypatch, [(START, v1(1)), (RecordType.TIMER, timer(5))])
    write_old(path, monkeypatch, [(START, v2(2)), (RecordType.TIMER, timer(6))], size=EARLIER_SIZES[START][1])
    with Journal(path) as j:                 # the new code goes on writing the same journal
        j.append(START, v3(3), ts_ns=2 * 10**9, ts_source=int(TsSource.USER))
        j.append(RecordType.TIMER, timer(7))
    with Reader(path) as r:
        rows = r.read_fixed(START)
        assert rows.dtype.itemsize == 20 + 130
        assert rows["seq"].tolist() == [1, 3, 5] and rows["session_id"].tolist() == [1, 2, 3]
        assert rows["ts_ns"].tolist() == [10**9, 10**9, 2 * 10**9] and rows["ts_source"].tolist() == [3, 3, 3]
        assert [code_fingerprint(x) for x in rows] == [None, FP.hex(), FP.hex()]
        assert [token_tag(x) for x in rows] == ["", "", "AYS0E"]
        assert rows["venue_session"].tolist() == [b"V1SESSION", b"V2SESSION", b"V3SESSION"]
        both = r.read_fixed_many([RecordType.TIMER, START])
        assert both[RecordType.TIMER]["now_ns"].tolist() == [5, 6, 7] and len(both[START]) == 3
        assert r.read_fixed(START, 5, 6)["session_id"].tolist() == [3]      # new only: the C pass
        assert r.read_fixed(START, 1, 2)["session_id"].tolist() == [1]      # old only
        assert r.read_fixed(START, 3, 4)["session_id"].tolist() == [2]


def test_any_other_size_is_still_an_error(tmp_path, monkeypatch):
    path = str(tmp_path / "j")
    write_old(path, monkeypatch, [(START, bytes(100))], size=100)
    with Reader(path) as r, pytest.raises(PayloadSizeError, match="100 payload bytes"):
        r.read_fixed(START)


def test_reports_resolve_sessions_and_the_venue_session_of_an_old_journal(tmp_path, monkeypatch):
    from reports.cat import _venue_session
    from reports.source import Selection, open_slice
    path = str(tmp_path / "j")
    write_old(path, monkeypatch, [(START, v1(1, b"OLDVENUE")), (RecordType.TIMER, timer(5)),
                                  (START, v1(2, b"OLDVENUE2")), (RecordType.TIMER, timer(6))])
    with Journal(path) as j:
        j.append(START, v3(3, b"NEWVENUE"))
        j.append(RecordType.TIMER, timer(7))
    first = open_slice(path, Selection(session_id=2))
    assert (first.first_seq, first.last_seq) == (3, 4)
    assert _venue_session(first) == "OLDVENUE2"
    last = open_slice(path, Selection(session_id=3))
    assert (last.first_seq, last.last_seq) == (5, 6) and _venue_session(last) == "NEWVENUE"
