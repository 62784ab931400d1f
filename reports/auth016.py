"""ISO 20022 auth.016.001.01 (FinInstrmRptgTxRpt) XML from RTS 22 transaction rows, wrapped in the
head.003 BizData / head.001 AppHdr envelope; one file per trade date.

Owns the mapping of RTS 22 columns to XML elements and deterministic serialisation (xml.etree,
fixed element order, no wall-clock: CreDt is the last trading time in the file). Knows nothing of
journals; it reads the same rows that go to Parquet.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pyarrow as pa
import pyarrow.compute as pc

NS_HEAD3 = "urn:iso:std:iso:20022:tech:xsd:head.003.001.01"
NS_HEAD1 = "urn:iso:std:iso:20022:tech:xsd:head.001.001.01"
NS_AUTH16 = "urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"
MSG_DEF = "auth.016.001.01"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _party(parent: ET.Element, tag: str, ident: str, branch: str | None) -> None:
    owner = _sub(_sub(parent, tag), "AcctOwnr")
    _sub(_sub(owner, "Id"), "MIC" if len(ident) == 4 else "LEI", ident)
    if branch:
        _sub(owner, "CtryOfBrnch", branch)


def _optional(parent: ET.Element, tag: str, text: str | None) -> None:
    """Optional elements appear only when the field has a value (null fields are omitted)."""
    if text:
        _sub(parent, tag, text)


def _organisation(hdr: ET.Element, tag: str, ident: str, scheme: str) -> None:
    othr = _sub(_sub(_sub(_sub(_sub(hdr, tag), "OrgId"), "Id"), "OrgId"), "Othr")
    _sub(othr, "Id", ident)
    _sub(_sub(othr, "SchmeNm"), "Prtry", scheme)


def _bool(v: bool) -> str:
    return "true" if v else "false"


def transaction(row: dict, col) -> ET.Element:
    """One <Tx><New> element from an RTS 22 row (col: field number -> column name)."""
    tx = ET.Element("Tx")
    new = _sub(tx, "New")
    _sub(new, "TxId", row[col(2)])
    _sub(new, "ExctgPty", row[col(4)])
    _sub(new, "InvstmtPtyInd", _bool(row[col(5)]))
    _sub(new, "SubmitgPty", row[col(6)])
    _party(new, "Buyr", row[col(7)], row[col(8)])
    _party(new, "Sellr", row[col(16)], row[col(17)])
    _sub(_sub(new, "OrdrTrnsmssn"), "TrnsmssnInd", _bool(row[col(25)]))
    t = _sub(new, "Tx")
    _sub(t, "TradDt", row[col(28)])
    _sub(t, "TradgCpcty", row[col(29)])
    _sub(_sub(t, "Qty"), "Unit", row[col(30)])
    _sub(_sub(_sub(_sub(t, "Pric"), "Pric"), "MntryVal"), "Amt", row[col(33)], Ccy=row[col(34)])
    _sub(t, "TradVn", row[col(36)])
    _optional(t, "CtryOfBrnch", row[col(37)])
    _optional(t, "TradPlcMtchgId", row[col(3)])
    fin = _sub(new, "FinInstrm")
    if row[col(42)] or row[col(43)]:
        other = _sub(fin, "Othr")
        gen = _sub(other, "FinInstrmGnlAttrbts")
        _sub(gen, "Id", row[col(41)])
        _optional(gen, "FullNm", row[col(42)])
        _optional(gen, "ClssfctnTp", row[col(43)])
        _optional(gen, "NtnlCcy", row[col(44)])
        if row[col(46)]:
            _sub(_sub(other, "DerivInstrmAttrbts"), "PricMltplr", row[col(46)])
    else:
        _sub(fin, "Id", row[col(41)])
    if row[col(57)]:
        _sub(_sub(new, "InvstmtDcsnPrsn"), "Algo", row[col(57)])
    if row[col(59)]:
        _sub(_sub(new, "ExctgPrsn"), "Algo", row[col(59)])
    extra = _sub(new, "AddtlAttrbts")
    _optional(extra, "WvrInd", row[col(61)])
    _optional(extra, "ShrtSellgInd", row[col(62)])
    _optional(extra, "OTCPstTradInd", row[col(63)])
    _sub(extra, "RskRdcgTx", _bool(row[col(64)]))
    _sub(extra, "SctiesFincgTxInd", _bool(row[col(65)]))
    return tx


def document(rows: list[dict], col, submitter: str, authority: str, msg_id: str, created: str) -> bytes:
    biz = ET.Element("BizData", {"xmlns": NS_HEAD3})
    hdr = _sub(_sub(biz, "Hdr"), "AppHdr", xmlns=NS_HEAD1)
    _organisation(hdr, "Fr", submitter, "LEI")
    _organisation(hdr, "To", authority, "NCA")
    _sub(hdr, "BizMsgIdr", msg_id)
    _sub(hdr, "MsgDefIdr", MSG_DEF)
    _sub(hdr, "CreDt", created)
    report = _sub(_sub(_sub(biz, "Pyld"), "Document", xmlns=NS_AUTH16), "FinInstrmRptgTxRpt")
    for row in rows:
        report.append(transaction(row, col))
    ET.indent(biz, space=" ")
    return ET.tostring(biz, encoding="UTF-8", xml_declaration=True) + b"\n"


def export(table: pa.Table, ref, src) -> dict[str, bytes]:
    """auth016/trade_date=<d>/auth016.xml for each trade date present in the kept RTS 22 rows."""
    from reports.rts22 import COLUMNS
    col = COLUMNS.__getitem__
    out: dict[str, bytes] = {}
    if table.num_rows == 0:
        return out
    dates = table.column("trade_date").combine_chunks()
    for day in pc.unique(dates).to_pylist():
        if day is None:
            continue
        rows = table.filter(pc.equal(dates, pa.scalar(day, pa.date32()))).to_pylist()
        created = max(r[col(28)] for r in rows)
        msg_id = f"{src.journal_id[:16]}-{src.first_seq}-{src.last_seq}-{day.isoformat()}"
        out[f"auth016/trade_date={day.isoformat()}/auth016.xml"] = document(
            rows, col, ref.firm.submitting_lei, ref.firm.competent_authority, msg_id, created)
    return out


def parse_transactions(xml_bytes: bytes) -> list[ET.Element]:
    """The <New> elements of an exported file, for verification and tests."""
    root = ET.fromstring(xml_bytes)
    ns = {"a": NS_AUTH16}
    return root.findall(".//a:FinInstrmRptgTxRpt/a:Tx/a:New", ns)


__all__ = ["export", "document", "transaction", "parse_transactions"]
