"""arrowcols' numpy -> Arrow builders against pa.array with a mask (their reference): the same
values, validity and types, for every dtype a report hands them, and codes / lookup_strings with
indices in and out of range."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from reports import arrowcols as ac

DTYPES = (np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(deadline=None)
@given(data=st.data())
def test_masked_is_pa_array_with_the_inverse_mask(dtype, data):
    n = data.draw(st.integers(0, 70))
    values = np.array(data.draw(st.lists(st.integers(0, 1 if dtype is np.bool_ else 100), min_size=n, max_size=n)),
                      dtype=dtype)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    got, want = ac.masked(values, valid), pa.array(values, mask=~valid)
    assert got.type == want.type and got.null_count == want.null_count and got.equals(want)
    assert ac.masked(values).equals(pa.array(values))
    strided = np.repeat(values, 2)[::2]                     # a view with gaps: copied first
    assert ac.masked(strided, valid).equals(want)


def test_masked_dates_and_refused_dtypes():
    days = np.array([20514, 0, 20515], np.int32)
    valid = np.array([True, False, True])
    assert ac.masked(days, valid, pa.date32()).equals(pa.array(days, pa.date32(), mask=~valid))
    with pytest.raises(TypeError):
        ac.masked(np.array([b"a"], "S1"), None)
    with pytest.raises(TypeError):
        ac.masked(np.array([1], ">i8"), None)


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 4), st.booleans()), max_size=60))
def test_codes_is_the_checked_dictionary_array(rows):
    indices = np.array([i for i, _ in rows], np.int64)
    valid = np.array([v for _, v in rows], bool)
    names = ["A", "B", "C"]
    in_range = (indices >= 0) & (indices < len(names))
    if (valid & ~in_range).any():              # a valid row naming no code: refused as before
        with pytest.raises((pa.ArrowIndexError, pa.ArrowInvalid)):
            ac.codes(indices, names, valid)
        return
    got = ac.codes(indices, names, valid)
    want = pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32), mask=~valid), pa.array(names))
    assert got.equals(want) and got.null_count == int((~valid).sum())
    assert ac.codes(np.zeros(len(rows), np.int8), names).to_pylist() == ["A"] * len(rows)


@settings(deadline=None)
@given(st.lists(st.integers(-1, 3), max_size=60))
def test_lookup_strings_are_the_values_picked(indices):
    values = ["x", None, "a", "x"]
    got = ac.lookup_strings(np.array(indices, np.int64), values)
    assert got.to_pylist() == [values[i] if 0 <= i < len(values) else None for i in indices]
    assert got.dictionary.to_pylist() == ["a", "x"]
    ordered = ac.lookup_strings(np.array([i for i in indices if 0 <= i < 3], np.int64), ["a", "b", "c"])
    assert ordered.to_pylist() == [["a", "b", "c"][i] for i in indices if 0 <= i < 3]
