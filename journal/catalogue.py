"""The event catalogue: every journal record type, its payload layout and its numpy dtype.

Owns the meaning of record payloads; the C core only knows (type, bytes). Fixed-size types have a
packed little-endian numpy dtype so reports and replay can view a batch of records zero-copy;
variable types (raw market data packets, JSON documents) carry their bytes as they are.
Must not know about engines, venues or clocks beyond the enum values stored in records.
"""
from __future__ import annotations

import enum
import json
import operator
import struct

import numpy as np


class RecordType(enum.IntEnum):
    """Journal record types. Values are on disk: never renumber, only append."""

    SESSION_START = 1   # fixed: config hash, code version and fingerprint, limits version, token tag
    SESSION_STOP = 2    # fixed: reason, counts (a longer reason whole in a METRICS "session-stop" before it)
    MD_PACKET = 3       # variable: the raw MoldUDP64 packet exactly as received
    VENUE_MSG = 4       # fixed: one raw SoupBinTCP packet (OUCH outbound inside) as received
    ORDER_SENT = 5      # fixed: raw outbound SoupBinTCP packet + ids + risk verdict
    TX_TS = 6           # fixed: transmit timestamp (or its absence) for an ORDER_SENT
    RISK_DECISION = 7   # fixed: a gateway decision with the failed check and its values
    STATE_CHANGE = 8    # fixed: trading-state transition with reason
    KILL = 9            # fixed: kill-switch activation
    CLOCK_SAMPLE = 10   # fixed: one clock-health sample
    RECON = 11          # variable: JSON reconciliation outcome (found, done, before, after)
    CHECKPOINT = 12     # written by the C core: running hash of the chain
    TIMER = 13          # fixed: timer tick fed to the engine
    METRICS = 14        # variable: JSON desk metrics snapshot
    OPERATOR_CMD = 15   # variable: JSON operator command (who, what, why)
    DRILL_RESULT = 16   # variable: JSON drill result table
    LIMITS_LOADED = 17  # variable: JSON limits document with its version id
    SEAL = 18           # written by the C core: segment seal (hash of the segment's chain)
    VENUE_MSG_LONG = 19  # variable: a venue frame longer than VENUE_MSG's raw field: VENUE_MSG's
                         # first four fields (soup_seq, packet_type, msg_type, raw_len), then the
                         # whole frame (venue_payload / venue_fields)


class TsSource(enum.IntEnum):
    """Where a timestamp was taken. Stored in every record header."""

    NONE = 0        # no timestamp exists (e.g. a TX timestamp that never arrived)
    HW_PHC = 1      # NIC hardware timestamp, raw PHC time (TAI unless the PHC is set to UTC)
    SW_KERNEL = 2   # kernel software timestamp, CLOCK_REALTIME (UTC)
    USER = 3        # user-space clock_gettime(CLOCK_REALTIME) after the syscall returned
    REPLAY = 4      # copied from an earlier record during replay/recovery
    # "received by": the stamp of a later segment of the same stream read (one read returns one
    # stamp, its last segment's), an upper bound on when this record's bytes arrived, on the clock
    # of the source it names (CLOCK_REALTIME, raw PHC)
    SW_KERNEL_BY = 5
    HW_PHC_BY = 6


class ClockState(enum.IntEnum):
    """Clock health state at the time of a record. Stored in every record header."""

    UNKNOWN = 0
    LOCKED = 1
    HOLDOVER = 2     # the grandmaster's Syncs stopped: the last bound widened by drift
    FREERUN = 3      # no bound
    DEGRADED = 4     # following a grandmaster, not steady: bounded by what was measured now


class Side(enum.IntEnum):
    BUY = ord("B")
    SELL = ord("S")


# Header fields that batch reads return alongside each payload.
HEADER_DTYPE = np.dtype(
    [("seq", "<u8"), ("rtype", "<u2"), ("ts_source", "u1"), ("clock_state", "u1"), ("ts_ns", "<i8")]
)

RAW_VENUE_MAX = 128   # OUCH 4.2 outbound max is 80 bytes + 3 bytes of SoupBinTCP framing
RAW_ORDER_MAX = 64    # OUCH 4.2 inbound max is 49 bytes + 3 bytes of SoupBinTCP framing

PAYLOAD_DTYPES: dict[RecordType, np.dtype] = {
    RecordType.SESSION_START: np.dtype([
        ("session_id", "<u8"), ("config_sha256", "u1", (32,)), ("code_version", "S16"),
        ("limits_version", "S16"), ("venue_session", "S10"), ("profile", "S8"),
        # since layout 2: the writing code's fingerprint (mm_core.buildid), all zero when unknown
        ("code_fingerprint", "u1", (32,)),
        # since layout 3: the session's order-token tag (mm_core.oms: prefix + tag + counter),
        # empty for a session whose tokens carry none (every record of layouts 1 and 2)
        ("token_tag", "S8"),
    ]),
    RecordType.SESSION_STOP: np.dtype([
        ("session_id", "<u8"), ("events", "<u8"), ("orders", "<u8"), ("reason", "S32"),
    ]),
    RecordType.VENUE_MSG: np.dtype([
        ("soup_seq", "<u8"),       # SoupBinTCP sequence of a sequenced packet, 0 otherwise
        ("packet_type", "u1"),     # SoupBinTCP packet type ('S', 'A', 'H', 'Z', ...)
        ("msg_type", "u1"),        # OUCH message type inside 'S', 0 otherwise
        ("raw_len", "<u2"),
        ("raw", "u1", (RAW_VENUE_MAX,)),   # whole SoupBinTCP packet incl. its length prefix
    ]),
    RecordType.ORDER_SENT: np.dtype([
        ("token", "S14"), ("orig_token", "S14"),  # orig_token: the replaced order on 'U'
        ("msg_type", "u1"),        # OUCH inbound type 'O', 'U', 'X', 'M'
        ("side", "u1"),            # Side
        ("tif", "<u4"),            # OUCH time in force seconds (0 = IOC)
        ("symbol_id", "<u4"),
        ("price", "<i8"),          # price4 integer
        ("qty", "<u4"),
        ("algo_id", "<u4"), ("desk_id", "<u4"), ("trader_id", "<u4"), ("client_id", "<u4"),
        ("risk_verdict", "u1"),    # 1 = passed the gateway (only passed orders are sent)
        ("trading_state", "u1"),
        ("limits_version", "<u4"),
        ("tskey", "<u4"),          # SO_TIMESTAMPING OPT_ID key that TX_TS refers to
        ("raw_len", "<u2"),
        ("raw", "u1", (RAW_ORDER_MAX,)),   # whole SoupBinTCP 'U' packet incl. length prefix
    ]),
    RecordType.TX_TS: np.dtype([
        ("order_seq", "<u8"),      # journal sequence of the ORDER_SENT it stamps
        ("tskey", "<u4"),
        ("status", "u1"),          # 0 = stamped, 1 = missing (timed out), 2 = error queue overflow,
                                   # 3 = send failed (the socket refused it: no stamp can come),
                                   # 4 = late: the stamp came after the timeout, in a second
                                   # TX_TS after this order's missing (1) one
        ("source", "u1"),          # TsSource of tx_ts_ns
        ("tx_ts_ns", "<i8"),       # 0 when missing: never invented
    ]),
    RecordType.RISK_DECISION: np.dtype([
        ("token", "S14"), ("symbol_id", "<u4"), ("side", "u1"), ("msg_type", "u1"),
        ("allowed", "u1"), ("check_id", "<u2"), ("trading_state", "u1"),
        ("limits_version", "<u4"), ("price", "<i8"), ("qty", "<u4"),
        ("value", "<i8"), ("limit", "<i8"), ("detail", "S48"),
    ]),
    RecordType.STATE_CHANGE: np.dtype([
        ("from_state", "u1"), ("to_state", "u1"), ("reason_code", "<u2"),
        ("actor", "S16"), ("reason", "S64"),
    ]),
    RecordType.KILL: np.dtype([
        ("scope", "u1"),           # 0 all, 1 symbol, 2 algo, 3 desk, 4 client
        ("scope_id", "<u4"), ("orders_cancelled", "<u4"),
        ("requested_by", "S16"), ("reason", "S64"),
    ]),
    RecordType.CLOCK_SAMPLE: np.dtype([
        ("offset_ns", "<i8"), ("path_delay_ns", "<i8"), ("error_bound_ns", "<i8"),
        ("last_sync_age_ns", "<i8"),     # -1 when unknown
        ("gm_identity", "<u8"),
        ("state", "u1"),                 # ClockState
        ("port_state", "u1"),            # linuxptp port state number, 0 unknown
        ("gm_clock_class", "u1"), ("gm_clock_accuracy", "u1"),
        ("utc_offset", "<i2"), ("utc_offset_valid", "u1"), ("leap61", "u1"), ("leap59", "u1"),
        ("time_traceable", "u1"), ("ptp_timescale", "u1"),
        ("compliant_mask", "u1"),        # bit 0 eu-hft, bit 1 eu-algo, bit 2 us-cat
        ("steps_removed", "<u2"),
    ]),
    RecordType.TIMER: np.dtype([("timer_id", "<u4"), ("now_ns", "<i8")]),
}

# Earlier payload sizes of a fixed type. A fixed layout changes only by growing at its end, so a
# payload of an earlier size reads as the current layout with the fields it lacks zero: unpack()
# and journal.Reader.read_fixed widen such records (journals written before still read).
EARLIER_SIZES: dict[RecordType, tuple[int, ...]] = {
    RecordType.SESSION_START: (90, 122),     # layout 1: no code_fingerprint; 2: no token_tag
}

JSON_TYPES = frozenset({
    RecordType.RECON, RecordType.METRICS, RecordType.OPERATOR_CMD,
    RecordType.DRILL_RESULT, RecordType.LIMITS_LOADED,
})


class CatalogueError(ValueError):
    """A payload does not fit its record type's layout."""


_STRUCT_CODES = {"u1": "B", "u2": "H", "u4": "I", "u8": "Q", "i1": "b", "i2": "h", "i4": "i", "i8": "q",
                 "f4": "f", "f8": "d"}


class _Layout:
    """A fixed payload layout compiled to one struct.Struct: pack() costs one struct call instead
    of a numpy record per field (the runner packs every ORDER_SENT and TX_TS on the send path)."""

    __slots__ = ("struct", "fields", "raw_len_at", "defaults", "strings")

    def __init__(self, dtype: np.dtype) -> None:
        # fields: name -> (position, byte size of a byte array or text; None for a number), one
        # lookup per field in pack()
        fmt, self.fields, self.defaults, self.strings = "<", {}, [], set()
        for i, name in enumerate(dtype.names):
            field = dtype[name]
            size = None
            if field.subdtype is not None:          # a byte array (raw packets, digests)
                size = field.shape[0]
                fmt += f"{size}s"
                value = b""
            elif field.kind == "S":                 # a fixed text, NUL padded
                size = field.itemsize
                fmt += f"{size}s"
                value = b""
                self.strings.add(name)
            else:
                fmt += _STRUCT_CODES[field.str[1:]]
                value = 0
            self.fields[name] = (i, size)
            self.defaults.append(value)
        self.raw_len_at = self.fields["raw_len"][0] if "raw_len" in self.fields else None
        self.struct = struct.Struct(fmt)
        if self.struct.size != dtype.itemsize:
            raise CatalogueError(f"layout {dtype} does not compile to a packed struct")


_LAYOUTS = {rtype: _Layout(dtype) for rtype, dtype in PAYLOAD_DTYPES.items()}


def layout_struct(rtype: RecordType) -> struct.Struct:
    """The struct pack() compiles a fixed layout to (fields in the dtype's order, byte arrays and
    texts as "Ns"), for a hot path that packs positionally. It pads and cuts byte fields without
    pack()'s checks: such a caller checks byte lengths and sets raw_len itself."""
    return _LAYOUTS[RecordType(rtype)].struct


def pack(rtype: RecordType, **fields) -> bytes:
    """Encode one fixed-size payload; `raw` may be given as bytes and sets raw_len. Unknown
    fields and byte arrays longer than their field are errors; a fixed text longer than its field
    is cut to it (numpy's rule for "S" fields, kept so both paths give the same bytes). An integer
    field takes only an integer (operator.index: int or numpy integer, not bool): a float is never
    truncated, a str never parsed (integers for money)."""
    layout = _LAYOUTS.get(rtype)
    if layout is None:
        raise CatalogueError(f"{RecordType(rtype).name} has no fixed layout")
    values = list(layout.defaults)
    specs = layout.fields
    for name, value in fields.items():
        spec = specs.get(name)
        if spec is None:
            raise CatalogueError(f"{RecordType(rtype).name} has no field {name!r}")
        i, size = spec
        if size is not None:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                return _pack_numpy(rtype, fields)      # e.g. a str or an int array: numpy converts
            value = bytes(value)
            if len(value) > size:
                if name not in layout.strings:
                    raise CatalogueError(f"{name} of {len(value)} bytes exceeds {size}")
                value = value[:size]
            if name == "raw":
                values[layout.raw_len_at] = len(value)
        elif value.__class__ is bool:
            raise _not_an_integer(rtype, name, value)   # struct would take it as 0/1
        values[i] = value
    try:
        return layout.struct.pack(*values)
    except struct.error:
        # struct refuses what is not an integer (a float, a str): _pack_numpy refuses it too,
        # with the field's name; an out-of-range integer gets numpy's message there
        return _pack_numpy(rtype, fields)


def _not_an_integer(rtype: RecordType, name: str, value) -> CatalogueError:
    return CatalogueError(f"{RecordType(rtype).name}.{name} is an integer field: {value!r} "
                          f"({type(value).__name__}) is not an integer (prices and sizes are never rounded here)")


def _integer(rtype: RecordType, name: str, value) -> int:
    """value as an int for an integer field: anything operator.index() takes (int, numpy
    integers), never a bool, a float (not truncated) or a str (not parsed)."""
    if value.__class__ is bool or isinstance(value, np.bool_):
        raise _not_an_integer(rtype, name, value)
    try:
        return operator.index(value)
    except TypeError:
        raise _not_an_integer(rtype, name, value) from None


def _pack_numpy(rtype: RecordType, fields: dict) -> bytes:
    """pack() through a numpy record: numpy's conversions for values struct does not take (a text
    given as str, a byte array as an int array); integer fields still take only integers."""
    dtype = PAYLOAD_DTYPES[RecordType(rtype)]
    rec = np.zeros((), dtype=dtype)
    for name, value in fields.items():
        if name == "raw" or (dtype[name].subdtype is not None and isinstance(value, (bytes, bytearray, memoryview))):
            value = bytes(value)
            size = dtype[name].shape[0]
            if len(value) > size:
                raise CatalogueError(f"{name} of {len(value)} bytes exceeds {size}")
            rec[name][: len(value)] = np.frombuffer(value, dtype=np.uint8)
            if name == "raw":
                rec["raw_len"] = len(value)
        else:
            if dtype[name].kind in "iu":
                value = _integer(rtype, name, value)
            try:
                rec[name] = value
            except (OverflowError, ValueError, TypeError) as exc:
                raise CatalogueError(f"{RecordType(rtype).name}.{name}: {exc}") from None
    return rec.tobytes()


def unpack(rtype: RecordType, payload: bytes) -> np.void:
    """Decode one fixed-size payload into a numpy record (fields by name); a payload of one of the
    type's EARLIER_SIZES gets the fields it lacks as zeros."""
    dtype = PAYLOAD_DTYPES.get(RecordType(rtype))
    if dtype is None:
        raise CatalogueError(f"{RecordType(rtype).name} has no fixed layout")
    if len(payload) in EARLIER_SIZES.get(rtype, ()):
        payload = bytes(payload) + bytes(dtype.itemsize - len(payload))
    if len(payload) != dtype.itemsize:
        raise CatalogueError(
            f"{RecordType(rtype).name} payload is {len(payload)} bytes, layout needs {dtype.itemsize}")
    return np.frombuffer(payload, dtype=dtype)[0]


_VENUE_HEAD = struct.Struct("<QBBH")      # VENUE_MSG's fields before raw, VENUE_MSG_LONG's head


def venue_payload(soup_seq: int, packet_type: int, msg_type: int, frame: bytes) -> tuple[RecordType, bytes]:
    """(record type, payload) of one venue frame, kept whole: VENUE_MSG when it fits the raw
    field (every OUCH 4.2 message does), else VENUE_MSG_LONG."""
    if len(frame) <= RAW_VENUE_MAX:
        return RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, soup_seq=soup_seq, packet_type=packet_type,
                                          msg_type=msg_type, raw=frame)
    return RecordType.VENUE_MSG_LONG, _VENUE_HEAD.pack(soup_seq, packet_type, msg_type, len(frame) & 0xFFFF) + frame


def _raw_at(rtype: RecordType) -> tuple[int, int, int, int]:
    """(payload size, raw_len offset, raw offset, raw field size) of a layout ending in raw_len, raw:
    what the readers below slice instead of building a numpy record per payload."""
    dtype = PAYLOAD_DTYPES[rtype]
    if dtype.names[-2:] != ("raw_len", "raw") or dtype["raw_len"] != np.dtype("<u2"):
        raise ImportError(f"the {rtype.name} layout changed: update catalogue's readers of it")
    raw_at = dtype.fields["raw"][1]
    return dtype.itemsize, dtype.fields["raw_len"][1], raw_at, dtype.itemsize - raw_at


_VENUE_MSG_AT = _raw_at(RecordType.VENUE_MSG)
_ORDER_SENT_AT = _raw_at(RecordType.ORDER_SENT)
_RAW_LEN = struct.Struct("<H")
if _VENUE_MSG_AT[2] != _VENUE_HEAD.size or PAYLOAD_DTYPES[RecordType.VENUE_MSG].names[:2] != ("soup_seq", "packet_type"):
    raise ImportError("the VENUE_MSG layout changed: update catalogue.venue_fields")


def venue_fields(rtype: int, payload: bytes) -> tuple[int, int, int, bytes]:
    """(soup_seq, packet_type, msg_type, frame) of a VENUE_MSG or VENUE_MSG_LONG payload."""
    if rtype == RecordType.VENUE_MSG_LONG:
        if len(payload) < _VENUE_HEAD.size:
            raise CatalogueError(f"VENUE_MSG_LONG payload of {len(payload)} bytes is shorter than its head")
        soup_seq, packet_type, msg_type, _ = _VENUE_HEAD.unpack_from(payload)
        return soup_seq, packet_type, msg_type, bytes(payload[_VENUE_HEAD.size:])
    size, _, raw_at, raw_max = _VENUE_MSG_AT
    if len(payload) == size:        # the head and raw_len in one struct call (replay reads every one)
        soup_seq, packet_type, msg_type, raw_len = _VENUE_HEAD.unpack_from(payload)
        return soup_seq, packet_type, msg_type, bytes(payload[raw_at:raw_at + min(raw_len, raw_max)])
    msg = unpack(RecordType.VENUE_MSG, payload)
    return int(msg["soup_seq"]), int(msg["packet_type"]), int(msg["msg_type"]), raw_bytes(msg)


def raw_bytes(record: np.void) -> bytes:
    """The raw wire bytes kept in a VENUE_MSG or ORDER_SENT payload."""
    return record["raw"][: int(record["raw_len"])].tobytes()


def order_sent_raw(payload: bytes) -> bytes:
    """raw_bytes(unpack(RecordType.ORDER_SENT, payload)) by slicing (replay checks every order)."""
    size, len_at, raw_at, raw_max = _ORDER_SENT_AT
    if len(payload) != size:
        return raw_bytes(unpack(RecordType.ORDER_SENT, payload))       # its error
    return bytes(payload[raw_at:raw_at + min(_RAW_LEN.unpack_from(payload, len_at)[0], raw_max)])


def code_fingerprint(session_start: np.void) -> str | None:
    """The code fingerprint a SESSION_START record carries, as hex; None when it carries none (a
    record of layout 1, or a writer that could not name its code)."""
    value = session_start["code_fingerprint"].tobytes()
    return value.hex() if any(value) else None


def token_tag(session_start: np.void) -> str:
    """The order-token tag a SESSION_START record names; "" for a session without one (records of
    layouts 1 and 2: its tokens are the prefix and the counter alone)."""
    return session_start["token_tag"].decode("ascii", "replace")


STOP_NOTE = "session-stop"      # METRICS {"note": ...} with a stop reason SESSION_STOP's field cuts


def session_stop(session_id: int, events: int, orders: int, reason: str) -> list[tuple[RecordType, bytes]]:
    """(type, payload) of the records that end a session, in order: SESSION_STOP, whose reason
    field keeps the reason's first 32 bytes, preceded by a METRICS {"note": "session-stop",
    "session_id", "reason"} with the whole reason when it is longer (nothing of it is lost)."""
    text = reason.encode()
    size = PAYLOAD_DTYPES[RecordType.SESSION_STOP]["reason"].itemsize
    stop = (RecordType.SESSION_STOP, pack(RecordType.SESSION_STOP, session_id=session_id, events=events,
                                          orders=orders, reason=text[:size]))
    if len(text) <= size:
        return [stop]
    return [(RecordType.METRICS, pack_json({"note": STOP_NOTE, "session_id": session_id, "reason": reason})), stop]


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))     # what json.dumps would build per call


def pack_json(document: dict) -> bytes:
    """Canonical JSON (sorted keys, no spaces) so the same document always gives the same bytes."""
    return _CANONICAL.encode(document).encode()


def unpack_json(payload: bytes) -> dict:
    return json.loads(payload)
