import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reports import output
from reports.errors import OutputExistsError
from reports.output import GENERATOR, ROW_GROUP_ROWS, read_metadata
from reports.run import KINDS, run
from reports.source import open_slice
from tests.reports.journal_builder import FIXTURE_REFDATA


def _digest_tree(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_journal_gives_identical_bytes(day_journal, tmp_path):
    run(list(KINDS), day_journal, tmp_path / "a", refdata_dir=FIXTURE_REFDATA)
    run(list(KINDS), day_journal, tmp_path / "b", refdata_dir=FIXTURE_REFDATA)
    a, b = _digest_tree(tmp_path / "a"), _digest_tree(tmp_path / "b")
    assert a == b
    assert any(name.endswith(".parquet") for name in a) and any(name.endswith(".xml") for name in a)


def test_files_are_hive_partitioned_zstd_with_journal_metadata(all_reports, day_journal):
    files = sorted((all_reports / "orders" / "order_events").rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["trade_date=2026-03-02"]
    src = open_slice(day_journal)
    meta = read_metadata(files[0])
    assert meta["journal_id"] == src.journal_id
    assert meta["journal_first_seq"] == "1" and meta["journal_last_seq"] == str(src.reader.last_seq)
    assert len(meta["chain_hash"]) == 64 and int(meta["chain_hash_seq"]) == src.reader.last_seq + 1
    assert meta["chain_hash_covers_through_seq"] == str(src.reader.last_seq)
    assert meta["schema_version"] == "orders-4" and meta["generator"] == GENERATOR
    assert meta["report"] == "orders" and meta["table"] == "order_events"
    assert meta["trade_date"] == "2026-03-02"
    first_row_seq = pq.read_table(files[0])["seq"][0].as_py()
    assert meta["rows_first_seq"] == str(first_row_seq)
    md = pq.ParquetFile(files[0]).metadata
    assert md.row_group(0).column(0).compression == "ZSTD"
    assert all(md.row_group(i).num_rows <= ROW_GROUP_ROWS for i in range(md.num_row_groups))


def test_chain_hash_matches_the_journal_seal(all_reports, day_journal):
    from journal import Reader
    r = Reader(day_journal)
    seals = [rec for rec in r.records(last_seq=r.last_seq + 1, include_control=True) if rec.rtype == 18]
    meta = read_metadata(next((all_reports / "clock" / "samples").rglob("*.parquet")))
    assert meta["chain_hash"] == seals[-1].payload[:32].hex()


def test_manifest_lists_every_file_with_its_hash(all_reports):
    manifest = json.loads((all_reports / "rts22" / "_manifest.json").read_text())
    for entry in manifest["files"]:
        data = (all_reports / "rts22" / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert manifest["tables"]["transactions"] == 5 and manifest["tables"]["rejects"] == 0


def test_refuses_to_overwrite_without_force(day_journal, tmp_path):
    run(["orders"], day_journal, tmp_path, refdata_dir=FIXTURE_REFDATA)
    before = _digest_tree(tmp_path)
    with pytest.raises(OutputExistsError, match="--force"):
        run(["orders", "clock"], day_journal, tmp_path, refdata_dir=FIXTURE_REFDATA)
    assert _digest_tree(tmp_path) == before and not (tmp_path / "clock").exists()
    stale = tmp_path / "orders" / "order_events" / "trade_date=1999-01-01"
    stale.mkdir()
    run(["orders"], day_journal, tmp_path, force=True, refdata_dir=FIXTURE_REFDATA)
    assert not stale.exists()                      # --force replaces the whole kind, no leftovers
    assert _digest_tree(tmp_path) == before


def test_large_partitions_split_into_numbered_files_in_sequence_order(day_journal, tmp_path, monkeypatch):
    from reports import output
    monkeypatch.setattr(output, "FILE_ROWS", 4)
    monkeypatch.setattr(output, "ROW_GROUP_ROWS", 2)
    run(["orders"], day_journal, tmp_path, refdata_dir=FIXTURE_REFDATA)
    files = sorted((tmp_path / "orders" / "order_events" / "trade_date=2026-03-02").glob("*.parquet"))
    assert [f.name for f in files][:2] == ["part-00000.parquet", "part-00001.parquet"]
    seqs = [s for f in files for s in pq.read_table(f)["seq"].to_pylist()]
    assert seqs == sorted(seqs) and len(files) == -(-len(seqs) // 4)
    assert all(pq.ParquetFile(f).metadata.num_row_groups == (2 if pq.ParquetFile(f).metadata.num_rows > 2 else 1)
               for f in files)
    assert read_metadata(files[1])["rows_first_seq"] == str(seqs[4])


def test_chain_evidence_for_a_sub_range_is_the_last_checkpoint_covering_it(tmp_path):
    from journal import Reader
    from reports.source import Selection
    from tests.reports.journal_builder import standard_day
    b = standard_day()
    for _ in range(3):
        standard_day(b)
    journal = b.write(tmp_path / "j")
    r = Reader(journal)
    checkpoints = [rec for rec in r.records(last_seq=r.last_seq + 1, include_control=True) if rec.rtype == 12]
    cp = checkpoints[0]
    inside = open_slice(journal, Selection(first_seq=2, last_seq=cp.seq + 10)).provenance()
    assert inside["chain_hash_seq"] == str(cp.seq) and inside["chain_hash"] == cp.payload[:32].hex()
    before = open_slice(journal, Selection(first_seq=2, last_seq=cp.seq - 5)).provenance()
    assert before["chain_hash"] == "" and before["chain_hash_seq"] == "0"


def test_a_streamed_build_that_fails_publishes_nothing_and_leaves_no_staging(day_journal, tmp_path, monkeypatch):
    from reports import orders
    from reports.run import STREAMERS

    def broken(src, ref, sink):
        for _ in orders.stream(src, ref, sink).tables:
            pass
        raise RuntimeError("builder failed after writing")
    monkeypatch.setitem(STREAMERS, "orders", broken)
    with pytest.raises(RuntimeError, match="builder failed"):
        run(["orders"], day_journal, tmp_path, refdata_dir=FIXTURE_REFDATA)
    assert list(tmp_path.iterdir()) == []


def test_row_groups_carry_min_max_of_numeric_and_time_columns_not_of_text(all_reports):
    file = next((all_reports / "orders" / "order_events").rglob("*.parquet"))
    md = pq.ParquetFile(file).metadata
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    rg = md.row_group(0)
    seq = rg.column(names.index("seq")).statistics
    assert seq.has_min_max and seq.min == pq.read_table(file)["seq"][0].as_py()
    assert rg.column(names.index("event_time_utc")).statistics.has_min_max
    assert not rg.column(names.index("order_id")).is_stats_set
    assert not rg.column(names.index("event_type")).is_stats_set


def test_a_text_file_that_cannot_be_written_fails_the_run_and_publishes_nothing(day_journal, tmp_path, monkeypatch):
    from reports import output

    def full_disk(self, rel, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(output.StreamWriter, "_write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run(["rts22"], day_journal, tmp_path, refdata_dir=FIXTURE_REFDATA)
    assert list(tmp_path.iterdir()) == []


def test_per_row_text_is_written_plain_and_codes_with_a_dictionary(tmp_path):
    """Text mostly distinct row to row gets no dictionary (it would only be hashed and dropped),
    repeated text does, integers are delta-encoded; the same rows give the same bytes."""
    n = 10_000
    table = pa.table({"seq": pa.array(range(n), pa.uint64()),
                      "reference": pa.array([f"TRN{i:020d}" for i in range(n)]),
                      "venue": pa.array(["XMMA", "XMMB"] * (n // 2))})
    options = output.writer_options(table)
    assert "reference" not in options["use_dictionary"] and "venue" in options["use_dictionary"]
    paths = []
    for name in ("a", "b"):
        pq.write_table(table, tmp_path / name, **options)
        paths.append(tmp_path / name)
    meta = pq.ParquetFile(paths[0]).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: set(meta.column(i).encodings) for i in range(meta.num_columns)}
    assert "RLE_DICTIONARY" in encodings["venue"] and "RLE_DICTIONARY" not in encodings["reference"]
    assert "DELTA_BINARY_PACKED" in encodings["seq"]
    assert paths[0].read_bytes() == paths[1].read_bytes()
