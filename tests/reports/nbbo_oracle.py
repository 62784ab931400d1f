"""Test oracle for reports.nbbo: the market quote rebuilt from the raw ITCH 5.0 in MD_PACKET records
(MoldUDP64 packets) one message at a time, top of book per symbol after each packet that touched it.

Owns a minimal order-level book (add, execute, cancel, delete, replace) keyed by order reference;
the journal records no NBBO of its own, so this is the quote reports use for Rule 605/610. One
venue's book stands in for the NBBO (the embedded venue is the only market). This is a per-message
Python loop over variable-length records; it is not on the order-records/clock hot path.
"""
from __future__ import annotations

import struct

import numpy as np

from journal.catalogue import RecordType
from reports.nbbo import QuoteTimeline
from reports.source import JournalSlice

MOLD_HEADER = 20
_U16 = struct.Struct(">H")
_ADD = struct.Struct(">QcI8sI")          # ref, side, shares, stock, price (after the 11-byte head)
_EXEC = struct.Struct(">QI")             # ref, shares (E, C, X)
_REF = struct.Struct(">Q")
_REPLACE = struct.Struct(">QQII")        # original ref, new ref, shares, price
_LOCATE = struct.Struct(">H")


class _Book:
    def __init__(self):
        self.orders: dict[int, tuple[int, bool, int, int]] = {}    # ref -> (locate, is_bid, price, shares)
        self.levels: dict[tuple[int, bool], dict[int, int]] = {}
        self.best: dict[tuple[int, bool], int] = {}

    def add(self, locate, is_bid, price, shares, ref):
        self.orders[ref] = (locate, is_bid, price, shares)
        lv = self.levels.setdefault((locate, is_bid), {})
        lv[price] = lv.get(price, 0) + shares
        cur = self.best.get((locate, is_bid))
        if cur is None or (price > cur if is_bid else price < cur):
            self.best[(locate, is_bid)] = price

    def reduce(self, ref, shares=None):
        entry = self.orders.get(ref)
        if entry is None:
            return None
        locate, is_bid, price, left = entry
        take = left if shares is None else min(shares, left)
        left -= take
        if left:
            self.orders[ref] = (locate, is_bid, price, left)
        else:
            del self.orders[ref]
        lv = self.levels[(locate, is_bid)]
        lv[price] -= take
        if lv[price] <= 0:
            del lv[price]
            if self.best.get((locate, is_bid)) == price:
                if lv:
                    self.best[(locate, is_bid)] = max(lv) if is_bid else min(lv)
                else:
                    self.best.pop((locate, is_bid), None)
        return entry

    def top(self, locate):
        return self.best.get((locate, True), 0), self.best.get((locate, False), 0)


def build_timeline(src: JournalSlice, symbol_ids: dict[str, int]) -> QuoteTimeline:
    """Replay every MD_PACKET up to the range end (the book needs the day's earlier adds)."""
    headers, blob, offsets = src.reader.read_blobs(RecordType.MD_PACKET, None, src.last_seq)
    book = _Book()
    locate_symbol: dict[int, int] = {}
    out_seq, out_ts, out_src, out_sym, out_bid, out_ask = [], [], [], [], [], []
    view = memoryview(blob)
    for i in range(len(headers)):
        packet = view[int(offsets[i]):int(offsets[i + 1])]
        if len(packet) < MOLD_HEADER:
            continue
        count = _U16.unpack_from(packet, 18)[0]
        if count in (0, 0xFFFF):             # heartbeat / end of session
            continue
        touched = set()
        pos = MOLD_HEADER
        for _ in range(count):
            if pos + 2 > len(packet):
                break
            length = _U16.unpack_from(packet, pos)[0]
            msg = packet[pos + 2:pos + 2 + length]
            pos += 2 + length
            if len(msg) < 11:
                continue
            kind = msg[0]
            locate = _LOCATE.unpack_from(msg, 1)[0]
            if kind in (0x41, 0x46) and len(msg) >= 36:          # A / F add
                ref, side, shares, stock, price = _ADD.unpack_from(msg, 11)
                sym = symbol_ids.get(stock.decode("ascii", "replace").strip())
                if sym is not None:
                    locate_symbol[locate] = sym
                book.add(locate, side == b"B", price, shares, ref)
                touched.add(locate)
            elif kind == 0x52 and len(msg) >= 19:                # R stock directory
                sym = symbol_ids.get(bytes(msg[11:19]).decode("ascii", "replace").strip())
                if sym is not None:
                    locate_symbol[locate] = sym
            elif kind in (0x45, 0x43, 0x58) and len(msg) >= 23:   # E / C executed, X cancel
                ref, shares = _EXEC.unpack_from(msg, 11)
                if book.reduce(ref, shares):
                    touched.add(locate)
            elif kind == 0x44 and len(msg) >= 19:                # D delete
                if book.reduce(_REF.unpack_from(msg, 11)[0]):
                    touched.add(locate)
            elif kind == 0x55 and len(msg) >= 35:                # U replace
                old, new, shares, price = _REPLACE.unpack_from(msg, 11)
                entry = book.reduce(old)
                if entry:
                    book.add(entry[0], entry[1], price, shares, new)
                    touched.add(locate)
        for locate in sorted(touched):
            sym = locate_symbol.get(locate)
            if sym is None:
                continue
            bid, ask = book.top(locate)
            out_seq.append(int(headers["seq"][i]))
            out_ts.append(int(headers["ts_ns"][i]))
            out_src.append(int(headers["ts_source"][i]))
            out_sym.append(sym)
            out_bid.append(bid)
            out_ask.append(ask)
    return QuoteTimeline(np.array(out_seq, np.int64), np.array(out_ts, np.int64), np.array(out_src, np.uint8),
                         np.array(out_sym, np.int64), np.array(out_bid, np.int64), np.array(out_ask, np.int64))
