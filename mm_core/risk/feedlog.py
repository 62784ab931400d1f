"""The risk gateway's market-data feeds over a log in one C call (mm_core/fastfeed.h, ffd_apply).

Owns the C table the call reads and writes: each symbol of the log is copied from the gateway's
_Symbol into its row before the call (one slice assignment) and back after it, so the per-feed
work (time, price, collar bands, the mark and the P&L peak) is C's and only the log's few symbols
cost Python work. A feed the C does not take (fastfeed.h says which) goes through
RiskGateway.on_market, and one the C applied that revalues its option group is followed by the
gateway's _refresh_group, then the C goes on from the next one, so the gateway ends as on_market
feed by feed leaves it. Holds no state between calls. Knows nothing of the engine: the log is
three C arrays and a reference price per symbol.
"""
from __future__ import annotations

from mm_core._fastmd_cffi import ffi, lib

__all__ = ["FeedLog"]

_apply = lib.ffd_apply
_unpack = ffi.unpack
_C_FROM = 8         # feeds from which the C call beats on_markets (the copies in and out cost ~6 us)
_N = lib.FFD_N
_BACK = lib.FFD_POSITION                # the row's first slots, up to here, are written back
_APPLIED = lib.FFD_APPLIED
_MARKS = lib.FFD_A_FAIR_BPS             # the account's first slots: cash, gross, net, peak
# the slots the per-call code names, as plain ints (a lib attribute is looked up on each use)
_A_N, _A_GROSS, _A_NET, _A_PEAK = lib.FFD_A_N, lib.FFD_A_GROSS, lib.FFD_A_NET, lib.FFD_A_PEAK
_READY, _PRICED_FAIR, _PRICED_NS = lib.FFD_READY, lib.FFD_PRICED_FAIR, lib.FFD_PRICED_NS
assert (lib.FFD_FAIR, lib.FFD_REFERENCE, lib.FFD_MD_NS, lib.FFD_NOTIONAL, lib.FFD_FAIR_BAND,
        lib.FFD_REFERENCE_BAND, lib.FFD_DRIFT_BAND, lib.FFD_POSITION, lib.FFD_MULTIPLIER,
        lib.FFD_FEED_REFERENCE, lib.FFD_UNDERLYING, lib.FFD_PRICED_FAIR, lib.FFD_PRICED_NS,
        lib.FFD_READY, lib.FFD_APPLIED, _N) == tuple(range(16))
assert (lib.FFD_A_CASH, lib.FFD_A_GROSS, lib.FFD_A_NET, lib.FFD_A_PEAK, lib.FFD_A_FAIR_BPS,
        lib.FFD_A_REFERENCE_BPS, lib.FFD_A_DRIFT_BPS, lib.FFD_A_REPRICE_NS, lib.FFD_A_N) == tuple(range(9))


_INT_ONLY = frozenset((int,))


def _all_int(values) -> bool:
    """Every value a Python int (not a bool, a float or a numpy integer: the C would not mirror
    their arithmetic, or the write-back would change their type). Types compared in C calls."""
    return _INT_ONLY.issuperset(map(type, values))


class FeedLog:
    """Scratch space for RiskGateway.on_feed_log (pickled as a fresh, empty one)."""

    __slots__ = ("_table", "_size", "_acct", "_revalue")

    def __init__(self) -> None:
        self._table = None
        self._size = 0
        self._acct = ffi.new("int64_t[]", _A_N)
        self._revalue = ffi.new("uint32_t *")

    def __reduce__(self):
        return FeedLog, ()

    def apply(self, gw, n: int, symbols, fairs, times, references, reprice_ns: int,
              reprice_move: float) -> None:
        """on_market(symbols[k], fairs[k], references[symbols[k]], False, times[k]) on `gw` for
        k in 0..n-1, in order (symbols, fairs, times: C arrays of uint32_t, double, int64_t);
        a log shorter than _C_FROM through on_markets."""
        if n < _C_FROM:
            if n:
                ids, at = _unpack(symbols, n), _unpack(times, n)
                gw.on_markets(ids, _unpack(fairs, n), [references[s] for s in ids], at)
            return
        ids = list(dict.fromkeys(_unpack(symbols, n)))
        top = max(ids) + 1
        if top > self._size:
            self._size = max(top, 2 * self._size)
            self._table = ffi.new("int64_t[]", self._size * _N)
        table, acct, revalue = self._table, self._acct, self._revalue
        lim = gw._limits
        constants = (lim.collar_fair_bps, lim.collar_reference_bps, lim.collar_drift_bps, reprice_ns)
        if not (_all_int(constants) and min(constants) >= 0 and type(reprice_move) is float):
            return self._one_by_one(gw, 0, n, symbols, fairs, times, references)
        acct[_MARKS:_A_N] = constants
        rows = [self._fill(gw, s, references[s]) for s in ids]
        k = 0
        while k < n:
            if not self._marks_in(gw):
                return self._one_by_one(gw, k, n, symbols, fairs, times, references)
            k = _apply(acct, table, self._size, reprice_move, symbols, fairs, times, k, n, revalue)
            self._write_back(gw, rows)
            if revalue[0]:          # feed k - 1 revalues its group (on_market's _reprice_group)
                self._revalue_group(gw, symbols[k - 1], times[k - 1])
            elif k < n:             # the C did not take this one: on_market does, then its row again
                s = symbols[k]
                gw.on_market(s, fairs[k], references[s], False, times[k])
                rows[ids.index(s)] = self._fill(gw, s, references[s])
                k += 1

    def _revalue_group(self, gw, s: int, now_ns: int) -> None:
        """The group of underlying s revalued at now_ns, as on_market's _reprice_group does after
        the mark; its row then holds the new revaluation's price and time."""
        group = gw._groups[gw._symbols[s].underlying_id]
        gw._refresh_group(group, now_ns)
        at = s * _N
        try:
            if type(group.priced_fair) is not int or type(group.priced_ns) is not int:
                raise TypeError("priced")
            self._table[at + _PRICED_FAIR:at + _PRICED_NS + 1] = (
                group.priced_fair, group.priced_ns)
        except (OverflowError, TypeError):      # its next feeds through on_market
            self._table[at + _READY] = 0

    @staticmethod
    def _one_by_one(gw, k: int, n: int, symbols, fairs, times, references) -> None:
        for i in range(k, n):
            s = symbols[i]
            gw.on_market(s, fairs[i], references[s], False, times[i])

    def _marks_in(self, gw) -> bool:
        """The account's marks into the C slots; False when the C cannot hold them."""
        marks = (gw._cash, gw._gross, gw._net, gw._pnl_peak)
        if not _all_int(marks):
            return False
        try:
            self._acct[0:_MARKS] = marks
        except OverflowError:
            return False
        return True

    def _fill(self, gw, s: int, reference):
        """Symbol s's row from the gateway, ready only when the C may take its feeds; returns
        the gateway's _Symbol when ready (written back after the call), else None."""
        table = self._table
        at = s * _N
        table[at + _READY] = 0
        sym = gw._symbols.get(s)
        if sym is None or sym.book_stale or type(reference) is not int or reference <= 0:
            return None
        group = gw._groups.get(sym.underlying_id)
        if group is not None and group.underlying_id == s:
            underlying, priced_fair, priced_ns = 1, group.priced_fair, group.priced_ns
        else:
            underlying = priced_fair = priced_ns = 0
        values = (sym.fair, sym.reference, sym.md_ns, sym.notional, sym.fair_band, sym.reference_band,
                  sym.drift_band, sym.position, sym.multiplier, reference, underlying, priced_fair,
                  priced_ns, 1, 0)
        if not _all_int(values):
            return None
        try:
            table[at:at + _N] = values
        except OverflowError:           # beyond int64_t: this symbol's feeds in Python
            table[at + _READY] = 0
            return None
        return sym

    def _write_back(self, gw, rows: list) -> None:
        """What the C applied, into the gateway's symbols and account."""
        table = self._table
        applied = False
        for sym in rows:
            if sym is None:
                continue
            at = sym.symbol_id * _N
            if table[at + _APPLIED]:
                table[at + _APPLIED] = 0
                (sym.fair, sym.reference, sym.md_ns, sym.notional, sym.fair_band, sym.reference_band,
                 sym.drift_band) = _unpack(table + at, _BACK)
                sym.bound_collars()
                applied = True
        if applied:
            acct = self._acct
            gw._gross, gw._net = acct[_A_GROSS], acct[_A_NET]
            gw._pnl_peak = acct[_A_PEAK]
