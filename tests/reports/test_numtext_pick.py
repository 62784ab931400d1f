"""numtext.pick_text: strings picked from a small table by index, as Arrow's own take of that table
gives them (nulls for -1 and for None entries), whatever the entries' lengths."""
import numpy as np
import pyarrow as pa
import pytest

from reports import numtext


@pytest.mark.parametrize("values", [("IOC", "DAY=20260302", None, ""), ("x" * 40, "y"), (None,), ()])
def test_pick_text_is_the_take_of_the_table(values):
    rng = np.random.default_rng(7)
    idx = rng.integers(-1, len(values), 5000) if values else np.full(50, -1)
    got = numtext.pick_text(idx, values)
    table = pa.array(list(values) + [None], pa.string())
    want = table.take(pa.array(np.where(idx < 0, len(values), idx)))
    assert got.type == pa.string() and got.equals(want)
    got.validate(full=True)


def test_pick_text_refuses_an_index_outside_the_table():
    with pytest.raises(ValueError, match="outside the table"):
        numtext.pick_text(np.array([0, 2]), ("a", "b"))
    with pytest.raises(ValueError, match="outside the table"):
        numtext.pick_text(np.array([-2]), ("a",))
