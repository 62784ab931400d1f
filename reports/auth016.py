"""ISO 20022 auth.016.001.01 (FinInstrmRptgTxRpt) XML from RTS 22 transaction rows, wrapped in the
head.003 BizData / head.001 AppHdr envelope; one file per trade date, streamed chunk by chunk.

Owns the mapping of RTS 22 columns to XML elements and deterministic serialisation: every row's
<Tx> is assembled column-wise with Arrow string kernels (escaped text, fixed element order,
optional elements left out where the field is null), never per row in Python; the
envelope carries no wall-clock time (CreDt is the last trading time in the file). No whitespace
between elements (it carries nothing in auth.016 and was a third of the bytes): the envelope's
head on one line, each <Tx> on a line of its own, then the tail. Knows nothing of journals; it
reads the same rows that go to Parquet.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.compute as pc

from reports import arrowcols as ac

NS_HEAD3 = "urn:iso:std:iso:20022:tech:xsd:head.003.001.01"
NS_HEAD1 = "urn:iso:std:iso:20022:tech:xsd:head.001.001.01"
NS_AUTH16 = "urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"
MSG_DEF = "auth.016.001.01"
TEXT_ROWS = 16_384    # rows turned into XML text at a time
CREATED_PLACEHOLDER = "0000-00-00T00:00:00.000000Z"     # as wide as every {DATE_TIME_FORMAT} value


def _escape(arr: pa.Array) -> pa.Array:
    """XML text escaping of a string column (& first, then < > and the quote for attributes);
    one scan when, as for identifiers, codes and numbers, nothing needs escaping."""
    if not ac.has_any_byte(arr, b'&<>"'):
        return arr
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        arr = pc.replace_substring(arr, raw, entity)
    return arr


class _Rows:
    """Fragments of every row's <Tx>, in document order; joined once at the end. Constant text
    next to constant text is merged, and a value with no nulls goes in as it is, so the join
    takes few arguments and most elements cost no kernel call of their own."""

    def __init__(self, n: int):
        self.n = n
        self.parts: list = []

    def open(self, tag: str, when: pa.Array | None = None) -> None:
        self._const(f"<{tag}>", when)

    def close(self, tag: str, when: pa.Array | None = None) -> None:
        self._const(f"</{tag}>", when)

    def const(self, text: str) -> None:
        """Text on every row (e.g. the line break before each <Tx>)."""
        self._const(text, None)

    def _rows(self, when: pa.Array | None) -> str:
        """'all', 'none' or 'some': on which rows an element guarded by `when` appears."""
        if when is None:
            return "all"
        hits = pc.sum(when).as_py() or 0
        return "all" if hits == self.n and when.null_count == 0 else "none" if hits == 0 else "some"

    def _const(self, text: str, when: pa.Array | None) -> None:
        rows = self._rows(when)
        if rows == "none":
            return
        if rows == "all":
            if self.parts and isinstance(self.parts[-1], str):
                self.parts[-1] += text
            else:
                self.parts.append(text)
        else:
            self.parts.append(pc.if_else(when, text, pa.scalar(None, pa.string())))

    def leaf(self, tag: str, value: pa.Array, when: pa.Array | None = None, attr: str = "",
             attr_value: pa.Array | None = None) -> None:
        """<tag>value</tag> (with attr="attr_value" when given); left out where value is null.
        An element on every row whose values are all the same is constant text."""
        rows = self._rows(when)
        if rows == "none":
            return
        when = None if rows == "all" else when
        raw = [value] if attr_value is None else [attr_value, value]
        heads = [f"<{tag}>"] if attr_value is None else [f'<{tag} {attr}="', '">']
        if when is None and all(v.null_count == 0 for v in raw):
            for head, v in zip(heads, raw):
                self._const(head, None)
                same = _single_value(v)
                if same is not None:
                    self._const(escape(same, {'"': "&quot;"}), None)
                else:
                    self.parts.append(_escape(v))
            self._const(f"</{tag}>", None)
            return
        values = [_escape(v) for v in raw]
        pieces = [x for pair in zip(heads, values) for x in pair] + [f"</{tag}>"]
        frag = pc.binary_join_element_wise(*pieces, "")
        if when is not None:
            frag = pc.if_else(when, frag, pa.scalar(None, pa.string()))
        self.parts.append(frag)

    def text(self) -> pa.Array:
        if all(isinstance(p, str) for p in self.parts):      # every row the same text
            return pa.repeat(pa.scalar("".join(self.parts), pa.string()), self.n)
        parts = [pa.scalar(p) if isinstance(p, str) else p for p in self.parts]
        return pc.binary_join_element_wise(*parts, "", null_handling="skip")


def _single_value(arr: pa.Array) -> str | None:
    """The value of a string column with no nulls when every row holds the same one, else None."""
    if len(arr) == 0:
        return None
    low_high = pc.min_max(arr)
    low, high = low_high["min"].as_py(), low_high["max"].as_py()
    return low if low is not None and low == high else None


def _bool_text(arr: pa.Array) -> pa.Array:
    return pc.if_else(arr, "true", "false")


def _present(arr: pa.Array) -> pa.Array:
    return pc.and_(arr.is_valid(), pc.not_equal(pc.fill_null(arr, ""), ""))


def _party(r: _Rows, tag: str, ident: pa.Array, branch: pa.Array) -> None:
    is_mic = pc.equal(pc.utf8_length(pc.fill_null(ident, "")), 4)
    r.open(tag)
    r.open("AcctOwnr")
    r.open("Id")
    r.leaf("MIC", ident, when=is_mic)
    r.leaf("LEI", ident, when=pc.invert(is_mic))
    r.close("Id")
    r.leaf("CtryOfBrnch", branch, when=_present(branch))
    r.close("AcctOwnr")
    r.close(tag)


def transactions(table: pa.Table, col) -> pa.Array:
    """The <Tx><New>...</New></Tx> text of every row (col: field number -> column name)."""
    def f(num: int) -> pa.Array:
        return ac.plain(table.column(col(num)).combine_chunks())

    r = _Rows(table.num_rows)
    r.const("\n")                         # one line per transaction
    r.open("Tx")
    r.open("New")
    r.leaf("TxId", f(2))
    r.leaf("ExctgPty", f(4))
    r.leaf("InvstmtPtyInd", _bool_text(f(5)))
    r.leaf("SubmitgPty", f(6))
    _party(r, "Buyr", f(7), f(8))
    _party(r, "Sellr", f(16), f(17))
    r.open("OrdrTrnsmssn")
    r.leaf("TrnsmssnInd", _bool_text(f(25)))
    r.close("OrdrTrnsmssn")
    r.open("Tx")
    r.leaf("TradDt", f(28))
    r.leaf("TradgCpcty", f(29))
    r.open("Qty")
    r.leaf("Unit", f(30))
    r.close("Qty")
    for tag in ("Pric", "Pric", "MntryVal"):
        r.open(tag)
    r.leaf("Amt", f(33), attr="Ccy", attr_value=f(34))
    for tag in ("MntryVal", "Pric", "Pric"):
        r.close(tag)
    r.leaf("TradVn", f(36))
    r.leaf("CtryOfBrnch", f(37), when=_present(f(37)))
    r.leaf("TradPlcMtchgId", f(3), when=_present(f(3)))
    r.close("Tx")
    r.open("FinInstrm")
    other = pc.or_(_present(f(42)), _present(f(43)))
    r.open("Othr", when=other)
    r.open("FinInstrmGnlAttrbts", when=other)
    r.leaf("Id", f(41), when=other)
    for num, tag in ((42, "FullNm"), (43, "ClssfctnTp"), (44, "NtnlCcy")):
        r.leaf(tag, f(num), when=pc.and_(other, _present(f(num))))
    r.close("FinInstrmGnlAttrbts", when=other)
    deriv = pc.and_(other, _present(f(46)))
    r.open("DerivInstrmAttrbts", when=deriv)
    r.leaf("PricMltplr", f(46), when=deriv)
    r.close("DerivInstrmAttrbts", when=deriv)
    r.close("Othr", when=other)
    r.leaf("Id", f(41), when=pc.invert(other))
    r.close("FinInstrm")
    for num, tag in ((57, "InvstmtDcsnPrsn"), (59, "ExctgPrsn")):
        has = _present(f(num))
        r.open(tag, when=has)
        r.leaf("Algo", f(num), when=has)
        r.close(tag, when=has)
    r.open("AddtlAttrbts")
    for num, tag in ((61, "WvrInd"), (62, "ShrtSellgInd"), (63, "OTCPstTradInd")):
        r.leaf(tag, f(num), when=_present(f(num)))
    r.leaf("RskRdcgTx", _bool_text(f(64)))
    r.leaf("SctiesFincgTxInd", _bool_text(f(65)))
    r.close("AddtlAttrbts")
    r.close("New")
    r.close("Tx")
    return r.text()


def cancellations(table: pa.Table, col) -> pa.Array:
    """The <Tx><Cxl>...</Cxl></Tx> text of report-status CANC rows: the cancelled transaction's
    reference, the executing and the submitting entity, as auth.016's CancelledTransaction holds."""
    r = _Rows(table.num_rows)
    r.const("\n")
    r.open("Tx")
    r.open("Cxl")
    for num, tag in ((2, "TxId"), (4, "ExctgPty"), (6, "SubmitgPty")):
        r.leaf(tag, ac.plain(table.column(col(num)).combine_chunks()))
    r.close("Cxl")
    r.close("Tx")
    return r.text()


def records(table: pa.Table, col) -> pa.Array:
    """The <Tx> text of every row: <New> for new transactions, <Cxl> for cancellations (field 1
    CANC), new ones first."""
    status = ac.plain(table.column(col(1)).combine_chunks())
    cancel = pc.fill_null(pc.equal(status, "CANC"), False)
    if not pc.any(cancel).as_py():
        return transactions(table, col)
    news = table.filter(pc.invert(cancel))
    parts = [transactions(news, col)] if news.num_rows else []
    return pa.concat_arrays(parts + [cancellations(table.filter(cancel), col)])


def _element(tag: str, content, attrs: str = "") -> str:
    """XML for a small fixed tree: content is text or a list of (tag, content[, attrs])."""
    if isinstance(content, str):
        return f"<{tag}{attrs}>{escape(content)}</{tag}>"
    inner = "".join(_element(*child) for child in content)
    return f"<{tag}{attrs}>{inner}</{tag}>"


def _organisation(tag: str, ident: str, scheme: str):
    return (tag, [("OrgId", [("Id", [("OrgId", [("Othr", [("Id", ident), ("SchmeNm", [("Prtry", scheme)])])])])])])


def envelope(submitter: str, authority: str, msg_id: str, created: str) -> tuple[bytes, bytes]:
    """(head, tail) around the <Tx> elements of one file."""
    header = _element("Hdr", [("AppHdr", [
        _organisation("Fr", submitter, "LEI"), _organisation("To", authority, "NCA"),
        ("BizMsgIdr", msg_id), ("MsgDefIdr", MSG_DEF), ("CreDt", created)], f' xmlns="{NS_HEAD1}"')])
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<BizData xmlns="{NS_HEAD3}">{header}'
            f'<Pyld><Document xmlns="{NS_AUTH16}"><FinInstrmRptgTxRpt>')
    tail = "\n</FinInstrmRptgTxRpt></Document></Pyld></BizData>\n"
    return head.encode(), tail.encode()


class Exporter:
    """auth016/trade_date=<d>/auth016.xml for each trade date of the kept RTS 22 rows, fed chunk
    by chunk to a sink (`add_text`): the envelope's head goes first with a fixed-width CreDt (the
    latest trading time in the file), then the <Tx> elements, then the tail.

    CreDt is known for sure only at the end. With `expected` (trade date -> the latest trading
    time the caller foresees, e.g. of every execution in the range), the head carries that value
    and the file is hashed as it is written; when the rows kept say otherwise (the latest
    execution was rejected), or nothing was foreseen, `finish` patches CreDt in place and the
    file's digest is taken from disk."""

    def __init__(self, col, ref, src, expected: dict[str, str] | None = None):
        self.col = col
        self.ref = ref
        self.src = src
        self.expected = expected or {}
        self.created: dict[str, str] = {}       # trade date -> latest trading time in its file
        self.created_at: dict[str, int] = {}    # trade date -> byte offset of CreDt in its file
        self.head_created: dict[str, str] = {}  # trade date -> CreDt written in the head

    @staticmethod
    def path(day: str) -> str:
        return f"auth016/trade_date={day}/auth016.xml"

    def _start(self, label: str, sink) -> None:
        msg_id = f"{self.src.journal_id[:16]}-{self.src.first_seq}-{self.src.last_seq}-{label}"
        created = self.expected.get(label, CREATED_PLACEHOLDER)
        if len(created) != len(CREATED_PLACEHOLDER):
            created = CREATED_PLACEHOLDER
        head, _ = envelope(self.ref.firm.submitting_lei, self.ref.firm.competent_authority, msg_id, created)
        self.created_at[label] = head.index(f"<CreDt>{created}".encode()) + len("<CreDt>")
        self.head_created[label] = created
        sink.add_text(self.path(label), head, patched_later=created == CREATED_PLACEHOLDER)

    def add(self, table: pa.Table, sink) -> None:
        if table.num_rows == 0:
            return
        dates = table.column("trade_date").combine_chunks()
        for day in pc.unique(dates).to_pylist():
            if day is None:
                continue
            rows = table.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
            label = day.isoformat()
            if label not in self.created:
                self._start(label, sink)
            latest = pc.max(rows.column(self.col(28))).as_py()
            self.created[label] = max(self.created.get(label, latest), latest)
            for start in range(0, rows.num_rows, TEXT_ROWS):     # ~2 KB of XML per row: bounded
                text = records(rows.slice(start, TEXT_ROWS), self.col)
                sink.add_text(self.path(label), ac.concat_text(text))

    def finish(self, sink) -> None:
        _, tail = envelope("", "", "", "")
        for label, created in sorted(self.created.items()):
            if len(created) != len(CREATED_PLACEHOLDER):
                raise ValueError(f"trading time {created!r} is not {{DATE_TIME_FORMAT}}")
            sink.add_text(self.path(label), tail)
            if created != self.head_created[label]:
                sink.patch_text(self.path(label), self.created_at[label], created.encode())


def parse_transactions(xml_bytes: bytes, element: str = "New") -> list[ET.Element]:
    """The <New> (or, with element="Cxl", cancellation) elements of an exported file, for
    verification and tests."""
    root = ET.fromstring(xml_bytes)
    ns = {"a": NS_AUTH16}
    return root.findall(f".//a:FinInstrmRptgTxRpt/a:Tx/a:{element}", ns)


__all__ = ["Exporter", "envelope", "transactions", "cancellations", "records", "parse_transactions"]
