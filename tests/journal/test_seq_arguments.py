"""Sequence arguments out of the C core's uint64 range (or not integers) are the journal's typed
InvalidArgument naming the argument and the range, never cffi's untyped OverflowError; in-range
ones keep their meaning."""
from __future__ import annotations

import numpy as np
import pytest

from journal import InvalidArgument, Journal, Reader, RecordNotFound, RecordType, Tailer

BAD = [-1, 2**64, 10**30, 1.5, "3"]


@pytest.fixture
def journal_dir(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=65536) as j:
        for i in range(5):
            j.append(RecordType.MD_PACKET, b"p%d" % i)
    return d


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_reader_refuses_a_sequence_out_of_range(journal_dir, value):
    with Reader(journal_dir) as r:
        with pytest.raises(InvalidArgument, match=r"^seq must be a sequence number: an integer in 0\.\.2\*\*64-1"):
            r.get(value)
        with pytest.raises(InvalidArgument, match=r"^first_seq must be .* 0\.\.2\*\*64-1"):
            list(r.records(first_seq=value))
        with pytest.raises(InvalidArgument, match=r"^last_seq must be .* 0\.\.2\*\*64-1"):
            list(r.records(last_seq=value))
        with pytest.raises(InvalidArgument, match=r"^first_seq must be"):
            r.read_blobs(None, value)
        with pytest.raises(InvalidArgument, match=r"^last_seq must be"):
            r.read_blobs(RecordType.MD_PACKET, 1, value)


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_tailer_refuses_a_from_seq_out_of_range(journal_dir, value):
    with pytest.raises(InvalidArgument, match=r"^from_seq must be a sequence number: an integer in 0\.\.2\*\*64-1"):
        Tailer(journal_dir, from_seq=value)


def test_in_range_sequences_keep_their_meaning(journal_dir):
    with Reader(journal_dir) as r:
        assert r.get(np.uint64(3)).payload == b"p2"
        with pytest.raises(RecordNotFound):
            r.get(2**64 - 1)
        assert [rec.seq for rec in r.records(first_seq=np.int64(4), last_seq=2**64 - 1)] == [4, 5]
        assert len(r.read_blobs(None, 0, 2**64 - 1)[0]) == 5
    with Tailer(journal_dir, from_seq=np.uint64(5)) as t:
        assert t.next().seq == 5
    with Tailer(journal_dir, from_seq=2**64 - 1) as t:
        assert t.next() is None
