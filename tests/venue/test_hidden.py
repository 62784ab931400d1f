"""Non-displayed orders (OUCH display 'N') trade but never show on ITCH: no Add Order, no
Cancel/Delete, and their executions print as non-displayable trades ('P', reference 0)."""
from __future__ import annotations

from mm_core.protocol import itch, ouch
from mm_core.venue import matching as m, restart
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog
from tests.venue.test_server import connect, messages

BOOK = (m.BookAdd, m.BookCancel)


def engine() -> m.MatchingEngine:
    return m.MatchingEngine([m.Listing("ACME", 1)])


def test_a_hidden_order_rests_trades_and_leaves_without_book_events():
    e = engine()
    rest = e.enter("A", "H1", "ACME", "S", 300, 10_0000, displayed=False)
    assert [type(x) for x in rest] == [m.Accepted]
    assert e.bbo("ACME") == (None, 10_0000)                 # it is in the book, matching
    fills = e.enter("B", "T1", "ACME", "B", 100, 10_0000, m.IOC)
    maker, taker = [x for x in fills if isinstance(x, m.Executed)]
    assert (maker.liquidity, maker.displayed) == (m.LIQUIDITY_ADDED, False)
    assert not [x for x in fills if isinstance(x, BOOK)]
    assert not [x for x in e.modify("A", "H1", "S", 150) if isinstance(x, BOOK)]
    assert not [x for x in e.replace("A", "H1", "H2", 100, 10_0000) if isinstance(x, BOOK)]
    assert not [x for x in e.cancel("A", "H2") if isinstance(x, BOOK)]
    assert e.live_orders() == []


def test_a_replace_that_changes_the_display_re_enters_the_order():
    e = engine()
    e.enter("A", "H1", "ACME", "B", 300, 10_0000, displayed=False)
    shown = e.replace("A", "H1", "V1", 300, 10_0000, displayed=True)
    assert [type(x) for x in shown] == [m.Replaced, m.BookAdd]
    assert shown[1].ref == shown[0].ref
    hidden = e.replace("A", "V1", "H2", 200, 10_0000, displayed=False)
    assert [type(x) for x in hidden] == [m.BookCancel, m.Replaced]
    assert hidden[0].delete and hidden[0].ref == shown[1].ref
    kept = e.replace("A", "H2", "H3", 100, 10_0000)          # display as it was: still hidden
    assert [type(x) for x in kept] == [m.Replaced] and kept[0].ref == hidden[1].ref


def test_on_the_wire_a_hidden_order_is_never_added_and_its_trade_prints_as_p(
        make_venue, receiver):
    venue: Venue = make_venue()
    with connect(venue, "MM01") as maker, connect(venue, "MM02") as taker:
        messages(maker, 1), messages(taker, 1)
        maker.enter("SHOWN1", "S", 100, "ACME", 10_0100)
        maker.enter("HIDE1", "S", 300, "ACME", 10_0000, display="N")
        shown, hidden = messages(maker, 2)
        assert hidden.display == "N" and hidden.order_state == "L"
        taker.enter("LIFT1", "B", 200, "ACME", 10_0000, tif=ouch.TIF_IOC)
        _, lift = messages(taker, 2)
        (fill,) = messages(maker, 1)
        maker.enter("HIDE2", "B", 100, "ACME", 9_0000, display="N")
        messages(maker, 1)
        maker.order(ouch.CancelOrder("HIDE2", 0))
        maker.order(ouch.CancelOrder("SHOWN1", 0))
        messages(maker, 2)
    receiver.run(None, lambda r: any(isinstance(x, itch.OrderDelete) for x in r.decoded()), 5.0)
    public = receiver.decoded()
    adds = [x for x in public if isinstance(x, itch.AddOrder)]
    assert [(a.order_ref, a.price) for a in adds] == [(shown.order_ref, 10_0100)]
    trades = [x for x in public if isinstance(x, itch.Trade)]
    assert [(t.order_ref, t.side, t.shares, t.stock.strip(), t.price, t.match_number)
            for t in trades] == [(0, "S", 200, "ACME", 10_0000, fill.match_number)]
    assert lift.match_number == fill.match_number and fill.executed_shares == 200
    assert not [x for x in public if isinstance(x, (itch.OrderExecuted, itch.OrderCancel))]
    deleted = [x.order_ref for x in public if isinstance(x, itch.OrderDelete)]
    assert deleted == [shown.order_ref]                    # the hidden cancel left no trace


def test_a_restart_counts_the_match_numbers_of_hidden_trades(tmp_path):
    store = SessionLog(tmp_path / "A.itch")
    store.append(itch.encode(itch.OrderExecuted(1, 0, 0, 5, 100, 9)))
    store.append(itch.encode(itch.Trade(1, 0, 0, 0, "B", 100, "ACME", 10_0000, 12)))
    store.flush()
    assert restart.published_high_water([store]) == (1, 13)
    store.close()
