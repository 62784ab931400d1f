"""numtext's numpy-built decimal text against Arrow's own casts (the reference it replaced)."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from reports import arrowcols as ac
from reports import numtext

INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
EDGES = [0, 1, -1, 9, 10, -10, 99, 100, 999, 1000, -1000, 10**9, 10**18 - 1, 2**63 - 1, -(2**63)]


def _valid(draw_mask, n):
    return None if draw_mask is None else np.array((draw_mask * n)[:n], bool)


@settings(max_examples=300, deadline=None)
@given(st.lists(INT64, max_size=60), st.sampled_from([0, 1, 2, 4]), st.one_of(st.none(), st.lists(st.booleans(), min_size=1, max_size=7)))
def test_scaled_text_is_arrows_decimal_cast(values, scale, mask):
    v = np.array(values + EDGES, np.int64)
    valid = _valid(mask, len(v))
    got = numtext.scaled_text(v, scale, valid)
    got.validate(full=True)
    if scale:
        small = np.abs(v.astype(object)) < 10**17            # decimal128(18, s) holds these exactly
        v, valid = v[small], None if valid is None else valid[small]
        got = numtext.scaled_text(v, scale, valid)
        ref = ac.decimal(v, scale, 18, valid).cast(pa.string())
    else:
        ref = pa.array(v, mask=None if valid is None else ~valid).cast(pa.string())
    assert got.to_pylist() == ref.to_pylist()


@settings(max_examples=200, deadline=None)
@given(st.lists(UINT64, max_size=60))
def test_integer_text_of_unsigned_is_arrows_cast(values):
    v = np.array(values + [0, 2**64 - 1, 2**63], np.uint64)
    assert numtext.integer_text(v).to_pylist() == pa.array(v).cast(pa.string()).to_pylist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**20 - 1).filter(lambda x: x < 2**64), max_size=40), st.binary(max_size=8))
def test_padded_text_is_prefix_and_zero_padded_digits(values, prefix):
    prefix = bytes(b % 26 + 65 for b in prefix)              # ASCII letters
    v = np.array(values, np.uint64)
    assert numtext.padded_text(v, 20, prefix).to_pylist() == [prefix.decode() + f"{x:020d}" for x in values]


def test_padded_text_refuses_values_that_do_not_fit():
    with pytest.raises(ValueError, match="more than 3 digits"):
        numtext.padded_text(np.array([1000], np.uint64), 3)
    with pytest.raises(ValueError, match="negative"):
        numtext.padded_text(np.array([-1], np.int64), 3)


def test_empty_columns():
    assert len(numtext.scaled_text(np.zeros(0, np.int64), 4)) == 0
    assert len(numtext.padded_text(np.zeros(0, np.uint64), 20, b"X")) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=14), max_size=40))
def test_token_text_is_arrows_reading_of_the_bytes(tokens):
    """Arrow's reading where the bytes are UTF-8; else each invalid byte escaped (venue garbage
    goes to rejects showing its bytes, never crashes the report)."""
    keys = np.array(tokens, dtype="S14")
    got = numtext.token_text(keys)
    got.validate(full=True)
    try:
        ref = pa.array(keys, type=pa.binary()).cast(pa.string()).to_pylist()
    except pa.ArrowInvalid:
        ref = [bytes(k).split(b"\0", 1)[0].decode("utf-8", "backslashreplace") for k in keys]
    assert got.to_pylist() == ref


def test_scale_and_width_outside_the_kernels_range_are_refused():
    with pytest.raises(ValueError, match="scale 19"):
        numtext.scaled_text(np.zeros(1, np.int64), 19)
    with pytest.raises(ValueError, match="width outside"):
        numtext.padded_text(np.zeros(1, np.uint64), 21)


TEXT = st.one_of(st.none(), st.text(max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), max_size=40), st.sampled_from(["", "_", "--"]), st.integers(0, 3),
       st.sampled_from(["", "DAY=", "é"]))
def test_join_text_is_arrows_binary_join(rows, sep, cut, constant):
    """Columns (sliced, with nulls) and constants joined by the kernel as by Arrow's compute."""
    a = pa.array([r[0] for r in rows], pa.string()).slice(min(cut, len(rows)))
    b = pa.array([r[1] for r in rows], pa.string()).slice(min(cut, len(rows)))
    for parts in ([a], [a, b], [constant, a], [a, constant, b]):
        got = numtext.join_text(parts, sep)
        got.validate(full=True)
        ref = pa.compute.binary_join_element_wise(*parts, sep)
        assert got.to_pylist() == ref.to_pylist()


def test_join_text_refuses_parts_that_are_not_one_length_of_strings():
    with pytest.raises(ValueError, match="one length"):
        numtext.join_text([pa.array(["a"]), pa.array(["a", "b"])])
    with pytest.raises(ValueError, match="one length"):
        numtext.join_text([pa.array([1])])
    with pytest.raises(ValueError, match="a column"):
        numtext.join_text(["a", "b"])
