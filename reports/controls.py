"""RTS 6 control evidence: pre-trade risk decisions (denials with the failed check and its values),
trading-state changes, kill-switch activations, limit versions loaded and drill results.

Owns the layouts of those tables; check ids and state numbers are reported as journaled (their
names belong to the risk gateway, which reports must not import). Times are UTC as elsewhere.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journal.catalogue import RecordType, pack_json
from reports import arrowcols as ac
from reports import common
from reports.events import clock_samples
from reports.output import ReportOutput
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.timebase import BASIS_NAMES, TS_SOURCE_NAMES, to_utc
from reports.validate import REJECTS_SCHEMA, mask_check, split

KIND = "controls"
SCHEMA_VERSION = "controls-1"
KILL_SCOPES = ["ALL", "SYMBOL", "ALGO", "DESK", "CLIENT"]


def _times(arr: np.ndarray, samples: np.ndarray) -> tuple[dict[str, pa.Array], np.ndarray, np.ndarray]:
    utc = to_utc(arr["seq"], arr["ts_ns"], arr["ts_source"], samples)
    cols = {
        "seq": pa.array(np.asarray(arr["seq"], dtype=np.uint64)),
        "event_time_utc": ac.timestamp_utc(utc.utc_ns, utc.valid),
        "ts_source": ac.codes(arr["ts_source"], TS_SOURCE_NAMES),
        "utc_basis": ac.codes(utc.basis, BASIS_NAMES),
    }
    return cols, utc.utc_ns, utc.valid


def _on_date(utc_ns: np.ndarray, valid: np.ndarray, day: dt.date | None) -> np.ndarray:
    if day is None:
        return np.ones(len(utc_ns), dtype=bool)
    return ~valid | (utc_ns // ac.NS_PER_DAY == (day - dt.date(1970, 1, 1)).days)


def _text(values: np.ndarray) -> pa.Array:
    return ac.fixed_bytes(np.asarray(values))


def _fixed_table(src: JournalSlice, rtype: RecordType, samples: np.ndarray, build_cols) -> pa.Table:
    arr = src.fixed(rtype)
    times, utc_ns, valid = _times(arr, samples)
    keep = np.flatnonzero(_on_date(utc_ns, valid, src.selection.trade_date))
    arr, utc_ns, valid = arr[keep], utc_ns[keep], valid[keep]
    times = {k: v.take(pa.array(keep)) for k, v in times.items()}
    return pa.table({**times, **build_cols(arr), "trade_date": common.trade_date_column(utc_ns, valid)})


def _risk_cols(a: np.ndarray) -> dict[str, pa.Array]:
    return {
        "order_id": _text(a["token"]), "symbol_id": pa.array(a["symbol_id"]),
        "side": pa.array(a["side"].view("S1"), pa.binary(1)).cast(pa.string()),
        "msg_type": pa.array(a["msg_type"].view("S1"), pa.binary(1)).cast(pa.string()),
        "allowed": pa.array(a["allowed"] != 0), "check_id": pa.array(a["check_id"]),
        "trading_state": pa.array(a["trading_state"]), "limits_version": pa.array(a["limits_version"]),
        "price": ac.decimal(a["price"], 4), "qty": pa.array(a["qty"]),
        "value": pa.array(a["value"]), "limit": pa.array(a["limit"]), "detail": _text(a["detail"]),
    }


def _state_cols(a: np.ndarray) -> dict[str, pa.Array]:
    return {"from_state": pa.array(a["from_state"]), "to_state": pa.array(a["to_state"]),
            "reason_code": pa.array(a["reason_code"]), "actor": _text(a["actor"]), "reason": _text(a["reason"])}


def _kill_cols(a: np.ndarray) -> dict[str, pa.Array]:
    known = a["scope"] < len(KILL_SCOPES)
    return {"scope": ac.codes(np.where(known, a["scope"], 0), KILL_SCOPES, known),
            "scope_id": pa.array(a["scope_id"]), "orders_cancelled": pa.array(a["orders_cancelled"]),
            "requested_by": _text(a["requested_by"]), "reason": _text(a["reason"])}


def _documents(src: JournalSlice, rtype: RecordType, samples: np.ndarray, label_key: str) -> pa.Table:
    docs = src.documents(rtype)
    seq = np.array([d[0] for d in docs], dtype=np.uint64)
    ts = np.array([d[1] for d in docs], dtype=np.int64)
    source = np.array([d[2] for d in docs], dtype=np.uint8)
    utc = to_utc(seq, ts, source, samples)
    keep = _on_date(utc.utc_ns, utc.valid, src.selection.trade_date)
    label = [str(d[4].get(label_key)) if d[4].get(label_key) is not None else None for d in docs]
    passed = [d[4].get("passed") if isinstance(d[4].get("passed"), bool) else None for d in docs]
    table = pa.table({
        "seq": pa.array(seq), "event_time_utc": ac.timestamp_utc(utc.utc_ns, utc.valid),
        "ts_source": ac.codes(source, TS_SOURCE_NAMES), "utc_basis": ac.codes(utc.basis, BASIS_NAMES),
        label_key: pa.array(label, pa.string()), "passed": pa.array(passed, pa.bool_()),
        "document": pa.array([pack_json(d[4]).decode() for d in docs], pa.string()),
        "trade_date": common.trade_date_column(utc.utc_ns, utc.valid),
    })
    return table.filter(pa.array(keep))


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    samples = clock_samples(src)
    tables = {
        "risk_decisions": _fixed_table(src, RecordType.RISK_DECISION, samples, _risk_cols),
        "state_changes": _fixed_table(src, RecordType.STATE_CHANGE, samples, _state_cols),
        "kills": _fixed_table(src, RecordType.KILL, samples, _kill_cols),
        "limits": _documents(src, RecordType.LIMITS_LOADED, samples, "version"),
        "drills": _documents(src, RecordType.DRILL_RESULT, samples, "drill"),
    }
    kept, rejected = {}, []
    for name, table in tables.items():
        no_time = ~table.column("event_time_utc").is_valid().to_numpy(zero_copy_only=False)
        kept[name], rej = split(table, KIND, name, [
            mask_check("event_time_utc", no_time, "control event without a UTC time")])
        rejected.append(rej)
    decisions = kept["risk_decisions"]
    denied = decisions.filter(pc.invert(decisions["allowed"])) if decisions.num_rows else decisions
    kept["denials"] = denied
    summary_rows = [
        {"measure": "risk_decisions", "count": decisions.num_rows},
        {"measure": "risk_denials", "count": denied.num_rows},
        {"measure": "state_changes", "count": kept["state_changes"].num_rows},
        {"measure": "kill_activations", "count": kept["kills"].num_rows},
        {"measure": "limit_versions_loaded", "count": kept["limits"].num_rows},
        {"measure": "drills", "count": kept["drills"].num_rows},
        {"measure": "drills_failed", "count": sum(1 for p in kept["drills"].column("passed").to_pylist() if p is False)},
    ]
    kept["summary"] = pa.Table.from_pylist(summary_rows)
    rejects = pa.concat_tables(rejected) if rejected else REJECTS_SCHEMA.empty_table()
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION, tables=kept, rejects=rejects)
