"""CAT submission files: the kept CAT order events as JSON, one event per line with CAT field
names, in files named by the CAT convention, each with a metadata file; written beside the Parquet
under OUT/cat/submission/.

Owns the line format (assembled column-wise with Arrow string kernels, fields absent where null,
numbers unquoted, booleans true/false, timeInForce as a name/value object) and the file naming and
rollover. Deterministic: the file generation date is the events' Eastern-Time date, never the
wall clock. Unconfirmed against the CAT IM Technical Specifications (marked [M] in the reference
notes): the exact file-name pattern, the metadata file's fields, the per-file record limit, the
JSON shape of timeInForce, and compression (CAT takes bz2; files here are uncompressed JSON).
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reports import arrowcols as ac

DIRECTORY = "submission"
FILE_KIND = "OrderEvents"
MAX_EVENTS_PER_FILE = 1_000_000
SPEC = "CAT IM Technical Specifications 4.0.0-r18"
# Parquet columns that go to the JSON, in this order, with their JSON type.
STRINGS = ("actionType", "firmROEID", "CATReporterIMID", "orderKeyDate", "orderID", "priorOrderID", "symbol",
           "eventTimestamp", "deptType", "side", "orderType", "tradingSession", "firmDesignatedID",
           "accountHolderType", "representativeInd", "senderIMID", "destination", "destinationType",
           "routedOrderID", "session", "initiator", "tradeID")
NUMBERS = ("price", "quantity", "cancelQty", "leavesQty")
BOOLEANS = ("manualFlag", "electronicDupFlag")
ORDER = ("actionType", "firmROEID", "CATReporterIMID", "orderKeyDate", "orderID", "priorOrderID", "symbol",
         "eventTimestamp", "manualFlag", "electronicDupFlag", "deptType", "side", "price", "quantity", "orderType",
         "timeInForce", "tradingSession", "firmDesignatedID", "accountHolderType", "representativeInd",
         "senderIMID", "destination", "destinationType", "routedOrderID", "session", "cancelQty", "leavesQty",
         "initiator", "tradeID")


def _json_string(arr: pa.Array) -> pa.Array:
    arr = ac.plain(arr)
    if pc.any(pc.match_substring_regex(arr, r'["\\]')).as_py():
        arr = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', arr, '"', "")


def _time_in_force(arr: pa.Array) -> pa.Array:
    """'DAY=20260302' -> {"DAY":20260302}; 'IOC' -> {"IOC":true}."""
    arr = ac.plain(arr)
    day = pc.starts_with(pc.fill_null(arr, ""), "DAY=")
    value = pc.utf8_slice_codeunits(arr, 4)
    as_day = pc.binary_join_element_wise('{"DAY":', value, "}", "")
    as_flag = pc.binary_join_element_wise('{"', arr, '":true}', "")
    return pc.if_else(day, as_day, as_flag)


def lines(table: pa.Table) -> pa.Array:
    """One JSON object per row, newline-terminated; a null field is left out of its line."""
    parts = [pc.binary_join_element_wise('{"type":', _json_string(table.column("type").combine_chunks()), "")]
    for name in ORDER:
        col = table.column(name).combine_chunks()
        if name == "timeInForce":
            value = _time_in_force(col)
        elif name in NUMBERS:
            value = pc.cast(col, pa.string())
        elif name in BOOLEANS:
            value = pc.if_else(col, "true", "false")
        else:
            value = _json_string(col)
        parts.append(pc.binary_join_element_wise(f',"{name}":', value, ""))
    parts.append(pa.scalar("}\n"))
    return pc.binary_join_element_wise(*parts, "", null_handling="skip")


def split_imid(cat_imid: str) -> tuple[str, str]:
    """'CRD:IMID' -> (CRD, IMID)."""
    crd, _, imid = cat_imid.partition(":")
    return crd, imid or crd


class SubmissionFiles:
    """Appends each chunk's lines to the file of their Eastern-Time event date, rolling over to
    the next file number every MAX_EVENTS_PER_FILE events; `finish` writes the metadata files."""

    def __init__(self, cat_imid: str, max_events: int | None = None):
        self.crd, self.imid = split_imid(cat_imid)
        self.submitter = self.crd            # the firm submits its own events
        self.max_events = max_events or MAX_EVENTS_PER_FILE
        self.counts: dict[int, list[int]] = {}     # YYYYMMDD -> events in file 1, 2, ...

    def name(self, date: int, number: int) -> str:
        return f"{self.submitter}_{self.crd}_{date}_{self.imid}_{FILE_KIND}_{number:06d}"

    def add(self, table: pa.Table, sink) -> None:
        if table.num_rows == 0:
            return
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
                meta = {"fileName": f"{name}.json", "fileKind": FILE_KIND, "submitter": self.submitter,
                        "reporterCRD": self.crd, "reporterIMID": self.imid, "fileGenerationDate": date,
                        "fileNumber": number, "recordCount": count, "compression": "none", "format": "json",
                        "specification": SPEC, "journal": provenance}
                sink.add_text(f"{DIRECTORY}/{name}.meta.json",
                              (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())

