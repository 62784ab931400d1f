"""Session log: sequence numbering, replay ranges, torn and corrupt tails, reopen."""
from __future__ import annotations

import pytest

from mm_core.venue.errors import SessionLogError
from mm_core.venue.session_log import SessionLog, read_session_log


def payloads(n, start=0):
    return [f"message-{i:05d}".encode() * (1 + i % 3) for i in range(start, start + n)]


def test_append_flush_read_back_by_sequence(tmp_path):
    log = SessionLog(tmp_path / "u.soup")
    msgs = payloads(500)
    for i, p in enumerate(msgs, 1):
        assert log.append(p) == i
    assert log.durable_sequence == 0          # nothing readable before flush
    log.flush()
    assert log.messages() == msgs
    assert log.messages(321) == msgs[320:]
    frames, nxt = log.read_frames(10, max_bytes=100)
    assert 10 < nxt < 500 and frames[2:3] == b"S"
    assert log.read_frames(501) == (b"", 501)
    log.close()


def test_reopen_continues_numbering_and_drops_torn_or_corrupt_tail(tmp_path):
    path = tmp_path / "u.soup"
    log = SessionLog(path)
    for p in payloads(10):
        log.append(p)
    log.close()
    size = path.stat().st_size
    with open(path, "ab") as fh:                 # a torn record: length says more than exists
        fh.write(b"\x00\x30Spartial")
    reopened = SessionLog(path)
    assert reopened.discarded_bytes == 10 and path.stat().st_size == size
    assert reopened.next_sequence == 11
    reopened.append(b"eleven")
    reopened.close()
    assert read_session_log(path)[-1] == b"eleven" and len(read_session_log(path)) == 11
    data = bytearray(path.read_bytes())           # flip one payload byte of record 5
    offset = sum(2 + 1 + len(p) + 4 for p in payloads(4)) + 3
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert len(read_session_log(path)) == 4       # a reader stops there but never truncates
    assert path.stat().st_size == len(data)
    assert len(SessionLog(path).messages()) == 4  # a writer cuts the corrupt tail


def test_readonly_log_refuses_appends_and_missing_dir_is_typed(tmp_path):
    path = tmp_path / "u.soup"
    SessionLog(path).close()
    with pytest.raises(SessionLogError):
        SessionLog(path, readonly=True).append(b"x")
    with pytest.raises(SessionLogError):
        SessionLog(tmp_path / "no" / "such" / "dir.soup")


def test_sync_covers_what_was_flushed(tmp_path):
    log = SessionLog(tmp_path / "u.soup")
    log.append(b"one")
    log.sync()
    assert log.synced_sequence == 0          # not flushed yet: nothing to fsync
    log.flush()
    log.sync()
    assert log.synced_sequence == 1
    log.close()
