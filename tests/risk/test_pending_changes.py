"""A replace or a size-down the venue has not answered yet: the gateway counts what could still
trade until the venue confirms (a replace: what is left of the original plus the whole
replacement, as the original may fill before the replace lands, which then rests in full; a
size-down: the larger size), and a refused replace leaves
the gateway exactly as if it had never been sent (SEC 15c3-5 / RTS 6: the exposure checked is what
the venue may still execute, not what we asked for)."""
import pytest

from journal.catalogue import Side
from mm_core.risk import Limits, RiskGateway
from mm_core.risk.checks import CheckId
from mm_core.types import OrderKind
from tests.risk.conftest import FAIR, T0, healthy, limits_text, make_gateway, order

MODES = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])


def view(gw, symbol_id=1):
    """Everything the gateway holds about working orders on one symbol."""
    sym = gw._symbols[symbol_id]
    return (gw.working_orders(), sym.open_buy, sym.open_sell, dict(sym.own_buys), dict(sym.own_sells))


def entered(gw, qty=300, price=FAIR - 100, side=Side.BUY, token="A1"):
    mark = "B" if side is Side.BUY else "T"
    assert gw.check(order(qty=qty, price=price, side=side, token=token), T0, mark).allowed
    return token


def replace(gw, orig, token, qty, price, side=Side.BUY):
    intent = order(kind=OrderKind.REPLACE, token=token, orig_token=orig, qty=qty, price=price, side=side)
    assert gw.check(intent, T0, "B" if side is Side.BUY else "T").allowed
    return token


def test_a_refused_replace_restores_the_original_exactly():
    gw = make_gateway()
    entered(gw)
    entered(gw, qty=200, price=FAIR + 100, side=Side.SELL, token="S1")
    before = view(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_order_done("A2", T0)                  # OUCH Rejected of the replacement token
    assert view(gw) == before
    assert gw.working_orders()["A1"] == (1, True, 300, FAIR - 100)


def test_a_refused_replace_restores_what_is_left_after_the_original_filled_meanwhile():
    gw = make_gateway()
    entered(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_fill(1, Side.BUY, 120, FAIR - 100, T0, token="A1")     # the original traded first
    assert gw._symbols[1].open_buy == 280                          # (300 - 120) + 100
    gw.on_order_done("A2", T0)
    assert gw.working_orders() == {"A1": (1, True, 180, FAIR - 100)}
    assert gw._symbols[1].open_buy == 180 and gw._symbols[1].own_buys == {"A1": FAIR - 100}


def test_until_answered_a_replace_counts_both_orders_and_both_prices():
    gw = make_gateway(defaults={"max_position": 450})
    entered(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    sym = gw._symbols[1]
    assert sym.open_buy == 400           # the original 300 may fill, then the replacement's 100
    assert sym.own_buys == {"A1": FAIR - 100, "A2": FAIR - 50}
    # 300 + 100 + 100 > 450: refused while the original may still rest
    assert gw.check(order(qty=100, price=FAIR - 200, token="B1"), T0).check is CheckId.POSITION_LIMIT
    # a sell at the original's price would trade with it if the replace is refused
    assert gw.check(order(side=Side.SELL, price=FAIR - 100, token="S9"), T0).check is CheckId.SELF_TRADE
    gw.on_order_confirmed("A2", 100, T0)              # OUCH Replaced: the original is gone
    assert gw.working_orders() == {"A2": (1, True, 100, FAIR - 50)}
    assert sym.open_buy == 100 and sym.own_buys == {"A2": FAIR - 50}
    assert gw.check(order(qty=100, price=FAIR - 200, token="B2"), T0).allowed


def test_a_replace_up_counts_the_replacement_at_once():
    gw = make_gateway()
    entered(gw, qty=100)
    replace(gw, "A1", "A2", 400, FAIR - 50)
    assert gw._symbols[1].open_buy == 500
    gw.on_order_done("A2", T0)
    assert gw.working_orders() == {"A1": (1, True, 100, FAIR - 100)} and gw._symbols[1].open_buy == 100


def test_an_original_that_leaves_while_its_replace_is_in_flight_is_not_restored():
    gw = make_gateway()
    entered(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_order_done("A1", T0)                   # canceled at the venue before the replace landed
    assert gw._symbols[1].open_buy == 100 and "A1" not in gw._symbols[1].own_buys
    gw.on_order_done("A2", T0)                   # the replacement can never live (abandoned)
    assert gw.working_orders() == {} and gw._symbols[1].open_buy == 0 and not gw._symbols[1].own_buys


def test_a_fill_of_the_replacement_confirms_the_replace():
    gw = make_gateway()
    entered(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_fill(1, Side.BUY, 40, FAIR - 50, T0, token="A2")
    assert gw.working_orders() == {"A2": (1, True, 60, FAIR - 50)}
    assert gw._symbols[1].open_buy == 60 and gw._symbols[1].own_buys == {"A2": FAIR - 50}


def test_a_size_down_counts_the_larger_size_until_the_venue_confirms():
    gw = make_gateway(defaults={"max_position": 350})
    entered(gw)
    modify = order(kind=OrderKind.MODIFY, token="A1", qty=100, price=FAIR - 100)
    assert gw.check(modify, T0).allowed
    assert gw._symbols[1].open_buy == 300             # the 300 may still fill until confirmed
    assert gw.check(order(qty=100, price=FAIR - 200, token="B1"), T0).check is CheckId.POSITION_LIMIT
    gw.on_fill(1, Side.BUY, 50, FAIR - 100, T0, token="A1")      # a fill crosses the modify
    assert gw._symbols[1].open_buy == 250
    gw.on_order_confirmed("A1", 100, T0)              # OUCH Order Modified: 100 left
    assert gw.working_orders() == {"A1": (1, True, 100, FAIR - 100)} and gw._symbols[1].open_buy == 100


def test_resynchronising_working_orders_drops_pending_replaces():
    gw = make_gateway()
    entered(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_order_state([], 0, T0)
    gw.on_order_done("A2", T0)
    assert gw.working_orders() == {} and gw._symbols[1].open_buy == 0 and not gw._symbols[1].own_buys


def test_an_abandoned_replacement_then_its_dead_original_leave_nothing_behind():
    """The engine reports a replacement the OMS abandoned before the original that died."""
    gw = make_gateway()
    entered(gw)
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_order_done("A2", T0)
    gw.on_order_done("A1", T0)
    assert gw.working_orders() == {} and gw._symbols[1].open_buy == 0 and not gw._symbols[1].own_buys


def replaced_once(compiled: bool):
    """A gateway (max_position 300) with A (100) replaced by B (100) and the venue yet to answer."""
    gw = RiskGateway(Limits.from_toml(limits_text(defaults={"max_position": 300})), compiled=compiled)
    healthy(gw, T0)
    entered(gw, qty=100, price=FAIR - 1, token="A")
    replace(gw, "A", "B", 100, FAIR - 2)
    assert gw.working_orders() == {"B": (1, True, 200, FAIR - 2)}
    return gw


@MODES
def test_a_replace_of_a_replacement_in_flight_is_refused(compiled):
    """Which of A and B rests is not known until the venue answers A->B; a chain B->C would leave
    one of them counted too small whichever answer comes first."""
    gw = replaced_once(compiled)
    chained = order(kind=OrderKind.REPLACE, token="C", orig_token="B", qty=100, price=FAIR - 3)
    d = gw.check(chained, T0)
    assert not d.allowed and d.check is CheckId.INVALID_ORDER, d
    assert gw.working_orders() == {"B": (1, True, 200, FAIR - 2)}
    gw.on_order_confirmed("B", 100, T0)                  # OUCH Replaced: A is gone
    gw.on_order_done("A", T0)
    assert gw.working_orders() == {"B": (1, True, 100, FAIR - 2)}
    replace(gw, "B", "C", 100, FAIR - 3)                 # answered: B may be replaced now


@MODES
def test_an_adopted_replacement_of_a_replacement_in_flight_counts_beside_it(compiled):
    """Reconciliation adopts C, a replace of B, while A->B is unanswered: C counts in full beside B,
    so the venue taking A->B cannot end C's count (before, it did: C was counted at its own 100
    while B's 100 could still fill, and a buy of 200 passed a max_position of 300)."""
    gw = replaced_once(compiled)
    gw.on_order_adopted("C", 1, Side.BUY, 100, FAIR - 3, orig_token="B", now_ns=T0)
    gw.on_order_confirmed("B", 100, T0)                  # the venue took A->B; B->C unanswered
    gw.on_order_done("A", T0)
    assert gw.working_orders() == {"B": (1, True, 100, FAIR - 2), "C": (1, True, 100, FAIR - 3)}
    d = gw.check(order(qty=200, price=FAIR - 4, token="D"), T0)     # 100 + 100 + 200 > 300
    assert not d.allowed and d.check is CheckId.POSITION_LIMIT, d
    gw.on_order_confirmed("C", 100, T0)                  # then it takes B->C
    gw.on_order_done("B", T0)
    assert gw.working_orders() == {"C": (1, True, 100, FAIR - 3)}
    assert gw.check(order(qty=200, price=FAIR - 4, token="D"), T0).allowed


@MODES
def test_an_adopted_chain_the_venue_refuses_in_turn_leaves_the_first_order(compiled):
    gw = replaced_once(compiled)
    gw.on_order_adopted("C", 1, Side.BUY, 100, FAIR - 3, orig_token="B", now_ns=T0)
    gw.on_order_done("B", T0)                            # A->B refused: A rests on
    assert gw.working_orders() == {"A": (1, True, 100, FAIR - 1), "C": (1, True, 100, FAIR - 3)}
    gw.on_order_done("C", T0)                            # B->C refused too (B never lived)
    assert gw.working_orders() == {"A": (1, True, 100, FAIR - 1)}
    assert gw._symbols[1].open_buy == 100 and gw._symbols[1].own_buys == {"A": FAIR - 1}


@MODES
def test_a_modify_of_a_replacement_in_flight_keeps_the_original_counted(compiled):
    """A may still fill its 100 before A->B lands, so a MODIFY of B changes only B's own 100: a
    modify up to 150 counts 250 (it was counted at its own 150, or passed unchecked as a
    size-down of the 200, and a buy of 100 then passed a max_position of 300)."""
    gw = replaced_once(compiled)
    modify = order(kind=OrderKind.MODIFY, token="B", qty=150, price=FAIR - 2)
    assert gw.check(modify, T0).allowed
    assert gw.working_orders() == {"B": (1, True, 250, FAIR - 2)}
    assert gw._symbols[1].open_buy == 250 and gw._replacing["B"][3] == 150
    d = gw.check(order(qty=100, price=FAIR - 4, token="D"), T0)     # 100 + 150 + 100 > 300
    assert not d.allowed and d.check is CheckId.POSITION_LIMIT, d
    too_big = order(kind=OrderKind.MODIFY, token="B", qty=250, price=FAIR - 2)    # 100 + 250
    d = gw.check(too_big, T0)
    assert not d.allowed and d.check is CheckId.POSITION_LIMIT, d
    gw.on_fill(1, Side.BUY, 100, FAIR - 1, T0, token="A")            # A traded before the replace
    assert gw.working_orders() == {"B": (1, True, 150, FAIR - 2)}
    gw.on_order_confirmed("B", 100, T0)                  # OUCH Replaced: B rests at its 100
    gw.on_order_done("A", T0)
    assert gw.working_orders() == {"B": (1, True, 100, FAIR - 2)} and gw._symbols[1].open_buy == 100


@MODES
def test_a_size_down_of_a_replacement_in_flight_is_one_below_its_own_size(compiled):
    """B's 150 is no size-down of B's 100 (it passed as one, being under the 200 counted)."""
    gw = replaced_once(compiled)
    gw.replace_limits(limits_text(version=2, defaults={"max_position": 240}))
    d = gw.check(order(kind=OrderKind.MODIFY, token="B", qty=150, price=FAIR - 2), T0)
    assert not d.allowed and d.check is CheckId.POSITION_LIMIT, d                # 100 + 150 > 240
    assert gw.check(order(kind=OrderKind.MODIFY, token="B", qty=60, price=FAIR - 2), T0).allowed
    assert gw.working_orders() == {"B": (1, True, 200, FAIR - 2)}    # the larger until confirmed
    gw.on_order_done("B", T0)                            # A->B refused: A rests on, whole
    assert gw.working_orders() == {"A": (1, True, 100, FAIR - 1)} and gw._symbols[1].open_buy == 100


@MODES
def test_a_modify_of_a_replacement_in_flight_on_another_side_is_refused(compiled):
    gw = replaced_once(compiled)
    other = order(kind=OrderKind.MODIFY, token="B", qty=300, price=FAIR + 2, side=Side.SELL)
    d = gw.check(other, T0, "T")
    assert not d.allowed and d.check is CheckId.INVALID_ORDER, d
    assert gw.working_orders() == {"B": (1, True, 200, FAIR - 2)} and gw._symbols[1].open_sell == 0


@MODES
def test_a_modify_of_an_original_whose_replace_is_in_flight_is_refused(compiled):
    """A is counted inside B until the venue answers A->B; a MODIFY of A counted it a second time
    as a new order, and the answers that followed then raised KeyError out of the feeds."""
    gw = replaced_once(compiled)
    d = gw.check(order(kind=OrderKind.MODIFY, token="A", qty=100, price=FAIR - 1), T0)
    assert not d.allowed and d.check is CheckId.INVALID_ORDER, d
    assert gw.working_orders() == {"B": (1, True, 200, FAIR - 2)}
    gw.on_order_done("A", T0)
    gw.on_order_confirmed("B", 100, T0)
    assert gw.working_orders() == {"B": (1, True, 100, FAIR - 2)} and gw._symbols[1].open_buy == 100


@MODES
def test_a_size_down_that_changes_the_side_byte_counts_the_larger_size_until_confirmed(compiled):
    """OUCH Modify carries the side byte: a short sale (T) sized down to 100 and marked exempt (E)
    is checked in full, and, as any size-down, counted at its 300 until the venue confirms (it was
    counted at 100 at once, and a sell of 200 then passed a max_position of 350)."""
    gw = RiskGateway(Limits.from_toml(limits_text(defaults={"max_position": 350})), compiled=compiled)
    healthy(gw, T0)
    entered(gw, qty=300, price=FAIR + 100, side=Side.SELL, token="S1")
    modify = order(kind=OrderKind.MODIFY, token="S1", qty=100, price=FAIR + 100, side=Side.SELL)
    assert gw.check(modify, T0, "E").allowed
    assert gw.working_orders() == {"S1": (1, False, 300, FAIR + 100)}
    assert gw._symbols[1].open_sell == 300 and gw._symbols[1].sho.marks == {"S1": "E"}
    d = gw.check(order(qty=100, price=FAIR + 200, side=Side.SELL, token="S2"), T0, "T")   # 300 + 100
    assert not d.allowed and d.check is CheckId.POSITION_LIMIT, d
    gw.on_order_confirmed("S1", 100, T0)              # OUCH Order Modified: 100 left, marked E
    assert gw.working_orders() == {"S1": (1, False, 100, FAIR + 100)} and gw._symbols[1].open_sell == 100
    assert gw.check(order(qty=100, price=FAIR + 200, side=Side.SELL, token="S3"), T0, "T").allowed


@MODES
def test_a_size_down_that_changes_the_side_byte_keeps_the_venue_price(compiled):
    """A Modify leaves the order's price at the venue as it is: the price the venue echoed stays
    counted, for the notional and for self-trade prevention."""
    gw = RiskGateway(Limits.from_toml(limits_text()), compiled=compiled)
    healthy(gw, T0)
    entered(gw, qty=300, price=FAIR + 100, side=Side.SELL, token="S1")
    gw.on_order_priced("S1", FAIR + 90, T0)           # the venue improved it
    modify = order(kind=OrderKind.MODIFY, token="S1", qty=100, price=FAIR + 100, side=Side.SELL)
    assert gw.check(modify, T0, "E").allowed
    assert gw.working_orders() == {"S1": (1, False, 300, FAIR + 90)}
    assert gw._symbols[1].own_sells == {"S1": FAIR + 90}


@MODES
def test_a_second_replace_of_an_original_whose_replace_is_in_flight_is_refused(compiled):
    """A->C while A->B is unanswered: A is counted inside B, so C was counted as a new order (an
    over-count that denied orders near the limits); which of B and C can rest is not known until
    the venue answers A->B, as for a chain, so it is refused and nothing is counted for it."""
    gw = replaced_once(compiled)
    second = order(kind=OrderKind.REPLACE, token="C", orig_token="A", qty=100, price=FAIR - 3)
    d = gw.check(second, T0)
    assert not d.allowed and d.check is CheckId.INVALID_ORDER, d
    assert d.detail == "a replace of its original is in flight"
    assert gw.working_orders() == {"B": (1, True, 200, FAIR - 2)} and gw._symbols[1].open_buy == 200
    assert gw._symbols[1].own_buys == {"A": FAIR - 1, "B": FAIR - 2}
    gw.on_order_done("B", T0)                            # A->B refused: A rests on, and may be
    assert gw.working_orders() == {"A": (1, True, 100, FAIR - 1)}
    replace(gw, "A", "C", 100, FAIR - 3)                 # replaced again now
    assert gw.working_orders() == {"C": (1, True, 200, FAIR - 3)}


@MODES
def test_a_short_sale_modified_to_long_stays_short_until_the_venue_confirms(compiled):
    """Until the venue applies the Modify it holds the order as a short sale: a fill then sells
    short and uses a locate (the marking was dropped at once, so that fill used none and the
    order's shares left the locate count); the venue's echo of the side makes it long."""
    gw = RiskGateway(Limits.from_toml(limits_text()), compiled=compiled)
    healthy(gw, T0)
    gw.on_position(1, 1_000, T0)
    entered(gw, qty=300, price=FAIR + 100, side=Side.SELL, token="S1")      # marked T
    modify = order(kind=OrderKind.MODIFY, token="S1", qty=100, price=FAIR + 100, side=Side.SELL)
    assert gw.check(modify, T0, "S").allowed
    assert gw._symbols[1].sho.marks == {"S1": "T"}
    gw.on_fill(1, Side.SELL, 50, FAIR + 100, T0, token="S1")                # before the Modify landed
    assert gw.locates_used(1) == 50
    gw.on_order_confirmed("S1", 100, T0, "S")          # OUCH Order Modified, side S
    assert gw._symbols[1].sho.marks == {} and gw.working_orders() == {"S1": (1, False, 100, FAIR + 100)}
    gw.on_fill(1, Side.SELL, 50, FAIR + 100, T0, token="S1")
    assert gw.locates_used(1) == 50


@MODES
def test_a_confirmation_without_the_side_keeps_the_marking(compiled):
    gw = RiskGateway(Limits.from_toml(limits_text()), compiled=compiled)
    healthy(gw, T0)
    entered(gw, qty=300, price=FAIR + 100, side=Side.SELL, token="S1")
    gw.on_order_confirmed("S1", 200, T0)
    assert gw._symbols[1].sho.marks == {"S1": "T"}
    gw.on_order_confirmed("S1", 200, T0, "E")          # the venue holds it exempt
    assert gw._symbols[1].sho.marks == {"S1": "E"}
