"""The engine's order bytes: OUCH 4.2 Enter/Replace/Cancel/Modify inside a SoupBinTCP Unsequenced Data
packet, packed in one struct call with the parts fixed for a session (stock, firm, flags)
encoded once.

Owns nothing of the format itself: the bytes are exactly soupbintcp.encode(UnsequencedData(
ouch.encode(msg))) (tests/mm_core/test_orderwire.py proves it), and any value the one-call pack
cannot take (a long or non-ASCII token, a number outside u32) goes through those codecs, which
raise their usual BadField. Must not know about risk, the OMS or why an order is sent.
"""
from __future__ import annotations

import struct

from mm_core.protocol import ouch, soupbintcp

__all__ = ["OrderWire"]

# SoupBinTCP length (H) and type 'U', then the OUCH message as in ouch.py's layouts
_ENTER = struct.Struct(">Hcc14scI8sII4scccIcc")
_REPLACE = struct.Struct(">Hcc14s14sIIIccI")
_CANCEL = struct.Struct(">Hcc14sI")
_MODIFY = struct.Struct(">Hcc14scI")
# OUCH 4.2 sides: buy, sell (long), sell short, sell short exempt (a sell's Reg SHO marking)
_U, _SIDES = b"U", {"B": b"B", "S": b"S", "T": b"T", "E": b"E"}
_TOKEN_WIDTH = 14


def _token(token: str) -> bytes | None:
    """The padded token bytes, or None when only the codec can say what is wrong with it."""
    if type(token) is not str or len(token) > _TOKEN_WIDTH or not token.isascii() or token.endswith(" "):
        return None
    return token.encode("ascii").ljust(_TOKEN_WIDTH, b" ")


def _framed(msg) -> bytes:
    return soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(msg)))


class OrderWire:
    """Order packets for one firm; stocks by name, their padded bytes memoised."""

    def __init__(self, firm: str) -> None:
        self.firm = firm
        self._firm_raw = ouch.encode(ouch.EnterOrder("T", "B", 1, "X", 1, 0, firm, "Y", "P", "N", 0, "N", " "))[36:40]
        self._stocks: dict[str, bytes] = {}

    def enter(self, token: str, side: str, shares: int, stock: str, price: int, tif: int) -> bytes:
        raw_stock = self._stocks.get(stock)
        if raw_stock is None:
            # the codec checks the name once (ASCII, <= 8, no padding): a bad one raises BadField
            raw_stock = ouch.encode(ouch.EnterOrder("T", "B", 1, stock, 1, 0, self.firm,
                                                    "Y", "P", "N", 0, "N", " "))[20:28]
            self._stocks[stock] = raw_stock
        raw_token, raw_side = _token(token), _SIDES.get(side)
        if raw_token is not None and raw_side is not None:
            try:
                return _ENTER.pack(50, _U, b"O", raw_token, raw_side, shares, raw_stock, price, tif,
                                   self._firm_raw, b"Y", b"P", b"N", 0, b"N", b" ")
            except struct.error:
                pass
        return _framed(ouch.EnterOrder(token, side, shares, stock, price, tif, self.firm,
                                       "Y", "P", "N", 0, "N", " "))

    def replace(self, orig_token: str, token: str, shares: int, price: int, tif: int) -> bytes:
        raw_orig, raw_token = _token(orig_token), _token(token)
        if raw_orig is not None and raw_token is not None:
            try:
                return _REPLACE.pack(48, _U, b"U", raw_orig, raw_token, shares, price, tif, b"Y", b"N", 0)
            except struct.error:
                pass
        return _framed(ouch.ReplaceOrder(orig_token, token, shares, price, tif, "Y", "N", 0))

    def cancel(self, token: str, shares: int) -> bytes:
        raw_token = _token(token)
        if raw_token is not None:
            try:
                return _CANCEL.pack(20, _U, b"X", raw_token, shares)
            except struct.error:
                pass
        return _framed(ouch.CancelOrder(token, shares))

    def modify(self, token: str, side: str, shares: int) -> bytes:
        raw_token, raw_side = _token(token), _SIDES.get(side)
        if raw_token is not None and raw_side is not None:
            try:
                return _MODIFY.pack(21, _U, b"M", raw_token, raw_side, shares)
            except struct.error:
                pass
        return _framed(ouch.ModifyOrder(token, side, shares))
