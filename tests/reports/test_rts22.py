import re

import pyarrow.compute as pc

from reports import auth016
from reports.rts22 import COLUMNS, FIELDS
from tests.reports.conftest import read

DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def test_all_65_fields_are_columns(all_reports):
    t = read(all_reports, "rts22", "transactions")
    assert len(FIELDS) == 65 and [n for n, _ in FIELDS] == list(range(1, 66))
    for num in range(1, 66):
        assert COLUMNS[num] in t.column_names, num
    for num in (9, 10, 11, 13, 26, 32, 35, 38, 47, 50, 51, 53, 54, 55):
        assert t[COLUMNS[num]].null_count == t.num_rows          # not applicable: null


def test_one_row_per_execution_with_rts22_formats(all_reports, day):
    t = read(all_reports, "rts22", "transactions").to_pylist()
    assert len(t) == len(day.ledger.fills)
    by_tvtic = {r[COLUMNS[3]]: r for r in t}
    for token, symbol_id, side, qty, price, match in day.ledger.fills:
        r = by_tvtic[str(match)]
        assert r[COLUMNS[30]] == str(qty)
        assert r[COLUMNS[33]] == f"{price // 10_000}.{price % 10_000:04d}"
        assert DATETIME.fullmatch(r[COLUMNS[28]])
        assert r[COLUMNS[1]] == "NEWT" and r[COLUMNS[29]] == "DEAL"
        assert re.fullmatch(r"[A-Z0-9]{1,52}", r[COLUMNS[2]])
        firm = r[COLUMNS[4]]
        if side == "B":
            assert r[COLUMNS[7]] == firm and r[COLUMNS[16]] == r[COLUMNS[36]]
        else:
            assert r[COLUMNS[16]] == firm and r[COLUMNS[7]] == r[COLUMNS[36]]
    short = {r[COLUMNS[3]]: r[COLUMNS[62]] for r in t}
    shorts = [short[str(f[5])] for f in day.ledger.fills if f[0] == "Q4"]
    assert shorts == ["SESH"]
    assert {short[str(f[5])] for f in day.ledger.fills if f[2] == "B"} == {None}


def test_fields_42_to_56_only_for_instruments_outside_firds(all_reports):
    t = read(all_reports, "rts22", "transactions")
    spy = t.filter(pc.equal(t[COLUMNS[41]], "US78462F1030")).to_pylist()[0]
    aapl = t.filter(pc.equal(t[COLUMNS[41]], "US0378331005")).to_pylist()[0]
    assert spy[COLUMNS[43]] == "CEOGEU" and spy[COLUMNS[42]].startswith("SPDR")
    assert aapl[COLUMNS[42]] is None and aapl[COLUMNS[43]] is None


def test_auth016_xml_carries_the_same_rows(all_reports):
    rows = read(all_reports, "rts22", "transactions").to_pylist()
    xml = (all_reports / "rts22" / "auth016" / "trade_date=2026-03-02" / "auth016.xml").read_bytes()
    news = auth016.parse_transactions(xml)
    ns = {"a": auth016.NS_AUTH16}
    assert len(news) == len(rows)
    for el, row in zip(news, sorted(rows, key=lambda r: r["seq"])):
        assert el.findtext("a:TxId", namespaces=ns) == row[COLUMNS[2]]
        assert el.findtext("a:Tx/a:Qty/a:Unit", namespaces=ns) == row[COLUMNS[30]]
        amt = el.find("a:Tx/a:Pric/a:Pric/a:MntryVal/a:Amt", ns)
        assert amt.text == row[COLUMNS[33]] and amt.get("Ccy") == row[COLUMNS[34]]
        assert el.findtext("a:Tx/a:TradDt", namespaces=ns) == row[COLUMNS[28]]
        assert el.findtext("a:Tx/a:TradVn", namespaces=ns) == row[COLUMNS[36]]
        assert el.findtext("a:ExctgPrsn/a:Algo", namespaces=ns) == row[COLUMNS[59]]
    assert b"<MsgDefIdr>auth.016.001.01</MsgDefIdr>" in xml


def test_auth016_xml_has_no_whitespace_between_elements_and_one_line_per_transaction(all_reports):
    import xml.etree.ElementTree as ET
    xml = (all_reports / "rts22" / "auth016" / "trade_date=2026-03-02" / "auth016.xml").read_bytes()
    lines = xml.split(b"\n")
    assert lines[0].startswith(b"<?xml") and lines[1].startswith(b"<BizData") and lines[-1] == b""
    assert lines[-2] == b"</FinInstrmRptgTxRpt></Document></Pyld></BizData>"
    txs = lines[2:-2]
    assert txs and all(t.startswith(b"<Tx><New>") and t.endswith(b"</New></Tx>") for t in txs)
    assert len(txs) == len(auth016.parse_transactions(xml))
    root = ET.fromstring(xml)
    report = root.find(f".//{{{auth016.NS_AUTH16}}}FinInstrmRptgTxRpt")
    blank = [(el, kind, getattr(el, kind)) for el in root.iter() for kind in ("text", "tail")
             if getattr(el, kind) is not None and not getattr(el, kind).strip()]
    # the only whitespace: the line breaks before the first <Tx> and after each <Tx>
    assert [(el, kind, text) for el, kind, text in blank] == \
        [(report, "text", "\n")] + [(tx, "tail", "\n") for tx in report]


def test_auth016_values_the_same_on_every_row_are_escaped_and_absent_elements_left_out():
    import pyarrow as pa
    import xml.etree.ElementTree as ET
    from reports.rts22 import BOOLEAN_FIELDS, COLUMNS, FIELDS
    n = 3
    cols = {COLUMNS[num]: pa.nulls(n, pa.bool_() if num in BOOLEAN_FIELDS else pa.string()) for num, _ in FIELDS}
    cols.update({COLUMNS[2]: pa.array(["T1", "T2", "T3"]), COLUMNS[4]: pa.array(["A&B<C>"] * n),
                 COLUMNS[5]: pa.array([True] * n), COLUMNS[25]: pa.array([False] * n),
                 COLUMNS[7]: pa.array(["XNAS"] * n), COLUMNS[37]: pa.array(["", "DE", ""]),
                 COLUMNS[64]: pa.array([False] * n), COLUMNS[65]: pa.array([False] * n)})
    text = auth016.transactions(pa.table(cols), COLUMNS.__getitem__).to_pylist()
    ns = {"a": auth016.NS_AUTH16}
    wrap = f'<FinInstrmRptgTxRpt xmlns="{auth016.NS_AUTH16}">' + "".join(text) + "</FinInstrmRptgTxRpt>"
    news = ET.fromstring(wrap).findall("a:Tx/a:New", ns)
    assert [x.findtext("a:TxId", namespaces=ns) for x in news] == ["T1", "T2", "T3"]
    assert all(x.findtext("a:ExctgPty", namespaces=ns) == "A&B<C>" for x in news)
    assert all(x.findtext("a:Buyr/a:AcctOwnr/a:Id/a:MIC", namespaces=ns) == "XNAS" for x in news)
    assert [x.find("a:Tx/a:CtryOfBrnch", ns) is not None for x in news] == [False, True, False]
    assert all(x.find("a:InvstmtDcsnPrsn", ns) is None for x in news)     # field 57 null on every row
    single = auth016.transactions(pa.table(cols).slice(0, 1), COLUMNS.__getitem__)
    assert len(single) == 1 and "<TxId>T1</TxId>" in single[0].as_py()


def test_auth016_created_time_is_the_latest_kept_trade_even_when_a_later_one_is_rejected(tmp_path):
    import hashlib
    import json
    import re
    from reports.run import run
    from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
    from tests.reports.conftest import read
    for reject_last in (False, True):
        b = DayBuilder()
        b.clock_sample()
        b.enter("K1", 1, "B", 1_500_000, 100)
        b.accept("K1")
        b.advance(3_000_000_000)
        b.execute("K1", 100)
        b.enter("R1", 9 if reject_last else 1, "B", 1_500_000, 100)   # symbol 9: not in the reference data
        b.accept("R1")
        b.advance(5_000_000_000)
        b.execute("R1", 100)
        out = tmp_path / f"o{reject_last}"
        run(["rts22"], b.write(tmp_path / f"j{reject_last}"), out, refdata_dir=FIXTURE_REFDATA)
        times = read(out, "rts22", "transactions")["f28_trading_date_time"].to_pylist()
        assert len(times) == (1 if reject_last else 2)
        rel = "auth016/trade_date=2026-03-02/auth016.xml"
        xml = (out / "rts22" / rel).read_bytes()
        assert re.search(rb"<CreDt>([^<]*)</CreDt>", xml).group(1).decode() == max(times)
        manifest = json.loads((out / "rts22" / "_manifest.json").read_text())
        assert {f["path"]: f["sha256"] for f in manifest["files"]}[rel] == hashlib.sha256(xml).hexdigest()


def test_a_control_character_in_reference_text_rejects_the_row_and_the_xml_stays_valid(tmp_path):
    import shutil
    from reports.run import run
    from reports.validate import XML_CONTROL_REASON
    from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
    refdata = tmp_path / "refdata"
    shutil.copytree(FIXTURE_REFDATA, refdata)
    instruments = refdata / "instruments.toml"
    text = instruments.read_text()
    assert 'full_name = "SPDR S&P 500 ETF Trust"' in text
    instruments.write_text(text.replace('full_name = "SPDR S&P 500 ETF Trust"', 'full_name = "SPDR\\u0001 Trust"'))
    b = DayBuilder()
    b.clock_sample()
    for token, symbol_id in (("S1", 3), ("A1", 1)):          # SPY is outside FIRDS: field 42 carries its name
        b.enter(token, symbol_id, "B", 1_500_000, 100)
        b.accept(token)
        b.execute(token, 100)
    out = tmp_path / "out"
    result = run(["rts22"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA.parent / refdata)
    assert result.rejected == 1
    rejects = read(out, "rts22", "rejects").to_pylist()
    assert [(r["field"], r["value"], r["reason"]) for r in rejects] == [(COLUMNS[42], "SPDR\x01 Trust", XML_CONTROL_REASON)]
    kept = read(out, "rts22", "transactions")
    assert kept[COLUMNS[41]].to_pylist() == ["US0378331005"]
    xml = (out / "rts22" / "auth016" / "trade_date=2026-03-02" / "auth016.xml").read_bytes()
    assert len(auth016.parse_transactions(xml)) == 1 and b"\x01" not in xml
