"""The risk gateway's order-path windows in one C object (mm_core/fastrisk.h): the submit and
modify rate windows, each symbol side's drift-collar queues and the duplicate-order table.

Owns moving them between the C object and the reference's Python structures — the gateway's
_submits and _modifies deques of times, _dup_last {(symbol, is_buy, price, qty): last ns} with
_dup_purge_at, and each _Symbol's drift_buy and drift_sell (max, min) deques of (ns, price) — which
is what a snapshot pickles, so a pickle holds the same either way and loads into either. The order
path calls lib.frk_check and lib.frk_commit itself (one call each, no wrapper in between).
"""
from __future__ import annotations

from collections import deque

from mm_core._fastmd_cffi import ffi, lib

__all__ = ["new", "set_limits", "load", "export", "gateway_windows", "duplicate_last"]

_LIMIT = 1 << 61        # fastrisk.h FRK_LIMIT: values beyond it stay on the Python windows
_NONE = -(1 << 63)      # frk_dup_last's INT64_MIN: no such key


def _fits(values) -> bool:
    """Every value a plain int within +-_LIMIT (the C's exact range); bools count as ints."""
    for v in values:
        if type(v) is not int and type(v) is not bool or not -_LIMIT <= v <= _LIMIT:
            return False
    return True


def duplicate_last(win, key: tuple) -> int | None:
    """When the C duplicate table last recorded an ENTER of `key` (symbol, is_buy, price, qty),
    None when it holds no such key (a key outside the C's range cannot be in it). Read-only."""
    if not _fits(key):
        return None
    last = lib.frk_dup_last(win, *key)
    return None if last == _NONE else last


def set_limits(win, lim) -> bool:
    """The limits' windows into `win`; False when one is out of the C's range (nothing changed)."""
    values = (lim.rate_window_ns, lim.max_submits, lim.max_modifies, lim.collar_drift_window_ns,
              lim.duplicate_window_ns)
    return _fits(values) and lib.frk_set_limits(win, *values) == lib.FRK_PASS


def new(lim):
    """A fresh C object with the limits' windows, or None when they are out of its range."""
    win = lib.frk_new()
    if win == ffi.NULL:
        raise MemoryError("fastrisk: frk_new")
    win = ffi.gc(win, lib.frk_free)
    return win if set_limits(win, lim) else None


def _check(rc: int) -> bool:
    if rc == lib.FRK_NOMEM:
        raise MemoryError("fastrisk: loading the windows")
    return rc == lib.FRK_PASS


def load(win, gw) -> bool:
    """The gateway's Python windows copied into `win`; False (win partly loaded: drop it) when a
    value is out of the C's range, as it may be after the gateway ran on the Python windows."""
    for enter, times in ((1, gw._submits), (0, gw._modifies)):
        if not _fits(times) or not _check(lib.frk_rate_load(win, enter, ffi.new("int64_t[]", list(times)),
                                                            len(times))):
            return False
    for symbol_id, sym in gw._symbols.items():
        for is_buy, queues in ((1, sym.drift_buy), (0, sym.drift_sell)):
            for which, queue in enumerate(queues):
                flat = [v for point in queue for v in point]
                if queue and not (_fits((symbol_id,)) and _fits(flat) and all(len(p) == 2 for p in queue)
                                  and _check(lib.frk_drift_load(win, symbol_id, is_buy, which,
                                                                ffi.new("int64_t[]", flat), len(queue)))):
                    return False
    rows = [v for key, last in gw._dup_last.items() for v in (*key, last)]
    if not (_fits(rows) and _fits((gw._dup_purge_at,)) and all(len(key) == 4 for key in gw._dup_last)):
        return False
    return _check(lib.frk_dup_load(win, ffi.new("int64_t[]", rows), len(gw._dup_last), gw._dup_purge_at))


def gateway_windows(win) -> dict:
    """The rate windows and the duplicate table as the reference keeps them (gateway slots)."""
    out = {}
    for name, enter in (("_submits", 1), ("_modifies", 0)):
        n = lib.frk_rate_len(win, enter)
        buf = ffi.new("int64_t[]", n)
        lib.frk_rate_copy(win, enter, buf)
        out[name] = deque(ffi.unpack(buf, n))
    n = lib.frk_dup_len(win)
    buf = ffi.new("int64_t[]", 5 * n)
    lib.frk_dup_copy(win, buf)
    flat = ffi.unpack(buf, 5 * n)
    out["_dup_last"] = {(flat[i], bool(flat[i + 1]), flat[i + 2], flat[i + 3]): flat[i + 4]
                        for i in range(0, 5 * n, 5)}
    out["_dup_purge_at"] = lib.frk_dup_purge_at(win)
    return out


def export(win, gw, symbols_only: bool = False) -> None:
    """`win`'s windows written into the gateway's Python ones (each symbol's drift queues, and
    unless symbols_only the gateway's rate windows and duplicate table too)."""
    for symbol_id, sym in gw._symbols.items():
        for is_buy, name in ((1, "drift_buy"), (0, "drift_sell")):
            queues = []
            for which in (0, 1):
                n = lib.frk_drift_len(win, symbol_id, is_buy, which)
                buf = ffi.new("int64_t[]", 2 * n)
                lib.frk_drift_copy(win, symbol_id, is_buy, which, buf)
                flat = ffi.unpack(buf, 2 * n)
                queues.append(deque(zip(flat[0::2], flat[1::2])))
            setattr(sym, name, tuple(queues))
    if not symbols_only:
        for name, value in gateway_windows(win).items():
            setattr(gw, name, value)
