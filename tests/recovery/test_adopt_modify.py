"""Orders of ours the venue received while the journal lost their ORDER_SENT in a torn tail, on the
embedded venue on loopback. A size-down (OUCH Modify): recovery adopts the venue's version (a RECON
resolution with the order's size before and after), the OMS and the gateway end with the venue's
size. Orders replay decides again because the input that decided them survived: adopted as the
venue's answers arrive, never sent again. A later replay of the recovered journal rebuilds the
same engine, and the reports show what was adopted."""
from __future__ import annotations

from journal import Reader, RecordType
from journal.catalogue import unpack
from mm_core.events import SendOrder
from mm_core.oms import OrderState
from mm_core.protocol import ouch
from mm_core.types import OrderIntent, OrderKind, Side
from recovery.reconcile import AdoptModify
from recovery.recover import recover
from recovery.replay import replay_journal
from reports.run import run
from tests.mm_core.wire import ACME
from tests.recovery.bridged import Bridged, quiet_venue
from tests.recovery.test_adopt_gateway import recon_docs
from tests.recovery.journaling import RunnerLike, fresh_engine, recovery_settings, tear
from tests.reports.test_adopted_drill import read, rejects


def resolutions(path: str, action: str) -> list[tuple[int, dict]]:
    return [(seq, d) for seq, d in recon_docs(path) if (d.get("resolution") or {}).get("action") == action]


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
    # (recovery pulled the quote when it began, before the venue's answers were delivered)
    assert [r["event_type"] for r in rows] == ["SENT_NEW", "ACCEPTED", "SENT_CANCEL", "ORDER_MODIFIED", "CANCELED"]
    assert rejects(tmp_path / "out", "orders") == []
    # CAT: the venue's modification is reported (MEOM) on the order's own key
    cat = [r for r in read(tmp_path / "out", "cat", "order_events").to_pylist() if r["orderID"] == bid.token]
    assert [r["quantity"] for r in cat if r["type"] == "MEOM"] == [shares]


def test_orders_replay_decides_again_without_their_order_sent_are_adopted_not_sent_again(tmp_path):
    """The torn tail kept the market data input the engine requoted on and lost the ORDER_SENTs of
    its replaces, which the venue applied: replay decides them again (the same tokens), recovery
    journals that they were never recorded as sent, adopts the venue's version of each as its
    answer arrives (naming the order it replaces as it was), sends none of them again, and a later
    replay of the recovered journal decides the same."""
    with quiet_venue(tmp_path) as venue:
        path = str(tmp_path / "journal")
        runner = Bridged(path, venue.ports.ouch)
        bid, ask = runner.quoting()
        before = {t: (o.leaves, o.price) for t, o in ((bid.token, bid), (ask.token, ask))}
        moved = runner.market_moved(3)
        with Reader(path) as reader:
            md_seq = reader.last_seq + 1
        sent = [a.intent for a in RunnerLike.feed(runner, moved) if isinstance(a, SendOrder)]
        replaces = {i.token: i.orig_token for i in sent if i.kind is OrderKind.REPLACE}
        assert set(replaces.values()) == {bid.token, ask.token}, sent
        answers = runner.unjournaled_answers()
        assert {a.token for a in answers if isinstance(a, ouch.Replaced)} == set(replaces)
        runner.crash()
        tear(path, md_seq + 1, power_loss=True)       # the input kept, its first order lost

        result = recover(recovery_settings(path, ("127.0.0.1", venue.ports.ouch)))
        assert [i.token for i in (a.intent for a in result.replay.unsent)] == [i.token for i in sent]
        assert result.engine.counts["halts"] == 0, result.reasons
        adopted = {d["resolution"]["token"]: (seq, d) for seq, d in resolutions(path, "adopt")}
        assert set(adopted) == set(replaces) and len(resolutions(path, "adopt")) == len(replaces)
        # adopted ahead of the BEGIN record: the cancels recovery sends when it begins follow them
        ((begin, begun),) = [(seq, d) for seq, d in recon_docs(path) if d["kind"] == "begin"]
        assert all(seq < begin for seq, _ in adopted.values())
        # the first adoption closes the crashed session for a later replay (every order decided
        # again is listed); BEGIN lists only those the venue never received
        (_, first_adoption) = min(adopted.values(), key=lambda a: a[0])
        assert first_adoption["unsent_orders"] == [i.token for i in sent]
        assert begun["unsent_orders"] == [i.token for i in sent if i.token not in replaces]
        for token, (_, doc) in adopted.items():
            assert "replay decided again" in doc["why"] and doc["resolution"]["orig_token"] == replaces[token]
            # unanswered when recovery began, so pulled with the other quotes until reconciled
            assert doc["before"]["state"] in ("pending-new", "pending-cancel")
            original = doc["replaces"]
            assert original["token"] == replaces[token]
            assert (original["before"]["leaves"], original["before"]["price"]) == before[original["token"]]
        # nothing was sent twice: recovery's own orders are cancels (it pulls quotes while unreconciled)
        with Reader(path) as reader:
            resent = [r for r in reader.records(rtypes=[RecordType.ORDER_SENT]) if r.seq > md_seq]
        assert all(unpack(RecordType.ORDER_SENT, r.payload)["msg_type"] == ord("X") for r in resent)
        assert {o.token for o in venue.live_orders("MM01")} <= set(replaces)
        again = replay_journal(path, fresh_engine())
        assert again.deterministic and again.state_hash == result.engine.state_hash()

    # the replacements' rows have an origin: the adoption's RECON record
    run(["orders"], path, tmp_path / "out")
    rows = [r for r in read(tmp_path / "out", "orders", "order_events").to_pylist() if r["order_id"] in replaces]
    assert rows and {(r["order_id"], r["recovery_status"], r["recovery_seq"]) for r in rows} == {
        (t, "ADOPTED", adopted[t][0]) for t in replaces}
    # ... also the cancels recovery sent them when it began (adopted ahead of its BEGIN record)
    assert {r["event_type"] for r in rows} >= {"SENT_CANCEL", "REPLACED", "CANCELED"}
    assert rejects(tmp_path / "out", "orders") == []


def test_which_venue_answers_are_adopted():
    """A size-down is adopted when no modify of the order is on its way (its ORDER_SENT lost with
    the input that decided it) or when replay decided it again without its ORDER_SENT; the answer to
    a journaled modify, or one the order cannot take, is not (the engine applies or halts on it)."""
    from recovery.recover import _adoption, _Unjournaled
    from tests.recovery.test_reconcile import NOW, frame, quoting
    engine, _, bid, ask = quoting()

    def answer(token, shares):
        return _adoption(engine, frame(ouch.encode(ouch.OrderModified(NOW, token, "B", shares))), none)

    none = _Unjournaled(set(), set())
    assert answer(bid.token, bid.leaves - 100) == AdoptModify(bid.token, ACME, "B", bid.price, bid.leaves,
                                                              bid.leaves - 100)
    assert answer(bid.token, bid.leaves + 100) is None          # more than it has left: not ours
    assert answer("MM9999999999", 100) is None                  # no such order
    # a modify of the ask journaled (the engine decided and sent it): its answer is its own
    engine.oms.on_sent(OrderIntent(OrderKind.MODIFY, ask.token, ACME, Side.SELL, ask.price, 100), NOW)
    modified = frame(ouch.encode(ouch.OrderModified(NOW, ask.token, "S", 100)))
    assert _adoption(engine, modified, none) is None
    # ... decided again by replay, its ORDER_SENT lost: adopted once, named as such
    redecided = _Unjournaled(set(), {ask.token})
    assert _adoption(engine, modified, redecided) == AdoptModify(ask.token, ACME, "S", ask.price, ask.leaves, 100)
    assert redecided.adopted == {ask.token} and not redecided.modifies
    assert _adoption(engine, modified, redecided) is None
