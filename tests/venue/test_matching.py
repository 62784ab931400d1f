"""Matching engine: the rulebook by example, and properties against the naive reference matcher."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from mm_core.venue import matching as m
from mm_core.venue.reference_matcher import ReferenceMatcher

LISTINGS = [m.Listing("ACME", 1), m.Listing("HALF", 2, half_penny=True)]


def engine() -> m.MatchingEngine:
    return m.MatchingEngine(LISTINGS)


def kinds(events):
    return [type(e).__name__ for e in events]


def test_limit_orders_rest_then_trade_at_resting_price_with_both_sides_executed():
    e = engine()
    ev = e.enter("mm", "b1", "ACME", "B", 300, 100_0000, firm="MMCO")
    assert kinds(ev) == ["Accepted", "BookAdd"]
    ev = e.enter("x", "s1", "ACME", "S", 200, 99_9900, firm="XXCO")
    assert kinds(ev) == ["Accepted", "Executed", "Executed"]
    maker, taker = ev[1], ev[2]
    assert (maker.owner, maker.shares, maker.price, maker.liquidity) == ("mm", 200, 100_0000, "A")
    assert (taker.owner, taker.shares, taker.price, taker.liquidity) == ("x", 200, 100_0000, "R")
    assert maker.match == taker.match == 1
    assert e.depth("ACME") == ([(100_0000, 100)], [])
    assert e.position("mm") == {"ACME": 200} and e.position("x") == {"ACME": -200}


def test_price_then_time_priority_and_partial_fill_rests_remainder():
    e = engine()
    e.enter("a", "1", "ACME", "S", 100, 10_0100)
    e.enter("b", "1", "ACME", "S", 100, 10_0000)
    e.enter("c", "1", "ACME", "S", 100, 10_0000)
    ev = e.enter("d", "1", "ACME", "B", 350, 10_0100)
    makers = [x.owner for x in ev if isinstance(x, m.Executed) and x.liquidity == "A"]
    assert makers == ["b", "c", "a"]
    assert isinstance(ev[-1], m.BookAdd) and ev[-1].shares == 50 and ev[-1].side == "B"


def test_displayed_orders_execute_before_an_earlier_non_displayed_order_at_one_price():
    e = engine()
    e.enter("h", "H1", "ACME", "S", 100, 10_0000, displayed=False)     # first in time, hidden
    e.enter("a", "A1", "ACME", "S", 100, 10_0000)                      # later, displayed
    e.enter("b", "B1", "ACME", "S", 100, 10_0000)                      # later still, displayed
    e.enter("c", "C1", "ACME", "S", 100, 9_9900, displayed=False)      # better price, hidden
    e.enter("h", "H2", "ACME", "S", 100, 10_0000, displayed=False)     # last, hidden
    ev = e.enter("x", "X1", "ACME", "B", 450, 10_0000)
    makers = [(x.token, x.shares, x.price, x.displayed) for x in ev
              if isinstance(x, m.Executed) and x.liquidity == m.LIQUIDITY_ADDED]
    # price first (the hidden 9.99 sell), then at 10.00 displayed in time order, then hidden
    assert makers == [("C1", 100, 9_9900, False), ("A1", 100, 10_0000, True),
                      ("B1", 100, 10_0000, True), ("H1", 100, 10_0000, False),
                      ("H2", 50, 10_0000, False)]
    # a hidden order made displayed by a replace re-enters: behind the displayed queue, ahead
    # of the hidden one
    e.enter("a", "A2", "ACME", "B", 100, 9_0000)
    e.enter("h", "H3", "ACME", "B", 100, 9_0000, displayed=False)
    e.enter("c", "C2", "ACME", "B", 100, 9_0000, displayed=False)
    e.replace("c", "C2", "C3", 100, 9_0000, displayed=True)
    ev = e.enter("y", "Y1", "ACME", "S", 300, 9_0000)
    assert [x.token for x in ev if isinstance(x, m.Executed) and x.liquidity == "A"] == \
        ["A2", "C3", "H3"]


def test_ioc_remainder_is_canceled_not_booked():
    e = engine()
    e.enter("a", "1", "ACME", "S", 100, 10_0000)
    ev = e.enter("b", "1", "ACME", "B", 300, 10_0000, tif=m.IOC)
    assert kinds(ev) == ["Accepted", "Executed", "Executed", "Canceled"]
    assert ev[-1].shares == 200 and ev[-1].reason == m.CANCEL_IOC
    assert e.depth("ACME") == ([], [])


def test_rejects_name_the_reason():
    e = engine()
    assert e.enter("a", "1", "NOPE", "B", 100, 10_0000)[0].reason == m.REJECT_INVALID_STOCK
    assert e.enter("a", "2", "ACME", "B", 100, 10_0050)[0].reason == m.REJECT_INVALID_PRICE
    assert e.enter("a", "3", "HALF", "B", 100, 10_0050)[0].__class__ is m.Accepted   # $0.005 tier
    assert e.enter("a", "4", "ACME", "B", 0, 10_0000)[0].reason == m.REJECT_SHARES
    assert e.enter("a", "5", "ACME", "Q", 100, 10_0000)[0].reason == m.REJECT_OTHER
    assert e.enter("a", "6", "ACME", "B", 100, 0)[0].reason == m.REJECT_INVALID_PRICE
    assert isinstance(e.enter("a", "3", "ACME", "B", 100, 10_0000)[0], m.Ignored)


def test_cancel_reduce_and_replace_priority_rules():
    e = engine()
    e.enter("a", "a1", "ACME", "B", 500, 10_0000)
    e.enter("b", "b1", "ACME", "B", 500, 10_0000)
    # a reduces by cancel (keeps priority), then reduces by replace (keeps priority)
    ev = e.cancel("a", "a1", 400)
    assert kinds(ev) == ["Canceled", "BookCancel"] and ev[0].shares == 100 and not ev[1].delete
    ev = e.replace("a", "a1", "a2", 300, 10_0000)
    assert kinds(ev) == ["Replaced", "BookCancel"] and ev[0].ref == 1
    ev = e.enter("s", "s1", "ACME", "S", 100, 10_0000)
    assert ev[1].owner == "a"
    # b grows its size: loses priority behind a
    ev = e.replace("b", "b1", "b2", 600, 10_0000)
    assert kinds(ev) == ["BookCancel", "Replaced", "BookAdd"] and ev[1].ref != 2
    ev = e.enter("s", "s2", "ACME", "S", 250, 10_0000)
    assert [x.owner for x in ev if isinstance(x, m.Executed) and x.liquidity == "A"] == ["a", "b"]
    assert kinds(e.cancel("a", "a2")) == ["Ignored"]      # a2 was filled: dead token
    assert e.cancel("b", "b2", 10_000) == []              # a larger intended size is a no-op


def test_replace_to_a_crossing_price_trades_and_to_zero_cancels():
    e = engine()
    e.enter("a", "a1", "ACME", "S", 100, 10_0100)
    e.enter("b", "b1", "ACME", "B", 100, 10_0000)
    ev = e.replace("b", "b1", "b2", 100, 10_0100)
    assert kinds(ev) == ["BookCancel", "Replaced", "Executed", "Executed"]
    e.enter("b", "b3", "ACME", "B", 100, 10_0000)
    ev = e.replace("b", "b3", "b4", 0, 10_0000)
    assert kinds(ev) == ["Canceled", "BookCancel"] and ev[1].delete
    assert e.live_orders() == []


def test_self_match_prevention_cancels_the_resting_order_and_keeps_matching():
    e = engine()
    e.enter("mm", "own", "ACME", "S", 100, 10_0000, firm="MMCO")
    e.enter("lp", "other", "ACME", "S", 100, 10_0000, firm="LPCO")
    ev = e.enter("mm2", "buy", "ACME", "B", 100, 10_0000, firm="MMCO")
    assert kinds(ev) == ["Accepted", "Canceled", "BookCancel", "Executed", "Executed"]
    assert ev[1].owner == "mm" and ev[1].reason == m.CANCEL_SELF_MATCH
    assert ev[3].owner == "lp"


def test_close_cancels_everything_and_rejects_new_orders():
    e = engine()
    e.enter("a", "1", "ACME", "B", 100, 10_0000)
    e.enter("a", "2", "ACME", "S", 100, 10_0100)
    ev = e.close()
    assert [x.reason for x in ev if isinstance(x, m.Canceled)] == [m.CANCEL_TIMEOUT] * 2   # expired
    assert e.enter("a", "3", "ACME", "B", 100, 10_0000)[0].reason == m.REJECT_CLOSED


def test_modify_reduces_in_place_and_changes_only_the_sell_type():
    e = engine()
    e.enter("a", "a1", "ACME", "T", 500, 10_0100)           # sell short
    e.enter("a", "a2", "ACME", "S", 300, 10_0100)           # behind a1 at the same price
    e.enter("b", "b1", "ACME", "B", 200, 9_9900)
    ev = e.modify("a", "a1", "E", 200)
    assert kinds(ev) == ["Modified", "BookCancel"]
    assert (ev[0].side, ev[0].shares, ev[1].shares, ev[1].delete) == ("E", 200, 300, False)
    assert kinds(e.modify("a", "a1", "S", 900)) == ["Modified"]   # larger size ignored, side kept
    assert kinds(e.modify("a", "a1", "B", 100)) == ["Ignored"]    # a sell never becomes a buy
    assert kinds(e.modify("b", "b1", "S", 100)) == ["Ignored"]    # nor a buy a sell
    # priority kept: a buyer takes a1's 200 before a2
    fills = [x for x in e.enter("c", "c1", "ACME", "B", 250, 10_0100) if isinstance(x, m.Executed)
             and x.liquidity == m.LIQUIDITY_ADDED]
    assert [(x.token, x.shares) for x in fills] == [("a1", 200), ("a2", 50)]
    assert kinds(e.modify("a", "a1", "S", 10)) == ["Ignored"]     # a1 is filled: dead token
    assert kinds(e.modify("a", "a2", "S", 0)) == ["Canceled", "BookCancel"]   # zero cancels


# ----------------------------------------------------------------------------- properties
OWNERS = ["o1", "o2", "o3"]
FIRMS = {"o1": "F1", "o2": "F2", "o3": "F1"}     # o1 and o3 share a firm: self-match prevention
prices = st.integers(min_value=98, max_value=102).map(lambda p: p * 100)   # a few ticks wide
command = st.one_of(
    st.tuples(st.just("enter"), st.sampled_from(OWNERS), st.sampled_from("BST"),
              st.integers(1, 400), prices, st.sampled_from([m.IOC, m.DAY, m.DAY]),
              st.sampled_from([True, True, False])),      # a third non-displayed
    st.tuples(st.just("cancel"), st.sampled_from(OWNERS), st.integers(0, 30), st.integers(0, 300)),
    st.tuples(st.just("replace"), st.sampled_from(OWNERS), st.integers(0, 30),
              st.integers(0, 400), prices, st.sampled_from([None, None, True, False])),
    st.tuples(st.just("modify"), st.sampled_from(OWNERS), st.integers(0, 30),
              st.sampled_from("BSTE"), st.integers(0, 300)),
    st.tuples(st.just("price_test"), st.sampled_from(OWNERS)),   # Rule 201 starts for ACME
)


def drive(target, commands):
    """Apply a generated command stream; tokens are numbered per owner so both sides agree."""
    issued = {o: 0 for o in OWNERS}
    out = []
    for cmd in commands:
        owner = cmd[1]
        if cmd[0] == "enter":
            issued[owner] += 1
            _, _, side, shares, price, tif, shown = cmd
            out.append(target.enter(owner, f"T{issued[owner]}", "ACME", side, shares, price, tif,
                                    FIRMS[owner], shown))
        elif cmd[0] == "cancel":
            out.append(target.cancel(owner, f"T{cmd[2]}", cmd[3]))
        elif cmd[0] == "modify":
            out.append(target.modify(owner, f"T{cmd[2]}", cmd[3], cmd[4]))
        elif cmd[0] == "price_test":
            target.start_price_test("ACME")
        else:
            issued[owner] += 1
            out.append(target.replace(owner, f"T{cmd[2]}", f"T{issued[owner]}", cmd[3], cmd[4],
                                      displayed=cmd[5]))
    out.append(target.close())
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(command, max_size=60))
def test_engine_matches_the_naive_oracle_event_for_event(commands):
    assert drive(engine(), commands) == drive(ReferenceMatcher(LISTINGS), commands)


@settings(max_examples=300, deadline=None)
@given(st.lists(command, max_size=60))
def test_book_never_crossed_and_shares_conserved(commands):
    e = engine()
    issued = {o: 0 for o in OWNERS}
    entered = executed = canceled = 0
    for cmd in commands:
        owner = cmd[1]
        if cmd[0] == "enter":
            issued[owner] += 1
            events = e.enter(owner, f"T{issued[owner]}", "ACME", *cmd[2:6], FIRMS[owner], cmd[6])
        elif cmd[0] == "cancel":
            events = e.cancel(owner, f"T{cmd[2]}", cmd[3])
        elif cmd[0] == "modify":
            before = {o.token: o.shares for o in e.live_orders(owner)}.get(f"T{cmd[2]}", 0)
            events = e.modify(owner, f"T{cmd[2]}", cmd[3], cmd[4])
            for ev in events:
                if isinstance(ev, m.Modified):   # a modify never adds shares
                    assert ev.shares <= before
                    canceled += before - ev.shares
        elif cmd[0] == "price_test":
            e.start_price_test("ACME")
            events = []
        else:
            issued[owner] += 1
            before = {o.token: o.shares for o in e.live_orders(owner)}.get(f"T{cmd[2]}", 0)
            events = e.replace(owner, f"T{cmd[2]}", f"T{issued[owner]}", cmd[3], cmd[4],
                               displayed=cmd[5])
            for ev in events:
                if isinstance(ev, m.Replaced):   # the replace re-sizes: count the difference
                    entered += ev.shares - before
        for ev in events:
            if isinstance(ev, m.Accepted):
                entered += ev.shares
            elif isinstance(ev, m.Executed):
                executed += ev.shares          # each side counts once: total = 2 x traded
            elif isinstance(ev, m.Canceled):
                canceled += ev.shares
        bid, ask = e.bbo("ACME")
        assert bid is None or ask is None or bid < ask
        resting = sum(o.shares for o in e.live_orders())
        assert entered == resting + executed + canceled
    buys, sells = e.depth("ACME")
    assert sum(s for _, s in buys) + sum(s for _, s in sells) == sum(o.shares for o in e.live_orders())


def test_price_ceiling_is_199999_99_dollars():
    e = engine()
    assert m.MAX_PRICE == 1_999_999_900
    assert e.enter("a", "hi", "ACME", "B", 100, 2_000_000_000)[0].reason == m.REJECT_INVALID_PRICE
    assert kinds(e.enter("a", "top", "ACME", "B", 100, 1_999_999_900))[0] == "Accepted"
