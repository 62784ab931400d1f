"""The compiled OUCH field decoder against ouch.decode (its numpy reference) on random bytes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reports import ouch, ouchcols

_TYPES = sorted({t for f in ouch.OUTBOUND_FIELDS.values() for t in f} | {ord("Z")})
_IN_TYPES = sorted({t for f in ouch.INBOUND_FIELDS.values() for t in f} | {ord("X")})


def _same(got, want):
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert np.array_equal(got[name], want[name]), name


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 300), st.booleans(), st.booleans())
def test_compiled_decode_equals_the_numpy_decode(seed, n, placed, subset):
    rng = np.random.default_rng(seed)
    for fields, types, width in ((ouch.OUTBOUND_FIELDS, _TYPES, 96), (ouch.INBOUND_FIELDS, _IN_TYPES, 64)):
        wide = rng.integers(0, 256, (n, width + 5), dtype=np.uint8)
        raw = wide[:, 2:2 + width]                  # rows strided as a structured array's field
        msg = rng.choice(types, n).astype(np.uint8)
        names = sorted(rng.choice(list(fields), 3, replace=False).tolist()) if subset else None
        at = size = None
        if placed:
            size = n + int(rng.integers(0, 20))
            at = np.sort(rng.choice(size, n, replace=False)) if n else np.zeros(0, np.int64)
        _same(ouchcols.decode(raw, msg, fields, names=names, at=at, size=size),
              ouch.decode(raw, msg, fields, names=names, at=at, size=size))


def test_compiled_decode_refuses_rows_too_short_for_a_field_and_places_out_of_range():
    raw = np.zeros((2, 20), np.uint8)
    msg = np.array([ord("A"), ord("A")], np.uint8)
    with pytest.raises(ValueError, match="runs past"):
        ouchcols.decode(raw, msg, ouch.OUTBOUND_FIELDS, names=["price"])
    with pytest.raises(ValueError, match="at must lie"):
        ouchcols.decode(raw, msg, ouch.OUTBOUND_FIELDS, names=["token"], at=np.array([0, 5]), size=3)
    assert ouchcols.decode(raw[:0], msg[:0], ouch.OUTBOUND_FIELDS, names=["token"])["token"].dtype == "S14"


def test_a_field_set_takes_uint8_only_for_one_byte_fields():
    from reports.errors import KernelInputError

    with pytest.raises(KernelInputError, match="4-byte integer field goes to int64, not uint8"):
        ouchcols.FieldSet(ouch.OUTBOUND_FIELDS, {"shares": np.zeros(3, np.uint8)})
    ouchcols.FieldSet(ouch.INBOUND_FIELDS, {"side": np.zeros(3, np.uint8)})      # 1 byte: fine
    with pytest.raises(KernelInputError, match="at must lie"):
        ouchcols.decode(np.zeros((1, 20), np.uint8), np.array([ord("A")], np.uint8), ouch.OUTBOUND_FIELDS,
                        names=["token"], at=np.array([0]))                           # no size given
