"""catalogue.pack: the compiled struct layouts give the same bytes as a numpy record, and bad
fields are typed errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal.catalogue import PAYLOAD_DTYPES, CatalogueError, RecordType, _pack_numpy, pack, unpack


def _field_values(dtype: np.dtype):
    """A strategy of {field: value} for some of a layout's fields, values in range."""
    fields = {}
    for name in dtype.names:
        if name == "raw_len":
            continue
        f = dtype[name]
        if f.subdtype is not None:
            fields[name] = st.binary(max_size=f.shape[0])
        elif f.kind == "S":
            fields[name] = st.binary(max_size=f.itemsize + 4)      # longer texts are cut
        elif f.kind == "f":
            fields[name] = st.floats(allow_nan=False, width=64 if f.itemsize == 8 else 32)
        else:
            info = np.iinfo(f)
            fields[name] = st.integers(int(info.min), int(info.max))
    return st.fixed_dictionaries({}, optional=fields)


@pytest.mark.parametrize("rtype", sorted(PAYLOAD_DTYPES, key=int), ids=lambda r: RecordType(r).name)
def test_struct_pack_equals_numpy_record(rtype):
    @settings(max_examples=60, deadline=None)
    @given(_field_values(PAYLOAD_DTYPES[rtype]))
    def check(fields):
        packed = pack(rtype, **fields)
        assert packed == _pack_numpy(rtype, fields)
        assert len(packed) == PAYLOAD_DTYPES[rtype].itemsize
        if "raw" in fields:
            assert int(unpack(rtype, packed)["raw_len"]) == len(fields["raw"])
    check()


def test_values_struct_refuses_take_numpys_conversion():
    # a str token and numpy integers: converted as a numpy record would, same bytes
    a = pack(RecordType.ORDER_SENT, token="T1", price=np.int64(1), qty=np.uint32(5))
    b = pack(RecordType.ORDER_SENT, token=b"T1", price=1, qty=5)
    assert a == b


@pytest.mark.parametrize("value", [1234500.9999999, 1.0, np.float64(99.9), np.float32(7), "123", b"123",
                                   True, np.bool_(False), None, 10**30 + 0.5],
                         ids=lambda v: f"{type(v).__name__}:{v!r}")
@pytest.mark.parametrize("other", [{}, {"token": "T1"}], ids=["struct path", "numpy path"])
def test_integer_fields_take_only_integers(value, other):
    """Integers for money: a float price is not truncated, a str not parsed, a bool not taken as
    0/1, whichever path packs the record (a str text field sends it through numpy)."""
    with pytest.raises(CatalogueError, match=r"ORDER_SENT\.price is an integer field"):
        pack(RecordType.ORDER_SENT, price=value, **other)
    with pytest.raises(CatalogueError, match="price is an integer field"):
        _pack_numpy(RecordType.ORDER_SENT, {"price": value})


def test_integer_fields_take_numpy_integers_on_both_paths():
    for other in ({}, {"token": "T1"}):
        packed = pack(RecordType.ORDER_SENT, price=np.int64(1234500), qty=np.uint16(3), **other)
        assert int(unpack(RecordType.ORDER_SENT, packed)["price"]) == 1234500
        assert int(unpack(RecordType.ORDER_SENT, packed)["qty"]) == 3


def test_bad_fields_are_typed_errors():
    with pytest.raises(CatalogueError, match="no field"):
        pack(RecordType.ORDER_SENT, nonsense=1)
    with pytest.raises(CatalogueError, match="exceeds"):
        pack(RecordType.ORDER_SENT, raw=b"x" * 65)
    with pytest.raises(CatalogueError):
        pack(RecordType.ORDER_SENT, qty=-1)
    with pytest.raises(CatalogueError, match="no fixed layout"):
        pack(RecordType.METRICS, x=1)
