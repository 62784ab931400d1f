"""Two journals of one trading day (two sessions, two engines) give CAT events and submission files
that never collide: firmROEID and the file group carry each journal's id, and firmROEID stays
within its 40 characters."""
import json

from journal import Reader
from reports import cat_json
from reports.run import run
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
        assert all(len(r["firmROEID"]) <= 40 for r in rows)
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
    assert all(f.startswith("123456_123456_20260302_MMAU") for f in files)
