"""Orders a crash recovery adopted from the venue: the RECON resolutions of action "adopt"
(recovery/reconcile.py AdoptPending) and "cancel" with adopt true (CancelAtVenue), as the order
columns the event join (events.Creators) indexes in place of the ORDER_SENT a torn journal tail lost.

Such an origin is reconstructed from the venue's view: the token, symbol, side byte (a sell's Reg
SHO marking included), price and quantity the venue held (for a cancel adoption, the shares it held
open at the reconciliation), and, for a replacement, the order it replaced. The firm's send time,
the order's parties (algo, desk, trader, client) and its time in force were only in the lost
ORDER_SENT: the origin's row carries zeros for them, its sequence and time are the RECON record's
(the evidence, journaled before the venue's messages of the order), and reports mark it (events'
`order_adopted` column) and never read those as the order's. An adoption of no shares (a token the
venue rejected: no terms) indexes nothing; its events stay orders of no origin.

Owns parsing those records (a chunk's few, read whole: Reader.read_blobs); not the join or the
reports' columns.
"""
from __future__ import annotations

import numpy as np

from journal.catalogue import RecordType, unpack_json
from reports import orderjoin
from reports.recovery_marks import ADOPT, CANCEL, RECON_RESOLUTION
_TERMS = ("symbol_id", "price")


def _terms(resolution) -> tuple | None:
    """(token, symbol_id, side byte, price, qty, orig_token) of an adoption resolution, else None."""
    if not isinstance(resolution, dict):
        return None
    action = resolution.get("action")
    if action == ADOPT:
        qty = resolution.get("qty")
    elif action == CANCEL and resolution.get("adopt") is True:
        qty = resolution.get("leaves")
    else:
        return None
    token, side, orig = resolution.get("token"), resolution.get("side"), resolution.get("orig_token", "")
    numbers = [resolution.get(k) for k in _TERMS] + [qty]
    if not (isinstance(token, str) and isinstance(side, str) and len(side) == 1 and isinstance(orig, str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in numbers)) or qty <= 0:
        return None
    return token, numbers[0], ord(side), numbers[1], qty, orig


def read(reader, first_seq: int, last_seq: int) -> dict[str, np.ndarray] | None:
    """The adoptions among the RECON records in [first_seq, last_seq], in journal order, as columns
    (token_key, parent_key, symbol_id, wire_side, price, qty, seq, ts_ns, ts_source); None if none."""
    headers, blob, offsets = reader.read_blobs(RecordType.RECON, first_seq, last_seq)
    rows = []
    for i, h in enumerate(headers):
        try:
            doc = unpack_json(blob[int(offsets[i]):int(offsets[i + 1])])
        except ValueError:
            continue                    # not a document: no resolution of ours (replay refuses it)
        terms = _terms(doc.get("resolution")) if isinstance(doc, dict) and doc.get("kind") == RECON_RESOLUTION \
            else None
        if terms is not None:
            rows.append(terms + (int(h["seq"]), int(h["ts_ns"]), int(h["ts_source"])))
    if not rows:
        return None

    def keys(at: int) -> np.ndarray:
        return orderjoin.join_keys(np.array([r[at].encode()[:orderjoin.TOKEN_BYTES] for r in rows],
                                            f"S{orderjoin.TOKEN_BYTES}"))
    column = {name: np.array([r[at] for r in rows], np.int64)
              for at, name in ((1, "symbol_id"), (2, "wire_side"), (3, "price"), (4, "qty"), (6, "seq"),
                               (7, "ts_ns"), (8, "ts_source"))}
    return {"token_key": keys(0), "parent_key": keys(5), **column}
