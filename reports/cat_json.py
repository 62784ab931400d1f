"""CAT submission files: the kept CAT order events as JSON, one event per line with CAT field
names, in files named by the CAT convention, each with a metadata file; written beside the Parquet
under OUT/cat/submission/.

Owns the line format (assembled column-wise with Arrow string kernels, fields absent where null,
numbers unquoted, booleans true/false, timeInForce as a name/value object) and the file naming and
rollover. Deterministic: the file generation date is the events' Eastern-Time date, never the
wall clock. The name is <CATSubmitterID>_<CATReporterIMID>_<YYYYMMDD>_<Group>_OrderEvents_<NNNNNN>:
Tech Specs 4.0.0-r18 (orchimate.org) says of every event's CATReporterIMID "If populated, must equal
the CATReporterIMID in the filename", and real submitters' files are named so (e.g.
93005_SGAS_20250324_SGASOFIDESSA_OrderEvents_000001.csv.bz2): the IMID alone, as the CAT JSON
schema for Tech Specs 4.1.0 r15 (03.18.26-IM-4.1.0-r15.json) types CATReporterIMID (at most 7
characters; senderIMID is the whole CRD:IMID). The group is the IMID and the journal id's first 12
hex digits (two journals of one trading day never share a file name). The submitter is firm.toml's
`cat_submitter_id` (an id CAT assigns the Reporting Agent); without one the firm's CRD is assumed,
and each metadata file says which. The same schema confirms timeInForce's shape: DAY a Date (an
8-digit number), IOC a Boolean. Unconfirmed (the spec's file-submission sections could not be
read): the metadata file's fields (ours below; one implementation writes type META,
fileGenerationDate, submitter, fileVersion, files [fileName, recordCount, compressedHash],
reporter, doneForDay), the per-file record limit, and whether bz2 compression is mandatory (files
here are uncompressed JSON).
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reports import arrowcols as ac
from reports.refdata import Firm

DIRECTORY = "submission"
FILE_KIND = "OrderEvents"
MAX_EVENTS_PER_FILE = 1_000_000
TEXT_ROWS = 65_536          # rows turned into JSON text at a time
SPEC = ("CAT IM Technical Specifications 4.0.0-r18; CAT JSON schema 4.1.0 r15 (03.18.26) for the file name's "
        "reporter, firmROEID, timeInForce, tradingSession, destination and each event type's Required fields")
JOURNAL_HEX = 12            # hex digits of the journal id in the file group
SUBMITTER_GIVEN = "firm.toml cat_submitter_id"
SUBMITTER_ASSUMED = ("the firm's CRD, assumed: firm.toml has no cat_submitter_id (CAT assigns the submitter "
                     "its own id; set it when it differs)")
# Parquet columns that go to the JSON, in this order, with their JSON type.
STRINGS = ("actionType", "firmROEID", "CATReporterIMID", "orderKeyDate", "orderID", "priorOrderKeyDate", "priorOrderID", "tradeKeyDate",
           "tradeID", "symbol", "eventTimestamp", "deptType", "side", "orderType", "tradingSession",
           "firmDesignatedID", "accountHolderType", "representativeInd", "isoInd", "senderIMID", "destination",
           "destinationType", "routedOrderID", "priorRoutedOrderID", "session", "initiator", "capacity", "sideDetailsInd",
           "cancelTimestamp")
NUMBERS = ("price", "quantity", "cancelQty", "leavesQty")
BOOLEANS = ("manualFlag", "electronicDupFlag", "solicitationFlag", "custDspIntrFlag", "affiliateFlag",
            "negotiatedTradeFlag", "cancelFlag", "dupROIDCond", "routeRejectedFlag", "multiLegInd")
DETAILS = ("buyDetails", "sellDetails")       # Trade Side Details: an array of one {orderKeyDate, orderID, side}
ORDER = ("actionType", "firmROEID", "CATReporterIMID", "orderKeyDate", "orderID", "priorOrderKeyDate", "priorOrderID", "tradeKeyDate",
         "tradeID", "symbol", "eventTimestamp", "manualFlag", "electronicDupFlag", "cancelFlag", "cancelTimestamp",
         "deptType", "solicitationFlag", "side",
         "price", "quantity", "orderType", "timeInForce", "tradingSession", "custDspIntrFlag", "firmDesignatedID",
         "accountHolderType", "affiliateFlag", "negotiatedTradeFlag", "representativeInd", "isoInd", "senderIMID",
         "destination", "destinationType", "routedOrderID", "priorRoutedOrderID",
         "dupROIDCond", "routeRejectedFlag", "session", "multiLegInd", "cancelQty", "leavesQty", "initiator",
         "capacity", "sideDetailsInd", "buyDetails", "sellDetails")


# JSON (RFC 8259) escapes in a string: the backslash first, then the quote and the control
# characters U+0000..U+001F, which may not appear raw (a tab or newline in a free-text field would
# otherwise break the line-per-event file)
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")) + tuple(
    (chr(c), f"\\u{c:04x}") for c in range(32) if chr(c) not in "\n\r\t")


def _json_text(value: str) -> str:
    for raw, escape in _JSON_ESCAPES:
        if raw in value:
            value = value.replace(raw, escape)
    return value


def _escaped(arr: pa.Array) -> pa.Array:
    if not ac.has_any_byte(arr, b'"\\') and not ac.has_control_byte(arr):
        return ac.plain(arr)         # a code column: its (small) dictionary scanned
    arr = ac.plain(arr)
    for raw, escape in _JSON_ESCAPES:
        if ac.has_any_byte(arr, raw.encode()):
            arr = pc.replace_substring(arr, raw, escape)
    return arr


def _constant(name: str, col: pa.Array) -> str | None:
    """The whole `"name":value` text when every row of `col` holds the same code or flag (most
    code columns within one event type): it then joins as constant text, with no kernel pass and
    no per-row copy of its own. None otherwise."""
    if col.null_count or len(col) == 0:
        return None
    if pa.types.is_dictionary(col.type):
        idx = col.indices.to_numpy(zero_copy_only=False)
        if not (idx == idx[0]).all():
            return None
        value = col.dictionary[int(idx[0])].as_py()
        if name == "timeInForce" or name in NUMBERS or not isinstance(value, str):
            return None
        return f',"{name}":"' + _json_text(value) + '"'
    if name in BOOLEANS:
        values = col.to_numpy(zero_copy_only=False)
        if not (values == values[0]).all():
            return None
        return f',"{name}":' + ("true" if values[0] else "false")
    return None


def _time_in_force(arr: pa.Array) -> pa.Array:
    """'DAY=20260302' -> {"DAY":20260302}; 'IOC' -> {"IOC":true}."""
    arr = ac.plain(arr)
    day = pc.starts_with(pc.fill_null(arr, ""), "DAY=")
    value = pc.utf8_slice_codeunits(arr, 4)
    as_day = pc.binary_join_element_wise('{"DAY":', value, "}", "")
    as_flag = pc.binary_join_element_wise('{"', arr, '":true}', "")
    return pc.if_else(day, as_day, as_flag)


def _side_details(col: pa.StructArray) -> pa.Array:
    """[{"orderKeyDate":...,"orderID":...,"side":...}] per row, null where the struct is null."""
    text = pc.binary_join_element_wise('[{"orderKeyDate":"', _escaped(col.field("orderKeyDate")), '","orderID":"',
                                       _escaped(col.field("orderID")), '","side":"', _escaped(col.field("side")),
                                       '"}]', "")
    return pc.if_else(col.is_valid(), text, pa.scalar(None, pa.string()))


def _field(name: str, col: pa.Array) -> list:
    """The pieces of `"name":value` (a leading constant, the value, a trailing constant)."""
    if name in DETAILS:
        return [f',"{name}":', _side_details(col), ""]
    if name == "timeInForce":
        return [f',"{name}":', _time_in_force(col), ""]
    if name in NUMBERS:
        return [f',"{name}":', pc.cast(col, pa.string()), ""]
    if name in BOOLEANS:
        return [f',"{name}":', pc.if_else(col, "true", "false"), ""]
    return [f',"{name}":"', _escaped(col), '"']


def _uniform_lines(table: pa.Table) -> pa.Array:
    """Lines of rows of one event type: most fields are then present in every row or in none,
    so they join as they are; only fields present in some rows need a fragment of their own."""
    parts: list = []

    def const(text: str) -> None:
        if parts and isinstance(parts[-1], str):
            parts[-1] += text
        elif text:
            parts.append(text)

    for name in ("type",) + ORDER:
        col = table.column(name).combine_chunks()
        if col.null_count == len(col):
            continue
        fixed = _constant(name, col)
        if fixed is not None:
            const('{"type":"' + fixed[len(',"type":"'):] if name == "type" else fixed)
            continue
        head, value, tail = _field(name, col)
        if name == "type":
            head = '{"type":"'
        if col.null_count == 0:
            const(head)
            parts.append(value)
            const(tail)
        else:
            parts.append(pc.binary_join_element_wise(head, value, tail, ""))
    const("}\n")
    if all(isinstance(p, str) for p in parts):          # every row the same line
        return pa.repeat(pa.scalar("".join(parts), pa.string()), table.num_rows)
    return pc.binary_join_element_wise(*[pa.scalar(p) if isinstance(p, str) else p for p in parts], "",
                                       null_handling="skip")


def lines(table: pa.Table) -> pa.Array:
    """One JSON object per row, newline-terminated, in the rows' order; a null field is left out
    of its line. Built per event type, then put back in order."""
    if table.num_rows == 0:
        return pa.array([], pa.string())
    types = table.column("type").combine_chunks()
    codes = (types.indices if pa.types.is_dictionary(types.type) else pc.dictionary_encode(types).indices)
    codes = codes.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    groups = np.split(order, cuts)
    text = pa.concat_arrays([_uniform_lines(table.take(pa.array(rows))) for rows in groups])
    if len(groups) == 1:
        return text
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return text.take(pa.array(inverse))


class SubmissionFiles:
    """Appends each chunk's lines to the file of their Eastern-Time event date, rolling over to
    the next file number every MAX_EVENTS_PER_FILE events; `finish` writes the metadata files."""

    def __init__(self, firm: Firm, max_events: int | None = None, notes: str | None = None,
                 journal_id: str = ""):
        self.crd, self.imid = firm.cat_crd, firm.cat_reporter_imid
        # the file group: the IMID and the journal's id (its first hex digits, as in firmROEID), so
        # that two journals of one trading day (two sessions, two engines) never share a file name
        self.group = self.imid + journal_id[:JOURNAL_HEX].upper()
        self.submitter = firm.cat_submitter
        self.submitter_assumed = not firm.cat_submitter_id
        self.max_events = max_events or MAX_EVENTS_PER_FILE
        self.notes = notes                   # what the events leave out, said in each metadata file
        self.counts: dict[int, list[int]] = {}     # YYYYMMDD -> events in file 1, 2, ...

    def name(self, date: int, number: int) -> str:
        return f"{self.submitter}_{self.imid}_{date}_{self.group}_{FILE_KIND}_{number:06d}"

    def add(self, table: pa.Table, sink) -> None:
        if table.num_rows == 0:
            return
        for start in range(0, table.num_rows, TEXT_ROWS):       # bounded text in memory
            self._add_rows(table.slice(start, TEXT_ROWS), sink)

    def _add_rows(self, table: pa.Table, sink) -> None:
        text = lines(table)
        stamp = table.column("eventTimestamp").combine_chunks()   # ET text: first 8 characters are the date
        dates = pc.cast(pc.utf8_slice_codeunits(stamp, 0, 8), pa.int64()).to_numpy()
        starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], len(dates)]):
            self._append(int(dates[a]), text.slice(a, b - a), sink)

    def _append(self, date: int, text: pa.Array, sink) -> None:
        counts = self.counts.setdefault(date, [0])
        at = 0
        while at < len(text):
            if counts[-1] == self.max_events:
                counts.append(0)
            take = min(self.max_events - counts[-1], len(text) - at)
            sink.add_text(f"{DIRECTORY}/{self.name(date, len(counts))}.json", ac.concat_text(text.slice(at, take)))
            counts[-1] += take
            at += take

    def finish(self, sink, provenance: dict[str, str]) -> None:
        for date, counts in sorted(self.counts.items()):
            for number, count in enumerate(counts, start=1):
                name = self.name(date, number)
                # reporterIMID: the file name's second field and every event's CATReporterIMID
                meta = {"fileName": f"{name}.json", "fileKind": FILE_KIND, "submitter": self.submitter,
                        "submitterSource": SUBMITTER_ASSUMED if self.submitter_assumed else SUBMITTER_GIVEN,
                        "reporterCRD": self.crd, "reporterIMID": self.imid, "fileGroup": self.group,
                        "fileGenerationDate": date,
                        "fileNumber": number, "recordCount": count, "compression": "none", "format": "json",
                        "specification": SPEC, "journal": provenance}
                if self.notes:
                    meta["notes"] = self.notes
                sink.add_text(f"{DIRECTORY}/{name}.meta.json",
                              (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())

