"""CAT JSON submission files: one event per line with CAT field names, CAT file naming and a
metadata file, the same events as the Parquet, required fields enforced, identical on rerun."""
import json
import re
import shutil

import pyarrow.compute as pc
import pytest

from reports import cat_json
from reports.cat import CAT_TYPES, COMMON_REQUIRED, REQUIRED
from reports.run import run
from tests.reports.conftest import cat_group, read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def _submission(out):
    return sorted((out / "cat" / cat_json.DIRECTORY).iterdir())


def test_json_lines_match_the_parquet_rows(all_reports, day_journal):
    files = _submission(all_reports)
    data = [f for f in files if not f.name.endswith(".meta.json")]
    assert [f.name for f in data] == [f"123456_MMAU_20260302_{cat_group(day_journal)}_OrderEvents_000001.json"]
    events = [json.loads(line) for line in data[0].read_text().splitlines()]
    rows = read(all_reports, "cat", "order_events").to_pylist()
    assert len(events) == len(rows)
    for event, row in zip(events, sorted(rows, key=lambda r: (r["seq"], CAT_TYPES.index(r["type"])))):
        assert event["type"] == row["type"] and event["firmROEID"] == row["firmROEID"]
        assert event["eventTimestamp"] == row["eventTimestamp"] and event["orderID"] == row["orderID"]
        for name in COMMON_REQUIRED + REQUIRED[row["type"]]:
            assert name in event, (row["type"], name)
        if row["price"] is not None:
            assert event["price"] == float(row["price"])
        assert all(row[name] is not None for name in event), row["type"]
    meno = next(e for e in events if e["type"] == "MENO" and e["orderID"] == "Q1")
    assert meno["timeInForce"] == {"DAY": 20260302} and meno["quantity"] == 300 and meno["manualFlag"] is False
    assert "priorOrderID" not in meno                       # null fields are left out of the line
    # CAT JSON schema 4.1.0 r15: timeInForce DAY a Date (8-digit number), IOC a Boolean
    ioc = next(e for e in events if e["type"] == "MENO" and e["orderID"] == "Q4")
    assert ioc["timeInForce"] == {"IOC": True}
    # "YYYYMMDD HHMMSS.CCCNNNNNN", as a public CAT validator's pattern takes it
    validator = re.compile(r"^\d{8}[\s|T]\d{6}(.\d{3}(\d{6}){0,1}){0,1}$")
    assert all(re.fullmatch(r"\d{8} \d{6}\.\d{9}", e["eventTimestamp"]) and validator.match(e["eventTimestamp"])
               for e in events)
    meta = json.loads(next(f for f in files if f.name.endswith(".meta.json")).read_text())
    assert meta["recordCount"] == len(events) and meta["fileName"] == data[0].name
    assert meta["fileGenerationDate"] == 20260302 and meta["reporterIMID"] == "MMAU"


def test_the_reporter_imid_is_the_file_names_second_field_and_every_events(all_reports):
    """Tech Specs 4.0.0-r18: an event's CATReporterIMID "must equal the CATReporterIMID in the
    filename"; the IMID alone (CAT JSON schema: at most 7 characters), where senderIMID is CRD:IMID.
    Without cat_submitter_id the submitter is the CRD, and the metadata says it is assumed."""
    files = _submission(all_reports)
    data = next(f for f in files if not f.name.endswith(".meta.json"))
    submitter, reporter, date, *_ = data.name.split("_")
    assert (submitter, reporter, date) == ("123456", "MMAU", "20260302")
    events = [json.loads(line) for line in data.read_text().splitlines()]
    assert {e["CATReporterIMID"] for e in events} == {reporter}
    assert {e["senderIMID"] for e in events if "senderIMID" in e} == {"123456:MMAU"}
    rows = read(all_reports, "cat", "order_events")
    assert set(rows.column("CATReporterIMID").cast("string").to_pylist()) == {"MMAU"}
    meta = json.loads(next(f for f in files if f.name.endswith(".meta.json")).read_text())
    assert (meta["submitter"], meta["reporterIMID"], meta["reporterCRD"]) == ("123456", reporter, "123456")
    assert meta["submitterSource"] == cat_json.SUBMITTER_ASSUMED and "assumed" in meta["submitterSource"]


def _firm_with(tmp_path, line):
    ref = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, ref)
    text = (ref / "firm.toml").read_text()
    (ref / "firm.toml").write_text(text.replace("[firm]\n", f"[firm]\n{line}\n", 1))
    return ref


def test_a_configured_cat_submitter_id_leads_the_file_names(day_journal, tmp_path):
    ref = _firm_with(tmp_path, 'cat_submitter_id = "93005"')
    run(["cat"], day_journal, tmp_path / "o", refdata_dir=ref)
    files = _submission(tmp_path / "o")
    assert files and all(f.name.startswith(f"93005_MMAU_20260302_{cat_group(day_journal)}_OrderEvents_")
                         for f in files)
    meta = json.loads(next(f for f in files if f.name.endswith(".meta.json")).read_text())
    assert (meta["submitter"], meta["submitterSource"], meta["reporterCRD"]) == \
        ("93005", cat_json.SUBMITTER_GIVEN, "123456")


@pytest.mark.parametrize("line, message", [
    ('cat_submitter_id = "93_005"', "[firm].cat_submitter_id"),     # the file name's field separator
    ('cat_submitter_id = ""', "[firm].cat_submitter_id"),
    ("cat_submitter_id = 93005", "'cat_submitter_id' must be str"),
])
def test_a_bad_cat_submitter_id_is_a_typed_error(tmp_path, line, message):
    from reports import refdata
    from reports.errors import RefDataError
    with pytest.raises(RefDataError) as info:
        refdata.load(_firm_with(tmp_path, line))
    assert "firm.toml" in str(info.value) and message in str(info.value)


def test_submission_files_roll_over_and_are_identical_on_rerun(day_journal, tmp_path, monkeypatch):
    monkeypatch.setattr(cat_json, "MAX_EVENTS_PER_FILE", 5)
    for out in ("a", "b"):
        run(["cat"], day_journal, tmp_path / out, refdata_dir=FIXTURE_REFDATA)
    a, b = _submission(tmp_path / "a"), _submission(tmp_path / "b")
    assert [f.name for f in a] == [f.name for f in b] and len(a) > 2
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
    counts = [json.loads(f.read_text())["recordCount"] for f in a if f.name.endswith(".meta.json")]
    assert all(c <= 5 for c in counts) and sum(counts) == read(tmp_path / "a", "cat", "order_events").num_rows
    manifest = json.loads((tmp_path / "a" / "cat" / "_manifest.json").read_text())
    assert {f"{cat_json.DIRECTORY}/{f.name}" for f in a} <= {f["path"] for f in manifest["files"]}


def test_route_without_venue_session_is_rejected_not_submitted(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    b.enter("R1", 1, "B", 1_500_000, 100)
    b.accept("R1")
    journal = b.write(tmp_path / "j")               # no SESSION_START: the route has no session
    result = run(["cat"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    assert result.rejected == 1
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    assert [(r["field"], r["reason"]) for r in rejects] == [("session", "MEOR requires session")]
    kept = read(tmp_path / "o", "cat", "order_events")
    assert kept.filter(pc.equal(kept["type"].cast("string"), "MEOR")).num_rows == 0
    lines = [json.loads(line) for f in _submission(tmp_path / "o") if not f.name.endswith(".meta.json")
             for line in f.read_text().splitlines()]
    assert [e["type"] for e in lines] == ["MENO"]


def test_lines_of_constant_and_varying_columns_escape_and_parse_back():
    import pyarrow as pa
    from reports import arrowcols as ac
    n = 4
    columns = {name: pa.nulls(n, pa.string()) for name in cat_json.ORDER}
    columns.update({
        "type": ac.codes([0, 0, 1, 0], ["MENO", "MEOC"]),
        "actionType": ac.codes([0] * n, ['N"E\\W']),                    # the same on every row, escaped
        "orderID": pa.array(['a"1', "b\\2", "c3", "d4"]),
        "side": ac.codes([0, 1, 0, 0], ["B", 'S"L']),
        "manualFlag": pa.array([False] * n), "electronicDupFlag": pa.array([False, True, False, False]),
        "quantity": pa.array([100, None, 300, 400], pa.int64()),
        "timeInForce": pa.array(["DAY=20260302", None, "IOC", "DAY=20260302"]),
    })
    table = pa.table({name: columns[name] for name in ("type",) + cat_json.ORDER})
    events = [json.loads(line) for line in cat_json.lines(table).to_pylist()]
    assert [e["type"] for e in events] == ["MENO", "MENO", "MEOC", "MENO"]
    assert all(e["actionType"] == 'N"E\\W' for e in events)
    assert [e["orderID"] for e in events] == ['a"1', "b\\2", "c3", "d4"]
    assert [e["side"] for e in events] == ["B", 'S"L', "B", "B"]
    assert [e["electronicDupFlag"] for e in events] == [False, True, False, False]
    assert ["quantity" in e for e in events] == [True, False, True, True]
    assert events[0]["timeInForce"] == {"DAY": 20260302} and events[2]["timeInForce"] == {"IOC": True}
    one = cat_json.lines(table.slice(2, 1)).to_pylist()
    assert len(one) == 1 and json.loads(one[0])["type"] == "MEOC"


def test_control_characters_are_escaped_so_each_event_stays_one_parseable_line():
    import pyarrow as pa
    from reports import arrowcols as ac
    n = 3
    odd = ["tab\there", "new\nline\r", "nul\x00bell\x07\x1f"]
    columns = {name: pa.nulls(n, pa.string()) for name in cat_json.ORDER}
    columns.update({
        "type": ac.codes([0] * n, ["MENO"]),
        "actionType": ac.codes([0] * n, ["N\tEW"]),                  # constant column, escaped too
        "orderID": pa.array(odd),
        "firmDesignatedID": ac.codes([0, 1, 0], ['q"\\', "x\x1by"]),
        "manualFlag": pa.array([False] * n), "electronicDupFlag": pa.array([False] * n),
    })
    table = pa.table({name: columns[name] for name in ("type",) + cat_json.ORDER})
    text = "".join(cat_json.lines(table).to_pylist())
    assert text.count("\n") == n and all(ord(c) >= 0x20 for c in text.replace("\n", ""))
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["orderID"] for e in events] == odd
    assert [e["firmDesignatedID"] for e in events] == ['q"\\', "x\x1by", 'q"\\']
    assert all(e["actionType"] == "N\tEW" for e in events)


def test_execution_on_an_unknown_instrument_is_rejected_not_dropped(tmp_path):
    b = DayBuilder()
    b.session_start()
    b.clock_sample()
    b.enter("U1", 99, "B", 1_500_000, 100)          # symbol 99: not in the instrument reference data
    b.accept("U1")
    b.execute("U1", 40)
    journal = b.write(tmp_path / "j")
    result = run(["cat"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    symbol_rejects = [r for r in rejects if r["field"] == "symbol_id"]
    # MENO, MEOR and the execution: not one of the order's events leaves the report unaccounted
    assert sorted(r["seq"] for r in symbol_rejects) == [3, 3, 5]      # MENO, MEOR; the execution
    assert "MEOT requires symbol" in {r["reason"] for r in rejects}
    assert result.rejected == len(rejects)
    assert {r["reason"] for r in symbol_rejects} == {"symbol_id 99 not in instrument reference data"}
    assert result.results[0].rows == {"order_events": 0}
