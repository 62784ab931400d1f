"""A real crash with a power loss: the runner SIGKILLed mid-session on the embedded venue, the journal
cut at the input the engine sent an order on that the venue then filled (it, the ORDER_SENT and every
record after them lost), and recovery adopting such orders from the venue's messages. Each report
builds the order's origin from the adoption's RECON record: the orders report and execution quality report its executions (marked
ADOPTED / RECOVERY_ADOPTED, with the RECON record's sequence) at the venue's values; RTS 22 and CAT
keep them in rejects with the one reason each cannot report them."""
from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from journal import Reader, RecordType
from journal.catalogue import raw_bytes, unpack, unpack_json
from mm_core.protocol import ouch, soupbintcp
from recovery.recover import build_engine, recover
from recovery.replay import replay_journal
from reports.rts22 import COLUMNS
from reports.run import run
from tests.recovery.conftest import crashed_session  # noqa: F401  (the fixture)
from tests.recovery.journaling import tear
from tests.recovery.session import settings_for
from tests.reports.conftest import read as read_table


def read(out, kind: str, table: str):
    """The table with its timestamps as integer nanoseconds (datetime holds microseconds only)."""
    t = read_table(out, kind, table)
    return t.cast(pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in t.schema]))


def rows_of(out, kind: str, table: str) -> list[dict]:
    """The table's rows (no table is written when it has none)."""
    return read(out, kind, table).to_pylist() if (out / kind / table).exists() else []


def rejects(out, kind: str) -> list[dict]:
    return rows_of(out, kind, "rejects")


def _venue_message(record):
    packet = soupbintcp.decode(raw_bytes(unpack(RecordType.VENUE_MSG, record.payload)),
                               soupbintcp.Direction.FROM_SERVER)
    if isinstance(packet, soupbintcp.SequencedData):
        return ouch.decode_outbound(packet.payload)
    return None


def _filled_order(records) -> int:
    """The journal sequence of the last ORDER_SENT creating an order the venue executed later in
    the journal, preferring one no Modify follows (a lost Modify's Order Modified is an event the
    recovered engine cannot apply: it halts, which is recovery's matter, not the reports')."""
    created: dict[str, int] = {}
    filled: dict[str, int] = {}
    modifies = []
    for r in records:
        if r.rtype == RecordType.ORDER_SENT:
            sent = unpack(RecordType.ORDER_SENT, r.payload)
            if sent["msg_type"] in (ord("O"), ord("U")):
                created.setdefault(bytes(sent["token"]).decode().rstrip(), r.seq)
            elif sent["msg_type"] == ord("M"):
                modifies.append(r.seq)
        elif r.rtype == RecordType.VENUE_MSG and unpack(RecordType.VENUE_MSG, r.payload)["msg_type"] == ord("E"):
            token = _venue_message(r).token.rstrip()
            if token in created:
                filled[token] = created[token]
    assert filled, "the session journaled no fill of an order it sent"
    return max(filled.values(), key=lambda seq: (not any(m > seq for m in modifies), seq))


def _adopted_with_fills(journal: str) -> str:
    """A token a recovery adopted whose executions the venue gave back after the adoption."""
    adopted, filled = {}, set()
    with Reader(journal) as reader:
        for r in reader.records(rtypes=[RecordType.RECON, RecordType.VENUE_MSG]):
            if r.rtype == RecordType.RECON:
                res = unpack_json(r.payload).get("resolution") or {}
                if res.get("action") == "adopt" or res.get("adopt") is True:
                    adopted.setdefault(res["token"], r.seq)
            elif isinstance(msg := _venue_message(r), ouch.Executed) and msg.token.rstrip() in adopted:
                filled.add(msg.token.rstrip())
    assert filled, f"recovery adopted {sorted(adopted)}, none of them filled"
    return min(filled, key=adopted.get)


def _after_recovery(journal: str, token: str) -> tuple[int, list, list]:
    """The adoption's RECON sequence, the venue's Executed messages of `token` ((seq, shares, price,
    match)) and the journal sequences of its other venue messages."""
    adoption, fills, others = None, [], []
    with Reader(journal) as reader:
        for r in reader.records(rtypes=[RecordType.RECON, RecordType.VENUE_MSG]):
            if r.rtype == RecordType.RECON:
                res = unpack_json(r.payload).get("resolution") or {}
                if res.get("token") == token and (res.get("action") == "adopt" or res.get("adopt")):
                    adoption = adoption or r.seq
                continue
            msg = _venue_message(r)
            if getattr(msg, "token", "").rstrip() != token:
                continue
            if isinstance(msg, ouch.Executed):
                fills.append((r.seq, msg.executed_shares, msg.execution_price, msg.match_number))
            else:
                others.append((r.seq, type(msg).__name__))
    assert adoption is not None, "recovery adopted the order whose ORDER_SENT was lost"
    assert fills and all(seq > adoption for seq, *_ in fills)
    return adoption, fills, others


def test_executions_of_an_order_a_recovery_adopted_are_in_each_report(crashed_session, tmp_path):  # noqa: F811
    venue, journal, address = crashed_session
    with Reader(journal) as reader:
        records = list(reader.records())
    sent = _filled_order(records)
    # the input the engine sent that order on (the last record before it other than the orders and
    # TX timestamps of the same decision) and all after it lost: the replay, without that input,
    # does not send the order again, and recovery adopts it from the venue's messages
    at = next(i for i, r in enumerate(records) if r.seq == sent)
    while records[at].rtype in (RecordType.ORDER_SENT, RecordType.TX_TS):
        at -= 1
    tear(journal, records[at].seq, power_loss=True)
    result = recover(settings_for(journal, address))
    assert result.replay.deterministic and result.delivered >= 1
    token = _adopted_with_fills(journal)
    recon_seq, fills, others = _after_recovery(journal, token)
    run(["orders", "rts22", "cat", "execution-quality"], journal, tmp_path / "o")
    venue_fills = {(seq, qty, Decimal(price).scaleb(-4), match) for seq, qty, price, match in fills}
    fill_seqs = {seq for seq, *_ in fills}

    # order records: every row of the order, the recovery's mark and evidence, the venue's values
    rows = [r for r in read(tmp_path / "o", "orders", "order_events").to_pylist() if r["order_id"] == token]
    assert {(r["recovery_status"], r["recovery_seq"]) for r in rows} == {("ADOPTED", recon_seq)}
    assert {(r["seq"], r["exec_qty"], r["exec_price"], r["tvtic"]) for r in rows
            if r["event_type"] == "EXECUTED"} == venue_fills
    assert {r["seq"] for r in rows if r["origin"] == "VENUE"} == fill_seqs | {s for s, _ in others}
    assert all(r["algo_id"] is None and r["client_id"] is None and r["validity_period"] is None for r in rows)
    assert not any(r["rts24_event"] == "NEWO" for r in rows)      # its Enter was lost
    orders_rejects = rejects(tmp_path / "o", "orders")
    assert not [r for r in orders_rejects if r["seq"] in fill_seqs]

    # execution quality: the fills kept, marked, at the venue's values; no order time or quote at it
    eq = [r for r in read(tmp_path / "o", "execution-quality", "fills").to_pylist() if r["order_id"] == token]
    assert {(r["seq"], r["exec_qty"], r["exec_price"]) for r in eq} == {f[:3] for f in venue_fills}
    assert all(r["order_origin"] == "RECOVERY_ADOPTED" and r["origin_recon_seq"] == recon_seq
               and r["order_time_utc"] is None and r["effective_spread"] is None for r in eq)

    # RTS 22: each execution rejected for fields 57 / 59 alone, naming the RECON record
    transactions = rows_of(tmp_path / "o", "rts22", "transactions")
    assert not [t for t in transactions if int(t[COLUMNS[2]][-20:]) in fill_seqs]
    rejected = [r for r in rejects(tmp_path / "o", "rts22") if r["seq"] in fill_seqs]
    assert {r["seq"] for r in rejected} == fill_seqs
    assert {r["field"] for r in rejected} == {COLUMNS[57]}
    assert all(f"RECON resolution at journal sequence {recon_seq}" in r["reason"] for r in rejected)

    # CAT: no event of the order reported; its New Order (at the venue's Accepted) rejected with why
    cat_rows = rows_of(tmp_path / "o", "cat", "order_events")
    assert not [r for r in cat_rows if r["orderID"] == token or r["routedOrderID"] == token]
    cat_rejects = [r for r in rejects(tmp_path / "o", "cat")
                   if f"journal sequence {recon_seq})" in r["reason"]]
    accepted = [s for s, kind in others if kind == "Accepted"]
    if accepted:
        assert {r["reason"][:7] for r in cat_rejects if r["seq"] == accepted[0]} == {"no MENO", "no MEOR"}
    assert cat_rejects and all(r["field"] == "orderKeyDate" and "orderKeyDate" in r["reason"] for r in cat_rejects)


def test_an_order_replay_decides_again_without_its_order_sent_is_adopted_in_each_report(crashed_session, tmp_path):  # noqa: F811
    """The power loss took the ORDER_SENT of an order the venue then executed, and every record
    after it, but kept the input the engine decided it on: replay decides it again (the same token,
    the journal having no record of its sending), and recovery adopts the venue's version of it once
    the venue answers it, so its executions have an origin in every report (they were orphans)."""
    venue, journal, address = crashed_session
    with Reader(journal) as reader:
        records = list(reader.records())
    sent = _filled_order(records)
    token = bytes(unpack(RecordType.ORDER_SENT, next(r for r in records if r.seq == sent).payload)["token"]) \
        .decode().rstrip()
    tear(journal, sent, power_loss=True)
    settings = settings_for(journal, address)
    result = recover(settings)
    assert result.replay.deterministic
    assert token in [a.intent.token for a in result.replay.unsent]       # decided again, not journaled
    recon_seq, fills, others = _after_recovery(journal, token)
    with Reader(journal) as reader:
        doc = unpack_json(next(r for r in reader.records(rtypes=[RecordType.RECON]) if r.seq == recon_seq).payload)
    # unanswered when recovery began: pulled with the other quotes until reconciled
    assert "replay decided again" in doc["why"] and doc["before"]["state"] in ("pending-new", "pending-cancel")
    assert result.engine.counts["halts"] == 0, result.reasons
    # nothing was sent twice: the recovery's only orders are cancels
    with Reader(journal) as reader:
        resent = [unpack(RecordType.ORDER_SENT, r.payload) for r in reader.records(rtypes=[RecordType.ORDER_SENT])
                  if r.seq > sent]
    assert all(s["msg_type"] == ord("X") for s in resent), [chr(s["msg_type"]) for s in resent]
    run(["orders", "execution-quality"], journal, tmp_path / "o")
    rows = [r for r in read(tmp_path / "o", "orders", "order_events").to_pylist() if r["order_id"] == token]
    assert {(r["recovery_status"], r["recovery_seq"]) for r in rows} == {("ADOPTED", recon_seq)}
    assert {(r["seq"], r["exec_qty"]) for r in rows if r["event_type"] == "EXECUTED"} == {f[:2] for f in fills}
    # none of its rows is an orphan (nor the cancel recovery sent it when it began: adopted before)
    assert not [r for r in rejects(tmp_path / "o", "orders") if r["value"] == token]
    eq = [r for r in read(tmp_path / "o", "execution-quality", "fills").to_pylist() if r["order_id"] == token]
    assert {r["seq"] for r in eq} == {f[0] for f in fills}
    assert all(r["order_origin"] == "RECOVERY_ADOPTED" and r["origin_recon_seq"] == recon_seq for r in eq)
    # a later replay of the recovered journal decides the same and ends in the same state
    again = replay_journal(journal, build_engine(settings.config, settings.symbols, settings.limits_text))
    assert again.deterministic and again.state_hash == result.engine.state_hash()
