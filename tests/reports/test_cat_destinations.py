"""CAT route events name their destination as CAT does (JSON schema 4.1.0 r15): an exchange by its
CAT Exchange ID with destinationType E (mics.toml cat_destination), a broker-dealer or ATS by its
CRD:IMID with F (cat_member); never the MIC. A route to a venue with neither is rejected naming the
MIC and what is missing."""
import shutil

import pytest

from reports import refdata
from reports.errors import RefDataError
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order
from tests.reports.test_controls_cat import _submission_lines

ROUTES = ("MEOR", "MEMR", "MECR")


def _routed_day():
    """AAPL (XNGS) entered, replaced and cancelled; SPY (ARCX) entered."""
    b = accepted_order("A1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.replace("A1", "A2", 1_499_900, 150)
    b.advance(10_000); b.replaced("A1", "A2")
    b.advance(10_000); b.cancel("A2")
    b.advance(10_000); b.canceled("A2", 150)
    b.advance(10_000); b.enter("S1", 3, "S", 5_120_000, 100)
    return b


def _refdata(tmp_path, xngs_line: str | None):
    """The fixture reference data with XNGS's cat_destination line replaced by `xngs_line` (None:
    removed)."""
    ref = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, ref)
    text = (ref / "mics.toml").read_text()
    old = 'cat_destination = "NSDQ"   # a Nasdaq market tier: the same exchange\n'
    assert old in text
    (ref / "mics.toml").write_text(text.replace(old, f"{xngs_line}\n" if xngs_line else ""))
    return ref


def _cat(tmp_path, ref=FIXTURE_REFDATA):
    result = run(["cat"], _routed_day().write(tmp_path / "j"), tmp_path / "o", refdata_dir=ref)
    lines, _ = _submission_lines(tmp_path / "o")
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist() if result.rejected else []
    return result, read(tmp_path / "o", "cat", "order_events").to_pylist(), lines, rejects


def _destinations(events):
    return [(e["type"], e["orderID"], e["destination"], e["destinationType"]) for e in events
            if e["type"] in ROUTES]


def test_an_exchange_is_named_by_its_cat_exchange_id_not_its_mic(tmp_path):
    result, rows, lines, _ = _cat(tmp_path)
    assert result.rejected == 0
    wanted = [("MEOR", "A1", "NSDQ", "E"), ("MEMR", "A1", "NSDQ", "E"), ("MECR", "A2", "NSDQ", "E"),
              ("MEOR", "S1", "ARCA", "E")]
    assert _destinations(rows) == wanted
    assert _destinations(lines) == wanted
    assert all(r["destination"] is None and r["destinationType"] is None for r in rows if r["type"] not in ROUTES)


def test_a_broker_dealer_or_ats_is_named_by_its_crd_and_imid_with_type_f(tmp_path):
    ref = _refdata(tmp_path, 'cat_member = "7654:ABCD"\ncat_affiliate = false')
    result, rows, lines, _ = _cat(tmp_path, ref)
    assert result.rejected == 0
    wanted = [("MEOR", "A1", "7654:ABCD", "F"), ("MEMR", "A1", "7654:ABCD", "F"), ("MECR", "A2", "7654:ABCD", "F"),
              ("MEOR", "S1", "ARCA", "E")]
    assert _destinations(rows) == wanted and _destinations(lines) == wanted


def test_a_route_to_a_venue_without_a_cat_destination_is_rejected_naming_the_mic(tmp_path):
    ref = _refdata(tmp_path, None)
    result, rows, lines, rejects = _cat(tmp_path, ref)
    assert _destinations(rows) == [("MEOR", "S1", "ARCA", "E")] == _destinations(lines)
    assert [r["orderID"] for r in rows if r["type"] == "MENO"] == ["A1", "S1"]     # the order itself is kept
    # one reject per route event, with why: not again as merely lacking destination / destinationType
    assert [(r["field"], r["reason"][:8]) for r in rejects] == [("destination", "no MEOR:"), ("destination", "no MEMR:"),
                                                                ("destination", "no MECR:")]
    assert result.rejected == 3
    for reject in rejects:
        for said in ("AAPL", "MIC XNGS", "cat_destination", "cat_member", "mics.toml", "not the MIC"):
            assert said in reject["reason"], said


@pytest.mark.parametrize("line, message", [
    ('cat_destination = "XNAS"', "not a CAT Exchange ID"),                  # a MIC is not one
    ('cat_destination = "nsdq"', "not a CAT Exchange ID"),
    ('cat_destination = 5', "not a CAT Exchange ID"),
    ('cat_member = "ABCD"', "not CRD:IMID"),
    ('cat_member = "7654:ABCDEFGH"', "not CRD:IMID"),                     # an IMID has at most 7
    ('cat_member = "76A:ABCD"', "not CRD:IMID"),
    ('cat_destination = "NSDQ"\ncat_member = "7654:ABCD"', "not both"),
    ('cat_destination = "NSDQ"\ncat_reporter = false', "every exchange reports to CAT itself"),
])
def test_bad_cat_destinations_are_a_typed_error_naming_the_file(tmp_path, line, message):
    ref = _refdata(tmp_path, line)
    with pytest.raises(RefDataError) as info:
        refdata.load(ref)
    assert "mics.toml" in str(info.value) and message in str(info.value)


def test_bundled_reference_data_routes_us_exchanges_by_their_cat_exchange_ids():
    ref = refdata.load()
    assert {m: ref.cat_route(m) for m in ("XNAS", "XNGS", "XNYS", "ARCX", "XETR")} == {
        "XNAS": ("NSDQ", "E"), "XNGS": ("NSDQ", "E"), "XNYS": ("NYSE", "E"), "ARCX": ("ARCA", "E"), "XETR": None}
    assert all(ref.cat_route(i.mic) is not None for i in ref.instruments.values())    # the demo's routes
