"""gather refuses handles that do not name a payload of the snapshot with a typed error, and
never crashes on them: not even when the snapshot has no segment at all."""
from __future__ import annotations

import numpy as np
import pytest

from journal import InvalidArgument, Journal, Reader
from tests.journal.jhelpers import segment_files


@pytest.mark.parametrize("count", [1, 9, 20])
def test_gather_on_an_empty_snapshot_is_refused(tmp_path, count):
    d = tmp_path / "j"
    with Journal(d) as j:
        j.append(20, b"abcd")
    with open(segment_files(d)[0], "r+b") as f:
        f.write(b"XXXX")                      # a bad header: the snapshot holds no segment
    with Reader(d) as r:
        assert r.segments() == [] and r.stopped["reason"]
        with pytest.raises(InvalidArgument):
            r.gather(np.zeros(count, np.uint64), np.dtype("V4"))


def test_gather_of_foreign_handles_is_refused(tmp_path):
    d = tmp_path / "j"
    with Journal(d) as j:
        for k in range(30):
            j.append(20, bytes([k]) * 4)
    with Reader(d) as r:
        pos = r.scan(fields=("pos",)).pos
        assert bytes(r.gather(pos, np.dtype("V4"))[3]) == bytes([3]) * 4
        for bad in (pos + (5 << 40), np.full(20, 7, np.uint64)):
            with pytest.raises(InvalidArgument):
                r.gather(bad, np.dtype("V4"))
