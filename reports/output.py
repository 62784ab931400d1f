"""Writing a report run to disk: hive-partitioned Parquet (trade_date=YYYY-MM-DD), zstd, fixed row
groups, key-value metadata tying every file to its journal range, plus a manifest.

Owns the on-disk layout `OUT/<kind>/<table>/trade_date=<d>/part-00000.parquet` (rejects and
summaries: `OUT/<kind>/<table>/part-00000.parquet`), determinism (no
wall-clock times, no random names, rows in sequence order) and the refuse-to-overwrite rule.
Knows nothing about what the tables mean.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import pathlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reports.errors import OutputExistsError

GENERATOR = "mmaudit.reports 0.1.0"
ROW_GROUP_ROWS = 65_536
FILE_ROWS = 16 * ROW_GROUP_ROWS      # rows per Parquet file; a large trade date gets several
EPOCH = dt.date(1970, 1, 1)


@dataclass
class ReportOutput:
    """What one builder produced: named Parquet tables, rejects, and extra text files (e.g. XML)."""

    kind: str
    schema_version: str
    tables: dict[str, pa.Table]
    rejects: pa.Table
    extra_files: dict[str, bytes] = field(default_factory=dict)   # relative path -> bytes

    @property
    def rejected(self) -> int:
        return self.rejects.num_rows


@dataclass(frozen=True)
class WrittenFile:
    path: pathlib.Path
    rows: int


def prepare(out_dir: pathlib.Path, kind: str, force: bool) -> None:
    """Refuse to overwrite an existing report of this kind unless `force`."""
    target = out_dir / kind
    if target.exists() and not force:
        raise OutputExistsError(f"{target} already exists; pass --force to overwrite it")


def write(out_dir: str | pathlib.Path, report: ReportOutput, provenance: dict[str, str],
          force: bool = False) -> list[WrittenFile]:
    """Write every table of `report` under OUT/<kind>; returns the files written (sorted).
    Files are independent, so they are encoded on a thread pool; each file's bytes depend only on
    its rows, so the result is the same whatever the scheduling."""
    out_dir = pathlib.Path(out_dir)
    prepare(out_dir, report.kind, force)
    staging = out_dir / f".{report.kind}.partial"
    if staging.exists():
        shutil.rmtree(staging)            # left by an interrupted run of ours; never a report
    staging.mkdir(parents=True)
    tables = dict(report.tables)
    tables["rejects"] = report.rejects
    base_meta = dict(provenance, report=report.kind, schema_version=report.schema_version,
                     generator=GENERATOR)
    jobs = [job for name in sorted(tables) for job in _file_jobs(name, tables[name], base_meta)]
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1) or 1) as pool:
        encoded = list(pool.map(_encode, jobs))
    files: list[tuple[pathlib.Path, int, bytes]] = [(rel, rows, data) for (rel, rows), data in
                                                    zip(((j[0], j[1].num_rows) for j in jobs), encoded)]
    files += [(pathlib.Path(rel), 0, data) for rel, data in sorted(report.extra_files.items())]
    for rel, _, data in files:
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(data)
    manifest = {
        "provenance": base_meta,
        "files": [{"path": str(rel), "rows": rows, "sha256": hashlib.sha256(data).hexdigest()}
                  for rel, rows, data in files],
        "tables": {name: tables[name].num_rows for name in sorted(tables)},
    }
    (staging / "_manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    target = out_dir / report.kind
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return [WrittenFile(target / rel, rows) for rel, rows, _ in files]


def _file_jobs(name: str, table: pa.Table, meta: dict[str, str]):
    """(relative path, rows, metadata) per output file: one directory per trade date, and within
    it files of at most FILE_ROWS rows (part-00000, part-00001, ...) in sequence order."""
    if table.num_rows == 0:
        return
    # Rejects stay one file with trade_date as a column: a rejected row may have no date at all.
    if "trade_date" not in table.column_names or name == "rejects":
        yield from _chunks(pathlib.Path(name), table, dict(meta, table=name))
        return
    days = table.column("trade_date").combine_chunks().cast(pa.int32()).fill_null(-(2**31)).to_numpy()
    data = table.drop_columns(["trade_date"])     # hive: the partition value lives in the path
    for day in np.unique(days):
        part = data if len(np.unique(days)) == 1 else data.filter(pa.array(days == day))
        label = "__HIVE_DEFAULT_PARTITION__" if day == -(2**31) else \
            (EPOCH + dt.timedelta(days=int(day))).isoformat()
        yield from _chunks(pathlib.Path(name) / f"trade_date={label}", part,
                           dict(meta, table=name, trade_date=label))


def _chunks(directory: pathlib.Path, table: pa.Table, meta: dict[str, str]):
    for i, start in enumerate(range(0, table.num_rows, FILE_ROWS)):
        yield directory / f"part-{i:05d}.parquet", table.slice(start, FILE_ROWS), meta


def _encode(job) -> bytes:
    _, table, meta = job
    meta = dict(meta, rows=str(table.num_rows))
    if "seq" in table.column_names and table.num_rows:
        seq = table.column("seq")
        meta["rows_first_seq"] = str(pc.min(seq).as_py())
        meta["rows_last_seq"] = str(pc.max(seq).as_py())
    existing = table.schema.metadata or {}
    table = table.replace_schema_metadata({**existing, **{f"mmaudit.{k}": str(v) for k, v in sorted(meta.items())}})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **writer_options(table.schema))
    return sink.getvalue().to_pybytes()


def writer_options(schema: pa.Schema) -> dict:
    """Parquet options for every report file. Dictionary encoding only for text and codes: on
    high-cardinality integers (sequences, times, quantities) it costs time and bytes for nothing."""
    texts = [f.name for f in schema
             if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type) or pa.types.is_boolean(f.type)]
    return dict(compression="zstd", row_group_size=ROW_GROUP_ROWS, use_dictionary=texts, write_statistics=True)


def read_metadata(path: str | pathlib.Path) -> dict[str, str]:
    """The mmaudit.* key-value metadata of one report file (for verifiers and tests)."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode()[len("mmaudit."):]: v.decode() for k, v in raw.items() if k.startswith(b"mmaudit.")}
