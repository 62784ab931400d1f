"""RTS 22 (with auth.016 XML), CAT (with JSON submission files) and execution quality are built
chunk by chunk: tiny journal chunks and tiny text slices must give the very same files as one
chunk, and the whole-report API the same tables."""
import json

import pyarrow.parquet as pq

from reports import auth016, cat_json, events, execution, rts22
from reports.refdata import load
from reports.run import run
from reports.source import open_slice
from tests.reports.journal_builder import FIXTURE_REFDATA

KINDS = ["rts22", "cat", "execution-quality"]


def _digests(out, kind):
    manifest = json.loads((out / kind / "_manifest.json").read_text())
    return {f["path"]: f["sha256"] for f in manifest["files"]}, manifest["tables"]


def test_tiny_chunks_write_the_same_files(day_journal, tmp_path, monkeypatch):
    run(KINDS, day_journal, tmp_path / "whole", refdata_dir=FIXTURE_REFDATA)
    monkeypatch.setattr(events, "CHUNK_SEQS", 7)
    monkeypatch.setattr(auth016, "TEXT_ROWS", 2)
    monkeypatch.setattr(cat_json, "TEXT_ROWS", 3)
    run(KINDS, day_journal, tmp_path / "chunked", refdata_dir=FIXTURE_REFDATA)
    for kind in KINDS:
        whole, chunked = _digests(tmp_path / "whole", kind), _digests(tmp_path / "chunked", kind)
        assert chunked == whole, kind


def test_whole_report_api_matches_the_streamed_files(day_journal, tmp_path):
    run(KINDS, day_journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    src, ref = open_slice(day_journal), load(FIXTURE_REFDATA)
    report = rts22.build(src, ref)
    written = pq.read_table(tmp_path / "o" / "rts22" / "transactions", partitioning="hive")
    assert report.tables["transactions"].drop_columns(["trade_date"]).equals(written.drop_columns(["trade_date"]))
    xml = "auth016/trade_date=2026-03-02/auth016.xml"
    assert report.extra_files[xml] == (tmp_path / "o" / "rts22" / xml).read_bytes()
    quality = execution.build(src, ref)
    assert quality.tables["summary"].equals(pq.read_table(tmp_path / "o" / "execution-quality" / "summary"))
