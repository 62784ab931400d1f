"""Row validation for report tables: identifier checks per distinct value, required fields per
report kind, and the split of a table into kept rows and a rejects table (one row per problem).

Owns the rejects schema and the rule that a failing row is never silently dropped: it leaves the
report and appears in rejects with its field, value and reason. Knows no regulation details beyond
the checks it is handed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reports.arrowcols import has_control_byte
from reports.errors import ReportError

REJECTS_SCHEMA = pa.schema([
    ("report", pa.string()), ("table", pa.string()), ("seq", pa.uint64()), ("field", pa.string()),
    ("value", pa.string()), ("reason", pa.string()), ("trade_date", pa.date32()),
])

Check = tuple[str, pa.Array]   # (field name, reason per row: null where the row passes)


def passed(n: int) -> pa.Array:
    """The reasons of a check every one of `n` rows passes: an all-null array with no buffers to
    fill (nothing to allocate per row)."""
    return pa.nulls(n)


def value_check(table: pa.Table, column: str, problem: Callable[[str | None], str | None],
                when: np.ndarray | None = None) -> Check:
    """Run `problem` once per distinct value of `column`; rows inherit their value's reason.
    `when` limits the check to rows where it is True (e.g. only rows whose field applies)."""
    col = table.column(column).combine_chunks()
    encoded = col if pa.types.is_dictionary(col.type) else col.dictionary_encode()
    reasons = [problem(v) for v in encoded.dictionary.to_pylist()]
    null_reason = problem(None)
    if all(r is None for r in reasons) and (null_reason is None or not col.null_count):
        return column, passed(len(col))                       # every value passes: nothing to map
    per_row = pa.array(reasons, type=pa.string()).take(encoded.indices) if reasons else \
        pa.nulls(len(col), pa.string())
    if null_reason is not None:
        per_row = pc.if_else(col.is_null(), pa.scalar(null_reason), per_row)
    if when is not None:
        per_row = pc.if_else(pa.array(when), per_row, pa.scalar(None, pa.string()))
    return column, per_row


def required_check(table: pa.Table, column: str, when: np.ndarray | None = None) -> Check:
    if not table.column(column).null_count:
        return column, passed(table.num_rows)
    col = table.column(column).combine_chunks()
    missing = col.is_null().to_numpy(zero_copy_only=False)
    if when is not None:
        missing &= when
    reasons = pa.array(np.where(missing, f"required field {column} is missing", None), type=pa.string())
    return column, reasons


def mask_check(field: str, bad: np.ndarray, reason) -> Check:
    """A check computed by the builder itself (e.g. an id absent from reference data). `reason` is
    a string, an array aligned with `bad`, or a function of the bad row indices (called only when
    some row is bad, so the happy path formats nothing)."""
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return field, passed(len(bad))
    rows = np.flatnonzero(bad)
    reasons = np.full(len(bad), None, dtype=object)
    if callable(reason):
        reasons[rows] = reason(rows)
    elif isinstance(reason, str):
        reasons[rows] = reason
    else:
        reasons[rows] = np.asarray(reason, dtype=object)[rows]
    return field, pa.array(reasons, type=pa.string())


# C0 controls other than tab, LF and CR: XML 1.0 forbids them even as character references.
_XML_FORBIDDEN = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
XML_CONTROL_REASON = "a control character (U+0000-U+001F other than tab, LF, CR) that XML 1.0 cannot carry"


def xml_text_checks(table: pa.Table) -> list[Check]:
    """Rows whose text an XML export could not carry. Such a row is rejected rather than written
    into an invalid document (or silently altered). One byte scan per text column (the dictionary
    only, for dictionary columns); rows are looked at only where a scan hits."""
    checks = []
    for name, col in zip(table.column_names, table.columns):
        kind = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        if not any(has_control_byte(chunk) for chunk in col.chunks):     # no copy on the clean path
            continue
        col = col.combine_chunks()
        values = col.dictionary if pa.types.is_dictionary(col.type) else col
        hit = pc.match_substring_regex(values, _XML_FORBIDDEN)
        if values is not col:
            hit = hit.take(col.indices)
        checks.append(mask_check(name, hit.fill_null(False).to_numpy(zero_copy_only=False), XML_CONTROL_REASON))
    return checks


def split(table: pa.Table, report: str, table_name: str, checks: list[Check]) -> tuple[pa.Table, pa.Table]:
    """Rows that pass every check, and one rejects row per (row, failed check)."""
    n = table.num_rows
    bad_any = np.zeros(n, dtype=bool)
    parts = []
    seq = table.column("seq").combine_chunks()
    trade_date = table.column("trade_date").combine_chunks() if "trade_date" in table.column_names \
        else pa.nulls(n, pa.date32())
    for field, reasons in checks:
        if reasons.null_count == len(reasons):
            continue                                # every row passed this check
        bad = reasons.is_valid().to_numpy(zero_copy_only=False)
        if not bad.any():
            continue
        bad_any |= bad
        rows = pa.array(np.flatnonzero(bad))
        if field in table.column_names:
            value = table.column(field).combine_chunks()
            if pa.types.is_dictionary(value.type):
                value = value.cast(value.type.value_type)
            value = value.take(rows).cast(pa.string())
        else:
            value = pa.nulls(len(rows), pa.string())
        parts.append(pa.table({
            "report": pa.array([report] * len(rows), pa.string()),
            "table": pa.array([table_name] * len(rows), pa.string()),
            "seq": seq.take(rows).cast(pa.uint64()),
            "field": pa.array([field] * len(rows), pa.string()),
            "value": value, "reason": reasons.take(rows),
            "trade_date": trade_date.take(rows),
        }, schema=REJECTS_SCHEMA))
    rejects = pa.concat_tables(parts) if parts else REJECTS_SCHEMA.empty_table()
    kept = table.filter(pa.array(~bad_any)) if bad_any.any() else table
    return kept, rejects


def declare_required(kept: pa.Table, names: tuple[str, ...]) -> pa.Table:
    """`kept` (rows that passed their checks) with the columns `names` declared non-nullable, the
    same schema for every piece of a report: columns built without nulls, or whose nulls the
    checks send to rejects. Parquet then stores them as REQUIRED, with no definition levels to
    encode (about a sixth less encoding time on the order-records table). A null in one of them
    would be a bug in the checks: it stops the run (ReportError, nothing published), never
    written as a value."""
    missing = [name for name in names if name not in kept.column_names]
    if missing:
        raise ReportError(f"{', '.join(missing)}: no such column to declare required")
    fields = []
    for f in kept.schema:
        if f.name in names:
            if kept.column(f.name).null_count:
                raise ReportError(f"column {f.name} has a null in a row that passed its checks; "
                                  "a required column must not (a bug in the checks: nothing written)")
            f = f.with_nullable(False)
        fields.append(f)
    return pa.Table.from_arrays(kept.columns, schema=pa.schema(fields, metadata=kept.schema.metadata))
