"""Two journals of one trading day (two sessions, two engines) give CAT events and submission files
that never collide: firmROEID and the file group carry each journal's id, and firmROEID stays
within CAT's 64 characters (Text (64), CAT JSON schema 4.1.0 r15) whatever the sequence."""
import json

import numpy as np

from journal import Reader
from reports import cat, cat_json, events
from reports.refdata import load
from reports.run import run
from reports.source import Selection, open_slice
from reports.validate import split
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def test_two_sessions_of_one_day_share_no_firm_roe_id_and_no_file_name(tmp_path):
    ids, files, ours = [], [], []
    for name, hms, token in (("morning", (14, 30, 0), "AM1"), ("afternoon", (18, 0, 0), "PM1")):
        b = DayBuilder(start_hms=hms)
        b.session_start(); b.clock_sample()
        b.enter(token, 1, "B", 1_499_900, 100); b.advance(10_000); b.accept(token)
        (tmp_path / name).mkdir()
        journal = b.write(tmp_path / name / "j")
        with Reader(journal) as reader:
            ours.append(reader.journal_id)
        run(["cat"], journal, tmp_path / name / "o", refdata_dir=FIXTURE_REFDATA)
        rows = read(tmp_path / name / "o", "cat", "order_events").to_pylist()
        assert [r["seq"] for r in rows] == [3, 3]            # the same sequences in both journals
        assert all(r["firmROEID"] == f"20260302_{ours[-1][:12]}_3_{r['type']}" for r in rows)
        assert all(len(r["firmROEID"]) <= 64 for r in rows)
        ids += [r["firmROEID"] for r in rows]
        submission = sorted((tmp_path / name / "o" / "cat" / cat_json.DIRECTORY).iterdir())
        files += [p.name for p in submission]
        lines = [json.loads(x) for p in submission if not p.name.endswith(".meta.json") for x in p.read_text().splitlines()]
        assert sorted(x["firmROEID"] for x in lines) == sorted(r["firmROEID"] for r in rows)
        meta = json.loads(next(p for p in submission if p.name.endswith(".meta.json")).read_text())
        assert meta["fileGroup"] == "MMAU" + ours[-1][:12].upper() and meta["journal"]["journal_id"] == ours[-1]
    assert ours[0] != ours[1]
    assert len(set(ids)) == len(ids) == 4
    assert len(set(files)) == len(files) == 4
    assert all(f.startswith("123456_MMAU_20260302_MMAU") for f in files)


def test_a_firm_roe_id_past_40_characters_is_kept_up_to_cats_64(tmp_path):
    """A sequence of 19 digits makes a 46-character firmROEID: within CAT's 64, so kept (it was
    rejected when the limit was taken to be 40); the longest a journal sequence can make fits."""
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    b.enter("BIG", 1, "B", 1_499_900, 100); b.advance(10_000); b.accept("BIG")
    journal = b.write(tmp_path / "j")
    src = open_slice(journal, Selection())
    chunk = next(iter(events.collect_chunks(src, gather_joined=False)))
    shift = 10**18                                        # every sequence of the chunk, moved up as one
    chunk.cols["seq"] = chunk.cols["seq"] + np.uint64(shift)
    chunk.cols["creator_seq"] = chunk.cols["creator_seq"] + shift
    table, checks = cat.build_table(chunk, load(FIXTURE_REFDATA), "SESSION01", journal_id=src.journal_id)
    kept, rejected = split(table, cat.KIND, "order_events", checks)
    assert rejected.num_rows == 0
    ids = kept.column("firmROEID").to_pylist()
    assert ids == [f"20260302_{src.journal_id[:12]}_{shift + 3}_{t}" for t in ("MENO", "MEOR")]
    assert {len(i) for i in ids} == {46}
    assert cat.ROEID_MAX_LEN == 64 and cat.ROEID_LONGEST == len(f"20260302_{src.journal_id[:12]}_{2**64 - 1}_MEOT")
