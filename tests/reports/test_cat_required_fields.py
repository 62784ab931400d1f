"""The fields the CAT JSON schema for Tech Specs 4.1.0 r15 marks Required, carried from the firm's
facts (its own account, electronic and unsolicited orders, never negotiated, single-leg, routed to
an exchange or to an Industry Member mics.toml describes) or the row rejected with why where the
journal and reference data do not give them; and fields the schema does not define for an event
type left out. Read back from the Parquet (pyarrow) and the JSON submission files."""
import shutil

import pytest

from reports import refdata
from reports.errors import RefDataError
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order
from tests.reports.test_controls_cat import _built_meot, _cat_with_arca_off_cat, _submission_lines

FLAGS = ("electronicDupFlag", "solicitationFlag", "custDspIntrFlag", "affiliateFlag", "negotiatedTradeFlag",
         "representativeInd", "isoInd", "multiLegInd", "cancelQty", "leavesQty", "dupROIDCond")


def _cat(b, tmp_path, ref=FIXTURE_REFDATA):
    """(result, Parquet rows, JSON lines, rejects) of the CAT report of builder `b`."""
    result = run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=ref)
    lines, _ = _submission_lines(tmp_path / "o")
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist() if result.rejected else []
    return result, read(tmp_path / "o", "cat", "order_events").to_pylist(), lines, rejects


def _day():
    """R1 entered, replaced by R2 (the venue's Replaced), R2 partly filled and cancelled; M1 entered
    and modified (the venue's Order Modified)."""
    b = accepted_order("R1", 1, "S", 1_500_000, 500)
    b.advance(10_000); b.replace("R1", "R2", 1_499_900, 400)
    b.advance(10_000); b.replaced("R1", "R2")
    b.advance(10_000); b.execute("R2", 100)
    b.advance(10_000); b.cancel("R2")
    b.advance(10_000); b.canceled("R2", 300)
    b.advance(10_000); b.enter("M1", 1, "S", 1_500_100, 300)
    b.advance(10_000); b.accept("M1")
    b.advance(10_000); b.modify("M1", "T", 200)
    b.advance(10_000); b.modified("M1", "T", 200)
    return b


def _fields(rows):
    """(type, the FLAGS fields present) per event, absent (JSON) and null (Parquet) alike left out."""
    return [(r["type"], {k: r[k] for k in FLAGS if r.get(k) is not None}) for r in rows]


MENO = ("MENO", {"electronicDupFlag": False, "solicitationFlag": False, "custDspIntrFlag": False,
                 "affiliateFlag": False, "negotiatedTradeFlag": False, "representativeInd": "N"})
MEOR = ("MEOR", {"electronicDupFlag": False, "affiliateFlag": False, "isoInd": "NA", "multiLegInd": False,
                 "dupROIDCond": False})


def _memr(same_routed_id: bool):            # a Modify keeps the routedOrderID, a Replace gets a new one
    return "MEMR", {"affiliateFlag": False, "isoInd": "NA", "multiLegInd": False, "dupROIDCond": same_routed_id}


def _meom(leaves: int):                     # what the venue leaves open after its Replaced / Order Modified
    return "MEOM", {"electronicDupFlag": False, "custDspIntrFlag": False, "representativeInd": "N", "isoInd": "NA",
                    "leavesQty": leaves}


WANTED = [MENO, MEOR, _memr(False), _meom(400),              # R1, its Replace and the venue's Replaced
          ("MECR", {"multiLegInd": False, "cancelQty": 300}),    # 400 less 100 filled: 300 open, all cancelled
          ("MEOC", {"cancelQty": 300, "leavesQty": 0}),
          MENO, MEOR, _memr(True), _meom(200)]               # M1, its Modify and the venue's Order Modified


def test_each_event_type_carries_its_required_fields_from_the_firms_facts(tmp_path):
    result, rows, lines, _ = _cat(_day(), tmp_path)
    assert result.rejected == 0
    assert _fields(rows) == WANTED
    assert _fields(lines) == WANTED


def test_fields_the_schema_does_not_define_for_an_event_type_are_left_out(tmp_path):
    """electronicDupFlag is a field of MENO, MEOR and MEOM only; an MECR has no leavesQty, and
    affiliateFlag and isoInd are not MECR fields."""
    _, rows, lines, _ = _cat(_day(), tmp_path)
    for events in (rows, lines):
        for e in events:
            if e["type"] in ("MEMR", "MECR", "MEOC"):
                assert e.get("electronicDupFlag") is None, e["type"]
            if e["type"] == "MECR":
                assert e.get("leavesQty") is None and e.get("affiliateFlag") is None and e.get("isoInd") is None
    for line in lines:
        if line["type"] in ("MEMR", "MECR", "MEOC"):
            assert "electronicDupFlag" not in line
        if line["type"] == "MECR":
            assert not {"leavesQty", "affiliateFlag", "isoInd", "side", "quantity"} & set(line)


def test_mecr_cancel_qty_is_the_open_quantity_less_what_the_cancel_leaves(tmp_path):
    """A partial Cancel takes off the open quantity (venue-confirmed when it was sent) less the size
    it asks to leave; a full one the whole open quantity."""
    b = accepted_order("P1", 1, "B", 1_500_000, 500)
    b.advance(10_000); b.execute("P1", 100)                 # 400 open
    b.advance(10_000); b.cancel("P1", new_qty=150)          # takes off 250
    b.advance(10_000); b.canceled("P1", 250)
    b.advance(10_000); b.cancel("P1")                       # takes off the 150 left
    b.advance(10_000); b.canceled("P1", 150)
    result, rows, lines, _ = _cat(b, tmp_path)
    assert result.rejected == 0
    for events in (rows, lines):
        assert [(e["type"], e["cancelQty"], e.get("leavesQty")) for e in events if e["type"] in ("MECR", "MEOC")] \
            == [("MECR", 250, None), ("MEOC", 250, 150), ("MECR", 150, None), ("MEOC", 150, 0)]


def test_an_mecr_whose_open_quantity_is_not_known_is_rejected_not_guessed(tmp_path):
    """A Cancel asking to leave more than is open: what it takes off is not known, so its MECR is
    rejected, once, with why. A Cancel of an order the venue has not accepted yet (pending new)
    takes off the whole quantity the firm sent."""
    b = accepted_order("K1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.execute("K1", 150)                 # 50 open
    b.advance(10_000); b.cancel("K1", new_qty=100)          # asks to leave 100 of 50
    b.advance(10_000); b.enter("K2", 1, "B", 1_499_900, 300)
    b.advance(10_000); b.cancel("K2")                       # before any answer of the venue
    result, rows, lines, rejects = _cat(b, tmp_path)
    for events in (rows, lines):
        assert [(e["orderID"], e["cancelQty"]) for e in events if e["type"] == "MECR"] == [("K2", 300)]
    assert [(r["field"], r["reason"][:8]) for r in rejects] == [("cancelQty", "no MECR:")]
    assert "asks to leave 100 shares of an order with 50 open" in rejects[0]["reason"]
    assert "none is guessed" in rejects[0]["reason"]
    assert result.rejected == 1
    assert [e["type"] for e in lines] == ["MENO", "MEOR", "MENO", "MEOR", "MECR"]


def test_an_mecr_and_meoc_after_the_venue_modified_the_order_follow_its_open_shares(tmp_path, monkeypatch):
    """The remaining quantity follows a venue's Order Modified (it restates the open shares): 300
    accepted, 50 executed, modified to 200 open, then cancelled whole: the MECR takes off 200 and
    the MEOC leaves 0 (not 50, what 300 less the executed 50 and the cancelled 200 would give), in
    one chunk of the journal or with the Modified and the Cancel apart."""
    from reports import events
    b = accepted_order("M1", 1, "S", 1_500_000, 300)
    b.advance(10_000); b.execute("M1", 50)
    b.advance(10_000); b.modify("M1", "T", 200)
    b.advance(10_000); b.modified("M1", "T", 200)
    b.advance(10_000); b.cancel("M1")
    b.advance(10_000); b.canceled("M1", 200)
    journal = b.write(tmp_path / "j")
    for chunk in (None, 4):
        if chunk:
            monkeypatch.setattr(events, "CHUNK_SEQS", chunk)
        out = tmp_path / str(chunk)
        result = run(["cat"], journal, out, refdata_dir=FIXTURE_REFDATA)
        assert result.rejected == 0
        lines = _submission_lines(out)[0]
        assert [(e["type"], e.get("cancelQty"), e.get("leavesQty")) for e in lines if e["type"] in
                ("MEOM", "MECR", "MEOC")] == [("MEOM", None, 200), ("MECR", 200, None), ("MEOC", 200, 0)]


def test_a_routed_order_id_used_before_the_same_day_is_a_duplicate_and_not_the_next_day(tmp_path):
    """dupROIDCond of an MEOR (and a Replace's MEMR) is true when an earlier order of the journal was
    routed with the same token on the same Eastern day; a token reused on a later day is none."""
    b = accepted_order("D1", 1, "B", 1_500_000, 100)
    b.advance(10_000); b.cancel("D1")
    b.advance(10_000); b.canceled("D1", 100)
    b.advance(10_000); b.enter("D1", 1, "B", 1_500_000, 100)           # the same token again that day
    b.advance(10_000); b.accept("D1")
    b.advance(10_000); b.replace("D1", "D2", 1_499_900, 100)
    b.advance(86_400 * 10**9); b.enter("D1", 1, "B", 1_500_000, 100)   # and the next day
    result, rows, lines, _ = _cat(b, tmp_path)
    for events in (rows, lines):
        assert [(e["type"], e["routedOrderID"], e["dupROIDCond"]) for e in events if e["type"] in ("MEOR", "MEMR")] \
            == [("MEOR", "D1", False), ("MEOR", "D1", True), ("MEMR", "D2", False), ("MEOR", "D1", False)]


def test_an_intermarket_sweep_order_gets_no_iso_code_guessed(tmp_path):
    """An Enter or Replace sent ISO eligible ('Y') has no isoInd: its MEOR / MEMR (and the venue's
    MEOM of the replacement) are rejected; 'N' (the engine's) is NA."""
    b = accepted_order("N1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.replace("N1", "I1", 1_500_100, 200, iso="Y")
    b.advance(10_000); b.replaced("N1", "I1")
    b.advance(10_000); b.enter("I2", 1, "B", 1_500_000, 100, iso="Y")
    result, rows, lines, rejects = _cat(b, tmp_path)
    assert [(e["type"], e["orderID"], e.get("isoInd")) for e in lines] == \
        [("MENO", "N1", None), ("MEOR", "N1", "NA"), ("MENO", "I2", None)]
    assert [(e["type"], e["orderID"]) for e in rows] == [(e["type"], e["orderID"]) for e in lines]
    assert sorted((r["field"], r["seq"]) for r in rejects) == [("isoInd", 5), ("isoInd", 6), ("isoInd", 7)]
    assert all("ISOD and ISOI" in r["reason"] and "none is guessed" in r["reason"] for r in rejects)
    assert result.rejected == 3


def _refdata(tmp_path, files: dict[str, tuple[str, str]]):
    """The fixture reference data with, per file, one text replaced by another."""
    ref = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, ref)
    for name, (old, new) in files.items():
        text = (ref / name).read_text()
        assert old in text
        (ref / name).write_text(text.replace(old, new))
    return ref


XNGS = 'cat_destination = "NSDQ"   # a Nasdaq market tier: the same exchange\n'


@pytest.mark.parametrize("affiliate", [True, False])
def test_a_route_to_an_industry_member_carries_the_firms_cat_affiliate(tmp_path, affiliate):
    ref = _refdata(tmp_path, {"mics.toml": (XNGS, f'cat_member = "7654:ABCD"\ncat_affiliate = {str(affiliate).lower()}\n')})
    result, rows, lines, _ = _cat(_day(), tmp_path, ref)
    assert result.rejected == 0
    for events in (rows, lines):
        assert [(e["type"], e.get("affiliateFlag")) for e in events if e["type"] in ("MEOR", "MEMR", "MECR")] == \
            [("MEOR", affiliate), ("MEMR", affiliate), ("MECR", None), ("MEOR", affiliate), ("MEMR", affiliate)]
        assert [e.get("affiliateFlag") for e in events if e["type"] == "MENO"] == [False, False]   # the account's


def test_a_route_to_an_industry_member_that_does_not_say_cat_affiliate_is_rejected(tmp_path):
    ref = _refdata(tmp_path, {"mics.toml": (XNGS, 'cat_member = "7654:ABCD"\n')})
    result, rows, lines, rejects = _cat(_day(), tmp_path, ref)
    # MECR has no affiliateFlag
    assert [e["type"] for e in lines] == ["MENO", "MEOM", "MECR", "MEOC", "MENO", "MEOM"]
    assert [e["type"] for e in rows] == [e["type"] for e in lines]
    assert [(r["field"], r["reason"][:8]) for r in rejects] == \
        [("affiliateFlag", "no MEOR:"), ("affiliateFlag", "no MEMR:"), ("affiliateFlag", "no MEOR:"),
         ("affiliateFlag", "no MEMR:")]
    for said in ("MIC XNGS", "cat_member 7654:ABCD", "cat_affiliate", "none is guessed"):
        assert all(said in r["reason"] for r in rejects), said
    assert result.rejected == 4


@pytest.mark.parametrize("line, message", [
    ('cat_destination = "NSDQ"\ncat_affiliate = false', "is for a 'cat_member' venue"),
    ('cat_member = "7654:ABCD"\ncat_affiliate = "no"', "must be true or false"),
])
def test_bad_cat_affiliate_is_a_typed_error_naming_the_file(tmp_path, line, message):
    ref = _refdata(tmp_path, {"mics.toml": (XNGS, line + "\n")})
    with pytest.raises(RefDataError) as info:
        refdata.load(ref)
    assert "mics.toml" in str(info.value) and message in str(info.value)


CLIENT_FACTS = "cat_affiliate = false\ncat_display_instruction = false\n"


def _client_day():
    """An order of client 7 entered, replaced and cancelled."""
    b = accepted_order("F1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.enter("C1", 1, "B", 1_499_900, 100, client=7, algo=2)
    b.advance(10_000); b.accept("C1")
    b.advance(10_000); b.replace("C1", "C2", 1_499_800, 100)
    b.advance(10_000); b.replaced("C1", "C2")
    return b


def test_a_client_orders_account_fields_are_what_parties_toml_states(tmp_path):
    ref = _refdata(tmp_path, {"parties.toml": (CLIENT_FACTS, "cat_affiliate = true\ncat_display_instruction = true\n")})
    result, rows, lines, _ = _cat(_client_day(), tmp_path, ref)
    assert result.rejected == 0
    for events in (rows, lines):
        got = [(e["type"], e["orderID"], e.get("accountHolderType"), e.get("affiliateFlag"), e.get("custDspIntrFlag"))
               for e in events if e["type"] in ("MENO", "MEOM")]
        assert got == [("MENO", "F1", "P", False, False), ("MENO", "C1", "I", True, True),
                       ("MEOM", "C2", None, None, True)]


def test_a_client_order_whose_cat_facts_are_not_stated_is_rejected(tmp_path):
    """Whether a client is the firm's affiliate, and whether it instructs its orders not be
    displayed, are not the firm's own account's answers: without them in parties.toml its MENO and
    MEOM are rejected, once each, with why; its routes (the destination's) are kept."""
    ref = _refdata(tmp_path, {"parties.toml": (CLIENT_FACTS, "")})
    result, rows, lines, rejects = _cat(_client_day(), tmp_path, ref)
    assert [(e["type"], e["orderID"]) for e in lines] == \
        [("MENO", "F1"), ("MEOR", "F1"), ("MEOR", "C1"), ("MEMR", "C1")]
    assert [(e["type"], e["orderID"]) for e in rows] == [(e["type"], e["orderID"]) for e in lines]
    assert [(r["field"], r["reason"][:8]) for r in rejects] == [("custDspIntrFlag", "no MENO:"),
                                                                ("custDspIntrFlag", "no MEOM:")]
    assert "cat_affiliate (affiliateFlag" in rejects[0]["reason"] and "cat_display_instruction" in rejects[0]["reason"]
    assert "cat_affiliate" not in rejects[1]["reason"] and "cat_display_instruction" in rejects[1]["reason"]
    assert all("client 7 (LEI 5493001KJTIIGC8Y1R12)" in r["reason"] for r in rejects)
    assert result.rejected == 2


@pytest.mark.parametrize("line, message", [
    ('cat_affiliate = "no"\n', "must be true or false"),
    ('cat_display_instruction = 0\n', "must be true or false"),
])
def test_bad_client_cat_facts_are_a_typed_error(tmp_path, line, message):
    ref = _refdata(tmp_path, {"parties.toml": (CLIENT_FACTS, line)})
    with pytest.raises(RefDataError, match=message):
        refdata.load(ref)


def test_the_firms_own_account_takes_no_client_cat_facts(tmp_path):
    ref = _refdata(tmp_path, {"parties.toml": ('id = 0\nkind = "OWN"\n', 'id = 0\nkind = "OWN"\ncat_affiliate = true\n')})
    with pytest.raises(RefDataError, match="not the firm's own account"):
        refdata.load(ref)


def test_a_meot_is_single_leg(day_journal, tmp_path):
    """multiLegInd is false on every MEOT built (still rejected for its other reasons), and in the
    JSON line it would give."""
    from reports import cat_json
    _cat_with_arca_off_cat(day_journal, tmp_path)
    rows = _built_meot(day_journal, tmp_path / "ref")
    assert len(rows) == 2 and {r["multiLegInd"] for r in rows} == {False}
    import pyarrow as pa
    line = cat_json.lines(pa.Table.from_pylist(rows))[0].as_py()
    assert '"multiLegInd":false' in line


DESK = 'code = "EQMM"'


@pytest.mark.parametrize("desk_code, kept", [("D" * 35, True), ("D" * 36, False)])
def test_a_firm_designated_id_longer_than_cat_takes_is_rejected_not_truncated(tmp_path, desk_code, kept):
    """firmDesignatedID is Text (40) in the CAT JSON schema 4.1.0 r15: PROP- and a desk code of 35
    characters is reported whole; one of 36 gets its MENO rejected with why, the rest of the order's
    events kept."""
    ref = _refdata(tmp_path, {"parties.toml": (DESK, f'code = "{desk_code}"')})
    result, rows, lines, rejects = _cat(_day(), tmp_path, ref)
    fdid = "PROP-" + desk_code
    for events in (rows, lines):
        assert [e["type"] for e in events] == [t for t, _ in WANTED if kept or t != "MENO"]
        assert [e["firmDesignatedID"] for e in events if e["type"] == "MENO"] == [fdid, fdid] * kept
    assert result.rejected == 2 * (not kept)
    assert [(r["field"], r["reason"][:8]) for r in rejects] == [("firmDesignatedID", "no MENO:")] * 2 * (not kept)
    assert all(f"{fdid!r} has 41 characters" in r["reason"] and "Text (40)" in r["reason"] for r in rejects)


def test_a_client_whose_code_is_longer_than_cat_takes_gets_no_meno(tmp_path):
    """A client's firmDesignatedID is its code (a NATIONAL_ID has no set length): over 40
    characters its MENO is rejected, its routes kept."""
    lei = 'code = "5493001KJTIIGC8Y1R12"\nkind = "LEI"'
    ref = _refdata(tmp_path, {"parties.toml": (lei, f'code = "{"X" * 41}"\nkind = "NATIONAL_ID"')})
    result, rows, lines, rejects = _cat(_client_day(), tmp_path, ref)
    for events in (rows, lines):
        assert [(e["type"], e["orderID"]) for e in events] == \
            [("MENO", "F1"), ("MEOR", "F1"), ("MEOR", "C1"), ("MEMR", "C1"), ("MEOM", "C2")]
    assert [(r["field"], r["seq"]) for r in rejects] == [("firmDesignatedID", 5)]
    assert result.rejected == 1
