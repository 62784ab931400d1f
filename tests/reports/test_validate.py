import numpy as np
import pyarrow as pa
import pytest

from reports.identifiers import isin_problem, lei_problem
from reports.validate import REJECTS_SCHEMA, mask_check, required_check, split, value_check


def _table():
    return pa.table({
        "seq": pa.array([1, 2, 3, 4], pa.uint64()),
        "lei": ["969500KSV493XWY0PS33", "969500KSV493XWY0PS34", None, "969500KSV493XWY0PS33"],
        "isin": ["US0378331005", "US0378331005", "US0373831005", "AU0000XVGZA3"],
        "trade_date": pa.array([20514] * 4, pa.date32()),
    })


def test_failing_rows_move_to_rejects_with_field_value_and_reason():
    t = _table()
    kept, rejects = split(t, "demo", "rows", [value_check(t, "lei", lei_problem), value_check(t, "isin", isin_problem)])
    assert kept["seq"].to_pylist() == [1, 4]
    assert rejects.schema == REJECTS_SCHEMA
    got = {(r["seq"], r["field"]): (r["value"], r["reason"]) for r in rejects.to_pylist()}
    assert got[(2, "lei")][0] == "969500KSV493XWY0PS34" and "MOD 97-10" in got[(2, "lei")][1]
    assert got[(3, "lei")] == (None, "LEI missing")
    assert "Luhn" in got[(3, "isin")][1]
    assert len(rejects) == 3 and kept.num_rows + len({s for s, _ in got}) == t.num_rows


def test_checks_can_be_limited_to_rows_where_a_field_applies():
    t = _table()
    when = np.array([True, False, False, True])
    kept, rejects = split(t, "demo", "rows", [value_check(t, "lei", lei_problem, when=when),
                                              required_check(t, "lei", when=when)])
    assert kept.num_rows == 4 and rejects.num_rows == 0
    _, rejects = split(t, "demo", "rows", [required_check(t, "lei")])
    assert rejects.to_pylist()[0]["reason"] == "required field lei is missing"


def test_mask_check_formats_reasons_only_for_bad_rows():
    calls = []

    def reason(rows):
        calls.append(list(rows))
        return [f"bad {r}" for r in rows]

    field, reasons = mask_check("x", np.array([False, True, False, True]), reason)
    assert calls == [[1, 3]] and reasons.to_pylist() == [None, "bad 1", None, "bad 3"]
    _, none = mask_check("x", np.zeros(3, bool), reason)
    assert calls == [[1, 3]] and none.null_count == 3


def test_text_an_xml_document_cannot_carry_is_rejected_per_row_plain_and_dictionary():
    from reports.validate import XML_CONTROL_REASON, xml_text_checks
    t = pa.table({
        "seq": pa.array([1, 2, 3, 4], pa.uint64()),
        "name": ["ok", "bell\x07", None, "tab\tline\ncr\r"],              # tab, LF and CR are allowed
        "code": pa.array(["A", "B\x1f", "A", "B\x1f"]).dictionary_encode(),
        "qty": pa.array([1, 2, 3, 4]),
        "trade_date": pa.array([20514] * 4, pa.date32()),
    })
    kept, rejects = split(t, "demo", "rows", xml_text_checks(t))
    assert kept["seq"].to_pylist() == [1, 3]
    got = sorted((r["seq"], r["field"], r["value"], r["reason"]) for r in rejects.to_pylist())
    assert got == [(2, "code", "B\x1f", XML_CONTROL_REASON), (2, "name", "bell\x07", XML_CONTROL_REASON),
                   (4, "code", "B\x1f", XML_CONTROL_REASON)]
    clean = t.filter(pa.array([True, False, True, False]))
    assert all(reasons.null_count == len(reasons) for _, reasons in xml_text_checks(clean))


def test_declare_required_marks_columns_non_nullable_and_refuses_a_null():
    from reports.errors import ReportError
    from reports.validate import declare_required

    table = pa.table({"a": [1, 2], "b": ["x", None]})
    declared = declare_required(table.select(["a"]), ("a",))
    assert declared.schema.field("a").nullable is False
    with pytest.raises(ReportError, match="column b has a null"):
        declare_required(table, ("a", "b"))
    with pytest.raises(ReportError, match="c: no such column"):
        declare_required(table, ("c",))
