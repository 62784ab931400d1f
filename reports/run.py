"""Running report builders: the registry of report kinds, one run = read the journal range once,
build each requested kind, validate, and write it (refusing to overwrite unless forced).

Owns the order of work and progress callbacks; the CLI calls `run` and prints the RunResult.
"""
from __future__ import annotations

import importlib
import pathlib
from dataclasses import dataclass
from typing import Callable

from reports import output
from reports.errors import UnknownReportError
from reports.refdata import RefData, load
from reports.source import JournalSlice, Selection, open_slice

# Each kind's module (its KIND -> reports.<module>), imported only when a run asks for that kind:
# `mmaudit report cat` pays the start-up of CAT's builder, not of every kind's (RTS 22's XML, the
# clock evidence's lab clocks, the NBBO of execution quality: about 0.15 s of every command).
MODULES = {"orders": "orders", "rts22": "rts22", "clock": "clock", "controls": "controls", "cat": "cat",
           "execution-quality": "execution"}
KINDS = tuple(MODULES)
# Kinds whose builders hand their large tables to a sink chunk by chunk (see orders.stream).
STREAMED = ("orders", "clock", "rts22", "cat", "execution-quality")
# Kinds that write text exports (auth.016 XML, CAT JSON) beside their Parquet; `text=False` skips them.
TEXT_EXPORTS = ("rts22", "cat")


class _ByKind(dict):
    """kind -> an attribute of that kind's module, the module imported on first use (an entry set
    here, e.g. by a test, stands in for it)."""

    def __init__(self, attribute: str, kinds: tuple[str, ...]):
        super().__init__()
        self.attribute, self.kinds = attribute, kinds

    def __missing__(self, kind: str):
        if kind not in self.kinds:
            raise KeyError(kind)
        return getattr(importlib.import_module(f"reports.{MODULES[kind]}"), self.attribute)

    def __contains__(self, kind) -> bool:
        return kind in self.kinds or super().__contains__(kind)


BUILDERS: dict[str, Callable[[JournalSlice, RefData], output.ReportOutput]] = _ByKind("build", KINDS)
STREAMERS = _ByKind("stream", STREAMED)
SCHEMA_VERSIONS = _ByKind("SCHEMA_VERSION", STREAMED)


@dataclass(frozen=True)
class KindResult:
    kind: str
    files: list[output.WrittenFile]
    rows: dict[str, int]
    rejected: int


@dataclass(frozen=True)
class RunResult:
    results: list[KindResult]
    # the journal's discarded/ runs (JournalSlice.discarded): records a recovery cut off after
    # damage, which no report of this run holds (each file's provenance names them)
    discarded: tuple = ()

    @property
    def rejected(self) -> int:
        return sum(r.rejected for r in self.results)


def run(kinds: list[str], journal_dir: str | pathlib.Path, out_dir: str | pathlib.Path,
        selection: Selection = Selection(), refdata_dir: str | pathlib.Path | None = None,
        force: bool = False, progress: Callable[[str], None] | None = None, reader=None,
        text: bool = True) -> RunResult:
    """Build and write each report kind in `kinds` from one journal range. `text=False`: the
    Parquet tables only, without the text exports of TEXT_EXPORTS kinds (the manifest says so)."""
    unknown = [k for k in kinds if k not in BUILDERS]
    if unknown:
        raise UnknownReportError(f"unknown report kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    out_dir = pathlib.Path(out_dir)
    for kind in kinds:                     # refuse before doing any work, not half-way through
        output.prepare(out_dir, kind, force)
    say = progress or (lambda _msg: None)
    ref = load(refdata_dir)
    say(f"reading journal {journal_dir}")
    src = open_slice(journal_dir, selection, reader=reader)
    provenance = src.provenance()
    results = []
    for kind in kinds:
        if kind in STREAMERS:              # large tables written chunk by chunk: bounded memory
            say(f"building and writing {kind}")
            omitted = kind in TEXT_EXPORTS and not text
            writer = output.StreamWriter(out_dir, kind, SCHEMA_VERSIONS[kind], provenance, force=force,
                                         text_omitted=omitted)
            try:
                report = STREAMERS[kind](src, ref, writer, text=False) if omitted else \
                    STREAMERS[kind](src, ref, writer)
                src.confirm_complete()
            except BaseException:
                writer.abort()
                raise
            files = writer.finish(report)
            rows = {name: n for name, n in sorted(writer.rows.items()) if name != "rejects"}
        else:
            say(f"building {kind}")
            report = BUILDERS[kind](src, ref)
            src.confirm_complete()
            say(f"writing {kind}")
            files = output.write(out_dir, report, provenance, force=force)
            rows = {name: t.num_rows for name, t in sorted(report.tables.items())}
        results.append(KindResult(kind=kind, files=files, rows=rows, rejected=report.rejected))
    return RunResult(results, discarded=src.discarded)
