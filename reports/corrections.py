"""The venue's after-the-fact changes to an execution: Broken Trade (OUCH B), Trade Correction (F:
the execution restated, shares and price) and Price Correction (K: a new price for its match).
Each takes back the report last made of that execution (the execution's own, or that of the
correction before it) and, for F and K, makes a corrected one.

Owns the walk along each execution's chain of changes (same order token and match number, in
journal order, from the journal start: the execution may precede the range) and what each change
takes back and restates. Knows no report layout; rts22.py makes CANC + NEWT rows of it.
"""
from __future__ import annotations

import numpy as np

from reports import events, venuetime
from reports.events import EV
from reports.source import JournalSlice
from reports.timebase import to_utc

CHANGES = (EV["BROKEN_TRADE"], EV["TRADE_CORRECTION"], EV["PRICE_CORRECTION"])
CORRECTIONS = (EV["TRADE_CORRECTION"], EV["PRICE_CORRECTION"])
_TYPES = b"EGFKB"            # executions, then the changes made to them


def chains(src: JournalSlice, match: np.ndarray, token_key: np.ndarray, seq: np.ndarray,
           timing: venuetime.VenueTiming) -> dict:
    """For changes (their match numbers, order token keys and sequences, in journal order): `found`
    (a report of that execution precedes the change), `first` (it was not broken before), `seq`
    (the sequence of the report taken back: the execution's, or the last correction's), the
    execution's trading time (`utc_ns`, `valid`, `from_venue`: the venue's own time for a message a
    recovery journaled or a login's replay brought, see venuetime), and what a correction restates (`qty`, `price`: for F its
    own, for K the report's shares at its new price). One read of the journal's executions and
    changes of these match numbers, then a loop over them (changes are rare), not over rows."""
    n = len(seq)
    out = {"found": np.zeros(n, bool), "first": np.zeros(n, bool), "seq": np.zeros(n, np.uint64),
           "utc_ns": np.zeros(n, np.int64), "valid": np.zeros(n, bool), "from_venue": np.zeros(n, bool),
           "qty": np.zeros(n, np.int64), "price": np.zeros(n, np.int64)}
    if n == 0:
        return out
    got = events.venue_messages(src, 1, int(seq.max()), _TYPES, ("token", "match", "executed", "exec_price",
                                                                  "venue_ts"))
    if not len(got.get("seq", ())):
        return out
    rows = np.flatnonzero(np.isin(got["match"], match))
    utc = to_utc(got["seq"][rows], got["ts_ns"][rows], got["ts_source"][rows], events.clock_samples(src))
    recovered = utc.valid & venuetime.venue_timed(got["seq"][rows], got["ts_ns"][rows], got["ts_source"][rows],
                                                  utc.utc_ns, utc.valid, got["venue_ts"][rows], timing)
    times = venuetime.execution_times(utc.utc_ns, recovered, got["venue_ts"][rows])
    wanted = {int(s): i for i, s in enumerate(np.asarray(seq).tolist())}
    state: dict[tuple, dict] = {}       # (token, match) -> the report in force
    for k, r in enumerate(rows.tolist()):          # a loop over the executions of changed matches
        key = (bytes(got["token_key"][r]), int(got["match"][r]))
        kind, s = got["msg_type"][r], int(got["seq"][r])
        prior = state.get(key)
        i = wanted.get(s)
        if i is not None and prior is not None:
            out["found"][i], out["first"][i], out["seq"][i] = True, not prior["broken"], prior["seq"]
            out["utc_ns"][i], out["valid"][i], out["from_venue"][i] = prior["utc"], prior["valid"], prior["venue"]
        if kind in b"EG":
            state[key] = {"seq": s, "qty": int(got["executed"][r]), "price": int(got["exec_price"][r]),
                          "utc": times[k], "valid": bool(utc.valid[k]), "venue": bool(recovered[k]), "broken": False}
        elif prior is None:
            continue
        elif kind == ord("B"):
            prior["broken"] = True
        elif not prior["broken"]:                  # F or K: the corrected report is in force now
            qty = int(got["executed"][r]) if kind == ord("F") else prior["qty"]
            price = int(got["exec_price"][r])
            if i is not None:
                out["qty"][i], out["price"][i] = qty, price
            state[key] = {**prior, "seq": s, "qty": qty, "price": price}
    return out
