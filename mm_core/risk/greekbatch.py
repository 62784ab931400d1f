"""An option group's revaluation in one C call (mm_core/fastgreeks.h, fg_revalue).

Owns packing a group's options and scenario grid into C arrays once (GroupPricer) and turning the
C rows back into the UnitRisk the gateway keeps per symbol, with the min and max of each scenario
P&L. greeks.underlying_risk and greeks.unit_risk are the reference the C equals bit for bit; when
the C reports an exception or an input it cannot mirror exactly (integers past int64_t or 2^53),
revalue returns None and the caller runs the reference, which raises or computes as it always did.
So a given set of inputs always takes the same path and gives the same numbers (replay is exact).
"""
from __future__ import annotations

from mm_core._fastmd_cffi import ffi, lib
from mm_core.risk.greeks import OptionParams, UnitRisk, make_unit_risk

__all__ = ["GroupPricer"]

_HEAD = lib.FG_HEAD
_OK = lib.FG_OK


def _int64(value) -> bool:
    return type(value) is int and -(1 << 63) <= value < (1 << 63)


def _packable(option: OptionParams) -> bool:
    """The fields fit the C struct exactly (Python ints in int64_t, floats as floats)."""
    return (type(option.vol) is float and type(option.rate) is float and _int64(option.strike)
            and _int64(option.expiry_ns) and _int64(option.multiplier))


class GroupPricer:
    """The options of one group (the underlying's members after it, in order) and the scenario
    grid, packed for fg_revalue; the caller builds a new one when either changes."""

    __slots__ = ("options", "grid", "_packed", "_n", "_moves", "_shifts", "_n_grid", "_rows",
                 "_stride", "_size")

    def __init__(self, options: list[OptionParams], grid: tuple[tuple[float, float], ...]) -> None:
        self.options = options
        self.grid = grid
        self._n = len(options)
        self._n_grid = len(grid)
        self._stride = _HEAD + self._n_grid
        self._size = (1 + self._n) * self._stride
        self._packed = None
        if self._n_grid and all(_packable(o) for o in options) and \
                all(type(m) is float and type(v) is float for m, v in grid):
            packed = ffi.new("fg_option[]", max(self._n, 1))
            for slot, o in zip(packed, options):
                slot.strike, slot.expiry_ns, slot.multiplier = o.strike, o.expiry_ns, o.multiplier
                slot.vol, slot.rate, slot.is_call = o.vol, o.rate, bool(o.is_call)
            self._packed = packed
            self._moves = ffi.new("double[]", [m for m, _ in grid])
            self._shifts = ffi.new("double[]", [v for _, v in grid])
            self._rows = ffi.new("double[]", self._size)

    def __repr__(self) -> str:
        return f"GroupPricer({self.options!r}, {self.grid!r})"

    def __reduce__(self):
        """Pickled (engine snapshots) as its inputs: the C arrays are rebuilt on load."""
        return GroupPricer, (self.options, self.grid)

    def revalue(self, spot: float, now_ns: int) -> list[tuple[UnitRisk, float, float]] | None:
        """(risk, min P&L, max P&L) of the underlying, then of each option; None when the
        reference must decide (the C met an exception or an input it does not mirror)."""
        if self._packed is None or type(spot) is not float or not _int64(now_ns):
            return None
        if lib.fg_revalue(self._packed, self._n, spot, now_ns, self._moves, self._shifts, self._n_grid,
                          self._rows) != _OK:
            return None
        values = ffi.unpack(self._rows, self._size)
        stride = self._stride
        out = []
        for at in range(0, self._size, stride):
            delta, gamma, vega, lo, hi = values[at:at + _HEAD]
            out.append((make_unit_risk(delta, gamma, vega, tuple(values[at + _HEAD:at + stride])), lo, hi))
        return out
