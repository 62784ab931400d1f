"""CAT's trading day is the US Eastern date (with DST): `--date` selects the events of that Eastern
day, and the Parquet partition, the firmROEID date and the submission file names carry that same
day, never the UTC one."""
import datetime as dt
import json

import pytest

from reports import cat_json
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import cat_group, read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder

NS = 1_000_000_000


def _at(b: DayBuilder, when: dt.datetime) -> None:
    b.now = int(when.replace(tzinfo=dt.timezone.utc).timestamp()) * NS


@pytest.mark.parametrize("day, stamps, wanted", [
    # winter (EST, UTC-5): 03:00 UTC is the evening before in New York, 05:00 the next day's midnight
    (dt.date(2026, 3, 2), [(3, 2, 3, 0), (3, 2, 14, 30), (3, 3, 1, 30), (3, 3, 5, 0)], ["E2", "E3"]),
    # summer (EDT, UTC-4): 03:59 UTC is the evening before, 04:00 the day's midnight
    (dt.date(2026, 7, 1), [(7, 1, 3, 59), (7, 1, 4, 0), (7, 1, 23, 0), (7, 2, 3, 59)], ["E2", "E3", "E4"]),
])
def test_cat_date_selects_and_names_by_the_eastern_day(tmp_path, day, stamps, wanted):
    b = DayBuilder(day=day, start_hms=(0, 0, 0))
    b.session_start()
    b.clock_sample()
    for i, (month, mday, hour, minute) in enumerate(stamps, start=1):
        _at(b, dt.datetime(day.year, month, mday, hour, minute))
        b.enter(f"E{i}", 1, "B", 1_500_000, 100)
    journal = b.write(tmp_path / "j")
    run(["cat"], journal, tmp_path / "o", selection=Selection(trade_date=day), refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "cat", "order_events").to_pylist()
    assert sorted({r["orderID"] for r in rows}) == wanted
    ymd = day.strftime("%Y%m%d")
    assert {r["trade_date"] for r in rows} == {day.isoformat()}     # the hive partition
    assert all(r["eventTimestamp"].startswith(ymd) and r["firmROEID"].startswith(ymd) for r in rows)
    files = sorted(p.name for p in (tmp_path / "o" / "cat" / cat_json.DIRECTORY).iterdir())
    group = cat_group(journal)
    assert files == [f"123456_MMAU_{ymd}_{group}_OrderEvents_000001.json",
                     f"123456_MMAU_{ymd}_{group}_OrderEvents_000001.meta.json"]
    meta = json.loads((tmp_path / "o" / "cat" / cat_json.DIRECTORY / files[1]).read_text())
    assert meta["recordCount"] == len(rows) and meta["fileGenerationDate"] == int(ymd)
