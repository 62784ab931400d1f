"""The journal's append-then-send (journal/_fastappend.c, AppendSend): the records are in the journal before
the bytes reach the socket, nothing is sent when an append is refused, bad arguments are refused
before anything is appended, and the GIL rule is the Appender's."""
from __future__ import annotations

import socket

import pytest

from journal import Journal, Reader, RecordType
from journal.errors import JournalClosed

from .jhelpers import SMALL_SEGMENT

MD = int(RecordType.MD_PACKET)


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    b.settimeout(1.0)
    yield a, b
    a.close()
    b.close()


def test_records_go_in_first_then_the_bytes_leave(tmp_path, pair):
    a, b = pair
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        seqs, status, err = j.append_then_send(MD, [b"one", b"two"], 2, 1, False, a.fileno(), b"on the wire")
        assert (seqs, status, err) == ((1, 2), 0, 0)
        assert j.append_then_send.send_entered_ns > 0
    assert b.recv(100) == b"on the wire"
    with Reader(str(tmp_path / "j")) as reader:
        records = list(reader.records())
    assert [(r.seq, r.rtype, bytes(r.payload), r.ts_source, r.clock_state) for r in records] == [
        (1, MD, b"one", 2, 1), (2, MD, b"two", 2, 1)]
    assert 0 < records[0].ts_ns <= records[1].ts_ns            # each stamped as it went in


def test_a_closed_journal_sends_nothing(tmp_path, pair):
    a, b = pair
    j = Journal(tmp_path / "j", segment_size=SMALL_SEGMENT)
    j.close()
    seqs, status, err = j.append_then_send(MD, [b"x"], 0, 0, True, a.fileno(), b"never")
    assert (seqs, err) == ((), 0)
    assert isinstance(j.refusal(status, MD), JournalClosed)
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(10)


def test_a_refused_send_is_returned_after_the_records(tmp_path, pair):
    a, b = pair
    a.shutdown(socket.SHUT_WR)
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        seqs, status, err = j.append_then_send(MD, (b"kept",), 0, 0, False, a.fileno(), b"refused")
        assert (seqs, status) == ((1,), 0) and err == 32       # EPIPE: the record stays journaled
        assert j.next_seq == 2


@pytest.mark.parametrize("args, error", [
    ((MD, [b"ok", "text"], 0, 0, False, 3, b"d"), TypeError),     # a payload that is not bytes
    ((MD, b"ok", 0, 0, False, 3, b"d"), TypeError),               # not a list of payloads
    ((MD, [], 0, 0, False, 3, b"d"), ValueError),                 # no record to send ahead of
    ((MD, [b"ok"], 0, 0, False, 3, b""), TypeError),              # nothing to send
    ((MD, [b"ok"], 0, 0, False, -1, b"d"), OverflowError),        # no descriptor
    ((MD, [b"ok"], 1 << 40, 0, False, 3, b"d"), OverflowError),
    ((MD, [b"ok"], 0, 0, False), TypeError),
])
def test_bad_arguments_are_refused_before_any_append(tmp_path, args, error):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        with pytest.raises(error):
            j.append_then_send(*args)
        assert j.next_seq == 1


@pytest.mark.parametrize("durability, kept", [("pagecache", True), ("group", False)])
def test_the_gil_rule_is_the_appenders(tmp_path, durability, kept):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT, durability=durability) as j:
        assert j.append_then_send.keep_gil is kept
        j.on_sync(lambda *a: None)
        assert not j.append_then_send.keep_gil
        j.on_sync(None)
        assert j.append_then_send.keep_gil is kept
