"""What a crash recovery's RECON resolution records say of the firm's own journaled messages: the
order tokens it marked not sent ("mark-not-sent": the venue never received their Enter or Replace,
recovery/reconcile.py MarkNotSent) and the cancels it sent again ("resend-cancel": the journaled
Cancel never reached the venue, ResendCancel), with the sequence and UTC time of each resolution.

Also the size-downs it adopted ("adopt-modify": the venue applied a Modify whose ORDER_SENT a
torn tail lost, recovery/reconcile.py AdoptModify), each journaled just ahead of the venue's Order
Modified it stands in for; and the orders replay decided again whose ORDER_SENT the torn tail lost
(their input survived): the tokens the records closing the crashed session list in
`unsent_orders` (code-change, journal-tail, the adoptions ahead of BEGIN and BEGIN itself; not an
OUTCOME's, whose list names orders decided with no session to send them on, never sent).

Write-ahead journals an order before its bytes leave, so a crash between the two leaves an
ORDER_SENT the venue never saw; only the recovery's resolution says so, later in the journal. Owns
this read of RECON records (few: read whole, from the journal start to its end, as
venuetime.recovery_windows reads them) and the lookups by token; not the reports' columns. The
orders a recovery adopted (resolution adopt) are the event join's (adoptions.py: read chunk by chunk
where they are, as the ORDER_SENTs they stand in for).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journal import row_dtype
from journal.catalogue import RecordType, TsSource, unpack_json
from reports import orderjoin
from reports.timebase import to_utc

# recovery/replay.py and recovery/reconcile.py names (reports may not import recovery)
RECON_RESOLUTION = "resolution"
MARK_NOT_SENT, RESEND_CANCEL = "mark-not-sent", "resend-cancel"
ADOPT, CANCEL = "adopt", "cancel"       # AdoptPending, CancelAtVenue (adopting with adopt true)
ADOPT_MODIFY = "adopt-modify"           # AdoptModify: a size-down the venue applied, its Modify lost
RECON_OUTCOME = "outcome"               # its unsent_orders were never sent (no venue session)


@dataclass(frozen=True)
class Marks:
    """Resolutions of one action, sorted by token key: the token, the resolution record's sequence,
    its UTC time and whether that time is valid."""

    token_key: np.ndarray       # S14 join keys (orderjoin.join_keys)
    seq: np.ndarray             # int64
    utc_ns: np.ndarray          # int64
    utc_valid: np.ndarray       # bool

    def __len__(self) -> int:
        return len(self.token_key)

    def find(self, token_key: np.ndarray) -> np.ndarray:
        """Index of each token's mark, -1 where it has none (a binary search per row)."""
        if len(self.token_key) == 0 or len(token_key) == 0:
            return np.full(len(token_key), -1, np.int64)
        at = np.clip(np.searchsorted(self.token_key, token_key), 0, len(self.token_key) - 1)
        return np.where(self.token_key[at] == token_key, at, -1)

    def before(self, token_key: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Which rows (their tokens and sequences) a mark of their token resolves: journaled before
        the resolution."""
        at = self.find(token_key)
        return (at >= 0) & (np.asarray(seq, np.int64) < self.seq[np.clip(at, 0, None)])


@dataclass(frozen=True)
class Listings:
    """Every token a record closing a crashed session lists as decided again with no ORDER_SENT, in
    journal order: the token, and that RECON record's sequence, time, time source and clock state."""

    token_key: np.ndarray       # S14 join keys
    seq: np.ndarray             # int64
    ts_ns: np.ndarray           # int64
    ts_source: np.ndarray       # uint8
    clock_state: np.ndarray     # uint8

    def __len__(self) -> int:
        return len(self.token_key)


def no_marks() -> Marks:
    return Marks(np.zeros(0, f"S{orderjoin.TOKEN_BYTES}"), np.zeros(0, np.int64), np.zeros(0, np.int64),
                 np.zeros(0, bool))


@dataclass(frozen=True)
class RecoveryMarks:
    not_sent: Marks             # mark-not-sent: the Enter or Replace of the token never reached the venue
    resent_cancel: Marks        # resend-cancel: the token's journaled Cancel never reached the venue
    adopted: bool = False       # the journal holds an adoption (adoptions.py): order columns may be null
    # adopt-modify: every one, by journal sequence (a token may have several); the venue's Order
    # Modified it stands in for is the journal's next record (recovery journals it so)
    modifies: Marks | None = None
    redecided: Listings | None = None       # orders replay decided again, their ORDER_SENT lost

    def adopted_modify(self, token_key: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """The adopt-modify sequence of each row (a venue's Order Modified of `token_key` at `seq`)
        a recovery journaled just ahead of it; 0 where none did."""
        m = self.modifies
        seq = np.asarray(seq, np.int64)
        if m is None or not len(m) or not len(seq):
            return np.zeros(len(seq), np.int64)
        at = np.clip(np.searchsorted(m.seq, seq - 1), 0, len(m) - 1)
        hit = (m.seq[at] == seq - 1) & (m.token_key[at] == token_key)
        return np.where(hit, m.seq[at], 0)


def read(reader) -> RecoveryMarks:
    """Every mark-not-sent and resend-cancel resolution in the journal (a token's first of each),
    and every adopt-modify."""
    headers, blob, offsets = reader.read_blobs(RecordType.RECON, 1, int(reader.last_seq))
    found: dict[str, list] = {MARK_NOT_SENT: [], RESEND_CANCEL: [], ADOPT_MODIFY: []}
    adopted = False
    listed = []
    for i, h in enumerate(headers):
        doc = unpack_json(blob[int(offsets[i]):int(offsets[i + 1])])
        unsent = doc.get("unsent_orders")
        if doc.get("kind") != RECON_OUTCOME and isinstance(unsent, list):
            listed += [(t, int(h["seq"]), int(h["ts_ns"]), int(h["ts_source"]), int(h["clock_state"]))
                       for t in unsent if isinstance(t, str)]
        resolution = doc.get("resolution") if doc.get("kind") == RECON_RESOLUTION else None
        adopted = adopted or (isinstance(resolution, dict) and (resolution.get("action") == ADOPT or (
            resolution.get("action") == CANCEL and resolution.get("adopt") is True)))
        if isinstance(resolution, dict) and resolution.get("action") in found \
                and isinstance(resolution.get("token"), str):
            found[resolution["action"]].append((resolution["token"], int(h["seq"]), int(h["ts_ns"]),
                                                int(h["ts_source"])))
    samples = None
    if any(s in (TsSource.HW_PHC, TsSource.HW_PHC_BY) for rows in found.values() for *_, s in rows):
        # a PHC time needs the UTC offset of the clock samples before it (a recovery stamps its
        # records with its own clock, so this read is the exception)
        samples = reader.read_fixed(RecordType.CLOCK_SAMPLE, first_seq=None, last_seq=int(reader.last_seq))
        samples = samples[np.argsort(samples["seq"], kind="stable")]
    return RecoveryMarks(_marks(found[MARK_NOT_SENT], samples), _marks(found[RESEND_CANCEL], samples), adopted,
                         _marks(found[ADOPT_MODIFY], samples, every=True), _listings(listed))


def _listings(rows: list) -> Listings | None:
    if not rows:
        return None
    return Listings(_keys(rows), *(np.array([r[k] for r in rows], dtype)
                                   for k, dtype in ((1, np.int64), (2, np.int64), (3, np.uint8), (4, np.uint8))))


def _keys(rows: list) -> np.ndarray:
    """The join keys of the rows' tokens (their first item)."""
    return orderjoin.join_keys(np.array([t.encode()[:orderjoin.TOKEN_BYTES] for t, *_ in rows],
                                        f"S{orderjoin.TOKEN_BYTES}"))


def _marks(rows: list, samples, every: bool = False) -> Marks:
    """The rows as Marks: by token, a token's first resolution kept (its later ones repeat it);
    `every`: all kept, by journal sequence."""
    if not rows:
        return no_marks()
    keys = _keys(rows)
    seq = np.array([r[1] for r in rows], np.int64)
    ts_ns = np.array([r[2] for r in rows], np.int64)
    source = np.array([r[3] for r in rows], np.uint8)
    if samples is None:
        samples = np.zeros(0, row_dtype(RecordType.CLOCK_SAMPLE))
    utc = to_utc(seq, ts_ns, source, samples)
    if every:
        order = np.argsort(seq, kind="stable")
        return Marks(keys[order], seq[order], utc.utc_ns[order], utc.valid[order])
    order = np.lexsort((seq, keys))
    keys = keys[order]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    pick = order[first]
    return Marks(keys[first], seq[pick], utc.utc_ns[pick], utc.valid[pick])
