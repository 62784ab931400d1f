"""A size-down (OUCH Modify) of ours the venue applied while the journal lost its ORDER_SENT in a
torn tail: recovery against the embedded venue on loopback adopts the venue's version (a RECON
resolution with the order's size before and after), the OMS and the gateway end with the venue's
size, and a later replay of the recovered journal rebuilds the same engine."""
from __future__ import annotations

from journal import Reader, RecordType
from journal.catalogue import unpack_json
from mm_core.oms import OrderState
from mm_core.protocol import ouch
from mm_core.types import OrderIntent, OrderKind, Side
from recovery.recover import recover
from recovery.replay import replay_journal
from reports.run import run
from tests.mm_core.wire import ACME
from tests.recovery.bridged import Bridged, quiet_venue
from tests.recovery.journaling import fresh_engine, recovery_settings, tear
from tests.reports.test_adopted_drill import read


def resolutions(path: str, action: str) -> list[tuple[int, dict]]:
    with Reader(path) as reader:
        docs = [(r.seq, unpack_json(r.payload)) for r in reader.records(rtypes=[RecordType.RECON])]
    return [(seq, d) for seq, d in docs if (d.get("resolution") or {}).get("action") == action]


def test_a_size_down_the_torn_tail_lost_is_adopted_from_the_venue(tmp_path):
    with quiet_venue(tmp_path) as venue:
        path = str(tmp_path / "journal")
        runner = Bridged(path, venue.ports.ouch)
        bid, _ = runner.quoting()
        leaves, price = bid.leaves, bid.price
        assert leaves > 100
        shares = leaves - 100
        # the size-down left the box (its ORDER_SENT was written, then lost with the tail: a power
        # loss took it and the input that decided it); the venue applied it
        seq = runner.send_lost(OrderIntent(OrderKind.MODIFY, bid.token, ACME, Side.BUY, price, shares),
                               ouch.ModifyOrder(bid.token, "B", shares))
        modified = runner.unjournaled_answer()
        assert isinstance(modified, ouch.OrderModified) and modified.shares == shares
        runner.crash()
        tear(path, seq, power_loss=True)

        result = recover(recovery_settings(path, ("127.0.0.1", venue.ports.ouch)))
        assert result.reconciled, result.reasons
        assert result.engine.counts["halts"] == 0
        # the RECON record says what was adopted: the order before (as journaled) and after
        (recon_seq, doc), = resolutions(path, "adopt-modify")
        assert doc["resolution"] == {"action": "adopt-modify", "token": bid.token, "symbol_id": ACME,
                                     "side": "B", "price": price, "leaves": leaves, "shares": shares}
        assert doc["before"]["leaves"] == leaves
        # ... journaled just ahead of the venue's Order Modified it stands in for; once that is
        # applied the OMS and the gateway hold the venue's size (recovery then pulls the quote)
        with Reader(path) as reader:
            after = next(r for r in reader.records(rtypes=[RecordType.VENUE_MSG]) if r.seq > recon_seq)
        assert after.seq == recon_seq + 1
        engine = replay_journal(path, fresh_engine(), last_seq=after.seq).engine
        order = engine.oms.get(bid.token)
        assert order.leaves == shares and order.price == price and not order.modify_sent
        assert engine.risk.working_orders()[bid.token] == (ACME, True, shares, price)
        assert engine.counts["halts"] == 0
        assert result.engine.oms.get(bid.token).state is OrderState.CANCELED
        again = replay_journal(path, fresh_engine())
        assert again.deterministic and again.state_hash == result.engine.state_hash()

    # the order records show the venue's modification as adopted, naming the RECON record; the
    # order's other rows keep their journaled origin
    run(["orders", "cat"], path, tmp_path / "out")
    rows = [r for r in read(tmp_path / "out", "orders", "order_events").to_pylist() if r["order_id"] == bid.token]
    modified = [r for r in rows if r["event_type"] == "ORDER_MODIFIED"]
    assert [(r["seq"], r["rts24_event"], r["recovery_status"], r["recovery_seq"]) for r in modified] == [
        (after.seq, "REME", "ADOPTED", recon_seq)]
    assert {r["recovery_status"] for r in rows if r["event_type"] != "ORDER_MODIFIED"} == {None}
    assert {r["rts24_event"] for r in rows} >= {"NEWO", "REME"}
    # CAT: the venue's modification is reported (MEOM) on the order's own key
    cat = [r for r in read(tmp_path / "out", "cat", "order_events").to_pylist() if r["orderID"] == bid.token]
    assert [r["quantity"] for r in cat if r["type"] == "MEOM"] == [shares]
