"""The engine's one-call order packets are byte for byte the OUCH and SoupBinTCP codecs' output,
and anything the codecs refuse is refused the same way."""
import pytest
from hypothesis import given, settings, strategies as st

from mm_core.orderwire import OrderWire
from mm_core.protocol import ProtocolError, ouch, soupbintcp

tokens = st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=14),
                   st.text(min_size=0, max_size=16))
u32 = st.one_of(st.integers(0, 2**32 - 1), st.integers(-5, 2**32 + 5))


def _codec(msg):
    return soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(msg)))


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except ProtocolError as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=300, deadline=None)
@given(tokens, st.sampled_from("BS"), u32, st.sampled_from(["ACME", "BOLT", "A", "ABCDEFGH"]), u32,
       st.sampled_from([0, 99999]))
def test_enter_is_the_codecs_bytes(token, side, shares, stock, price, tif):
    want = _outcome(lambda: _codec(ouch.EnterOrder(token, side, shares, stock, price, tif, "MMAU",
                                                   "Y", "P", "N", 0, "N", " ")))
    assert _outcome(OrderWire("MMAU").enter, token, side, shares, stock, price, tif) == want


@settings(max_examples=300, deadline=None)
@given(tokens, tokens, u32, u32, st.sampled_from([0, 99999]))
def test_replace_is_the_codecs_bytes(orig, token, shares, price, tif):
    want = _outcome(lambda: _codec(ouch.ReplaceOrder(orig, token, shares, price, tif, "Y", "N", 0)))
    assert _outcome(OrderWire("MMAU").replace, orig, token, shares, price, tif) == want


@settings(max_examples=200, deadline=None)
@given(tokens, u32)
def test_cancel_is_the_codecs_bytes(token, shares):
    want = _outcome(lambda: _codec(ouch.CancelOrder(token, shares)))
    assert _outcome(OrderWire("MMAU").cancel, token, shares) == want


def test_a_bad_stock_or_firm_is_the_codecs_error():
    with pytest.raises(ProtocolError):
        OrderWire("MMAU").enter("T1", "B", 1, "TOOLONGNAME", 1, 0)
    with pytest.raises(ProtocolError):
        OrderWire("FIRM5")
