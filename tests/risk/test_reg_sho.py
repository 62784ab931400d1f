"""Reg SHO in the gateway, which does not take the engine's word for it: the sale marking (the
side byte; a long sale, S, covered by the position net of every working sell), locates for short
sales (T, E) with the easy-to-borrow list and the bona fide market-making exception, and the Rule
201 price test once the gateway has seen ITCH 'Y'. Each case fails without its control."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mm_core.risk import EXAMPLE_TOML, CheckId, Limits, LimitsError, OpenOrder
from mm_core.types import OrderKind, Purpose, Side
from tests.risk.conftest import FAIR, T0, limits_text, make_gateway, order

NO_BORROW = {"easy_to_borrow": [], "bona_fide_market_making": [], "locates": {}}


def sell(**kw):
    return order(side=Side.SELL, price=FAIR + kw.pop("above", 100), **kw)


def denied(decision, check, value=None, limit=None):
    assert not decision.allowed and decision.check is check, decision
    if value is not None:
        assert (decision.value, decision.limit) == (value, limit), decision
    return decision


def allowed(decision, check=CheckId.OK):
    assert decision.allowed and decision.check is check, decision
    return decision


@pytest.mark.parametrize("side, mark", [(Side.BUY, "S"), (Side.BUY, "T"), (Side.BUY, "E"),
                                        (Side.SELL, "B"), (Side.SELL, "X"), (Side.SELL, "s"),
                                        (Side.SELL, ord("T")), (Side.BUY, "")])
def test_a_side_byte_that_is_not_the_orders_is_denied(side, mark):
    gw = make_gateway()
    gw.on_position(1, 1_000, T0)
    intent = order(side=side, price=FAIR + (100 if side is Side.SELL else -100))
    denied(gw.check(intent, T0, mark), CheckId.SALE_MARKING)
    assert gw.open_order_count == 0
    allowed(gw.check(intent, T0, "B" if side is Side.BUY else "S"))


def test_a_long_sale_is_covered_by_the_position_net_of_every_working_sell():
    gw = make_gateway()
    gw.on_position(1, 100, T0)
    first = sell(qty=60)
    allowed(gw.check(first, T0, "S"))
    # 100 owned, 60 already working: 60 more long would be 20 sold that we do not own
    denied(gw.check(sell(qty=60, above=200), T0, "S"), CheckId.SALE_MARKING, -20, 0)
    allowed(gw.check(sell(qty=40, above=200), T0, "S"))
    # a working short sale could execute first too: it counts against what a long sale may use
    gw.on_order_done(first.token, T0)
    short = sell(qty=70, above=300)
    allowed(gw.check(short, T0, "T"))
    denied(gw.check(sell(qty=1, above=400), T0, "S"), CheckId.SALE_MARKING, -11, 0)
    # what the side's own byte says when no marking is given: S, a long sale
    denied(gw.check(sell(qty=1, above=400), T0), CheckId.SALE_MARKING, -11, 0)
    gw.on_order_done(short.token, T0)
    allowed(gw.check(sell(qty=60, above=400), T0))


def test_a_long_sale_after_fills_uses_the_position_the_fills_left():
    gw = make_gateway()
    gw.on_position(1, 100, T0)
    working = sell(qty=100)
    allowed(gw.check(working, T0, "S"))
    gw.on_fill(1, Side.SELL, 100, FAIR + 100, T0, token=working.token)       # all sold: flat
    denied(gw.check(sell(qty=1), T0, "S"), CheckId.SALE_MARKING, -1, 0)
    gw.on_fill(1, Side.BUY, 50, FAIR, T0)
    allowed(gw.check(sell(qty=50), T0, "S"))


def test_a_replace_keeps_its_originals_marking_and_a_long_one_counts_both_until_answered():
    gw = make_gateway()
    gw.on_position(1, 100, T0)
    ask = sell(qty=100)
    allowed(gw.check(ask, T0, "S"))

    def replace(qty, mark, token="R1"):
        return gw.check(order(kind=OrderKind.REPLACE, side=Side.SELL, price=FAIR + 200, qty=qty,
                              orig_token=ask.token, token=token), T0, mark)

    denied(replace(100, "T"), CheckId.SALE_MARKING)             # OUCH Replace has no side
    # the original may fill before the replace lands, and the replacement then rests in full
    denied(replace(100, "S"), CheckId.SALE_MARKING, -100, 0)
    gw.on_position(1, 200, T0)
    allowed(replace(100, "S"))
    # in flight, both count for any other long sale; once the venue answers, only what rests
    denied(gw.check(sell(qty=1, above=300), T0, "S"), CheckId.SALE_MARKING, -1, 0)
    gw.on_order_confirmed("R1", 100, T0)
    allowed(gw.check(sell(qty=100, above=300), T0, "S"))


def test_a_short_sale_needs_a_locate_used_by_fills_and_returned_when_the_rest_is_gone():
    gw = make_gateway(reg_sho={**NO_BORROW, "locates": {"1": 500}})
    first = sell(qty=300)
    allowed(gw.check(first, T0, "T"))
    denied(gw.check(sell(qty=300, above=200), T0, "T"), CheckId.LOCATE_REQUIRED, 600, 500)
    allowed(gw.check(sell(qty=200, above=200, token="S2"), T0, "T"))
    denied(gw.check(sell(qty=1, above=300), T0, "E"), CheckId.LOCATE_REQUIRED, 501, 500)
    # 200 of the first sold short (used for the day), the rest cancelled: 100 comes back
    gw.on_fill(1, Side.SELL, 200, FAIR + 100, T0, token=first.token)
    gw.on_order_done(first.token, T0)
    gw.on_order_done("S2", T0)
    denied(gw.check(sell(qty=301, above=300), T0, "T"), CheckId.LOCATE_REQUIRED, 501, 500)
    allowed(gw.check(sell(qty=300, above=300), T0, "T"))


def test_a_replace_of_a_short_sale_holds_a_locate_for_the_original_until_the_venue_answers():
    """The original may fill before the replace lands, and the replacement then rests in full."""
    gw = make_gateway(reg_sho={**NO_BORROW, "locates": {"1": 500}})
    ask = sell(qty=400)
    allowed(gw.check(ask, T0, "T"))

    def replace(qty, token, orig=ask.token):
        return gw.check(order(kind=OrderKind.REPLACE, side=Side.SELL, price=FAIR + 200, qty=qty,
                              orig_token=orig, token=token), T0, "T")

    denied(replace(101, "R0"), CheckId.LOCATE_REQUIRED, 501, 500)
    allowed(replace(100, "R1"))
    denied(gw.check(sell(qty=1, above=300), T0, "T"), CheckId.LOCATE_REQUIRED, 501, 500)
    # the venue refuses the replace: the original's 400 rests on, and still holds its locate
    gw.on_order_done("R1", T0)
    denied(gw.check(sell(qty=101, above=300), T0, "T"), CheckId.LOCATE_REQUIRED, 501, 500)
    allowed(replace(100, "R2"))
    # 300 of the original sold short before the replace of it to 100 lands: 300 used, 100 rests
    gw.on_fill(1, Side.SELL, 300, FAIR + 100, T0, token=ask.token)
    denied(gw.check(sell(qty=1, above=300), T0, "T"), CheckId.LOCATE_REQUIRED, 501, 500)
    gw.on_order_confirmed("R2", 100, T0)
    denied(gw.check(sell(qty=101, above=300), T0, "T"), CheckId.LOCATE_REQUIRED, 501, 500)
    allowed(gw.check(sell(qty=100, above=300), T0, "T"))


def test_easy_to_borrow_needs_no_locate_and_nothing_configured_means_none():
    gw = make_gateway(reg_sho={**NO_BORROW, "easy_to_borrow": [1]},
                      feeds=((1, FAIR, FAIR), (2, FAIR, FAIR)))
    allowed(gw.check(sell(qty=5_000), T0, "T"))
    denied(gw.check(sell(qty=1, symbol_id=2), T0, "T"), CheckId.LOCATE_REQUIRED, 1, 0)
    bare = limits_text().split("\n[reg_sho]")[0]           # a document without [reg_sho]
    assert Limits.from_toml(bare).easy_to_borrow == frozenset()
    gw = make_gateway()
    gw.replace_limits(bare.replace("version = 1", "version = 2"))
    denied(gw.check(sell(qty=1), T0, "T"), CheckId.LOCATE_REQUIRED, 1, 0)


def test_the_bona_fide_market_making_exception_is_for_quotes_on_configured_symbols_and_named():
    gw = make_gateway(reg_sho={**NO_BORROW, "bona_fide_market_making": [1], "locates": {"1": 100}},
                      feeds=((1, FAIR, FAIR), (2, FAIR, FAIR)))
    allowed(gw.check(sell(qty=100), T0, "T"))                   # the locate first
    used = allowed(gw.check(sell(qty=50, above=200), T0, "T"), CheckId.LOCATE_EXCEPTION)
    assert (used.value, used.limit) == (150, 100) and "bona fide" in used.detail
    assert gw.open_order_count == 2                             # allowed, so it counts as working
    denied(gw.check(sell(qty=50, above=300, purpose=Purpose.HEDGE), T0, "T"), CheckId.LOCATE_REQUIRED)
    denied(gw.check(sell(qty=50, symbol_id=2), T0, "T"), CheckId.LOCATE_REQUIRED)


def test_rule_201_once_the_gateway_sees_the_restriction():
    gw = make_gateway()
    bid = FAIR + 100
    allowed(gw.check(sell(qty=10, above=100), T0, "T", bid))   # not restricted: no price test
    gw.on_reg_sho(1, True, T0)
    denied(gw.check(sell(qty=11, above=100), T0, "T", bid), CheckId.SHORT_SALE_PRICE_TEST, bid, bid)
    denied(gw.check(sell(qty=12, above=50), T0, "E", bid), CheckId.SHORT_SALE_PRICE_TEST, FAIR + 50, bid)
    denied(gw.check(sell(qty=13, above=200), T0, "T"), CheckId.SHORT_SALE_PRICE_TEST, FAIR + 200, 0)
    allowed(gw.check(sell(qty=14, above=101), T0, "T", bid))   # above the national best bid
    allowed(gw.check(sell(qty=15, above=102), T0, "T", 0))     # no bid at all
    gw.on_position(1, 100, T0)
    allowed(gw.check(sell(qty=16, above=103), T0, "S", bid + 1_000))   # a long sale: no test
    gw.on_reg_sho(1, False, T0)
    allowed(gw.check(sell(qty=17, above=104), T0, "T", bid + 1_000))


def test_an_option_sale_writes_a_contract_not_a_reg_sho_short_sale():
    gw = make_gateway(reg_sho=NO_BORROW, feeds=((1, FAIR, FAIR), (2, 50_000, 50_000)))
    gw.on_option_params(2, 1, FAIR, T0 + 30 * 86_400 * 10**9, 0.25, 0.01, True, 100, T0)
    allowed(gw.check(order(symbol_id=2, side=Side.SELL, price=50_000, qty=5), T0))
    denied(gw.check(order(symbol_id=2, side=Side.SELL, price=50_000, qty=5), T0, "B"),
           CheckId.SALE_MARKING)


def test_a_resync_keeps_the_marking_and_an_unknown_one_holds_a_locate():
    gw = make_gateway(reg_sho={**NO_BORROW, "locates": {"1": 500}})
    gw.on_order_state([OpenOrder("R1", 1, Side.SELL, FAIR + 100, 200, "T"),
                       OpenOrder("R2", 1, Side.SELL, FAIR + 200, 100),
                       OpenOrder("R3", 1, Side.BUY, FAIR - 100, 100)], 0, T0)
    denied(gw.check(sell(qty=201, above=300), T0, "T"), CheckId.LOCATE_REQUIRED, 501, 500)
    allowed(gw.check(sell(qty=200, above=300), T0, "T"))


def test_the_reg_sho_state_is_in_the_state_replay_must_reproduce():
    gw = make_gateway()
    before = gw.state_items()
    gw.on_reg_sho(1, True, T0)
    restricted = gw.state_items()
    assert restricted != before
    working = sell(qty=10, above=200)
    allowed(gw.check(working, T0, "T", FAIR))
    gw.on_fill(1, Side.SELL, 10, FAIR + 200, T0, token=working.token)
    assert gw.state_items() != restricted


def test_the_example_limits_let_the_demo_symbols_sell_short():
    limits = Limits.from_toml(EXAMPLE_TOML)
    assert {1, 2, 3} <= limits.easy_to_borrow


@pytest.mark.parametrize("reg_sho, field", [
    ({"easy_to_borrow": [1, "2"]}, "reg_sho.easy_to_borrow"),
    ({"easy_to_borrow": 1}, "reg_sho.easy_to_borrow"),
    ({"bona_fide_market_making": [-1]}, "reg_sho.bona_fide_market_making"),
    ({"locates": {"ACME": 100}}, "reg_sho.locates.ACME"),
    ({"locates": {"1": -5}}, "reg_sho.locates.1"),
    ({"locates": {"1": 1.5}}, "reg_sho.locates.1"),
    ({"locates": {"99999999999": 5}}, "reg_sho.locates.99999999999"),
    ({"locate": {"1": 5}}, "reg_sho.locate.1"),
    ({"easy_to_borow": [1]}, "reg_sho.easy_to_borow"),
])
def test_a_bad_reg_sho_table_is_a_typed_error_naming_the_field(reg_sho, field):
    with pytest.raises(LimitsError) as info:
        Limits.from_toml(limits_text(reg_sho=reg_sho))
    assert info.value.field == field


def test_a_size_down_that_changes_the_marking_is_checked_as_a_new_sale():
    gw = make_gateway()
    gw.on_position(1, 100, T0)
    ask = sell(qty=300)
    allowed(gw.check(ask, T0, "T"))

    def modify(qty, mark):
        return gw.check(order(kind=OrderKind.MODIFY, side=Side.SELL, price=ask.price, qty=qty,
                              token=ask.token), T0, mark)

    allowed(modify(250, "T"))                                   # a plain size-down: as a cancel
    denied(modify(200, "S"), CheckId.SALE_MARKING, -100, 0)     # now long: 200 of it not owned
    allowed(modify(100, "S"))
    # short at the venue until it applies the Modify (a fill then uses a locate), at its 300
    assert gw.state_items()[3] == [(1, False, 0, [(ask.token, "T")])]
    assert gw.working_orders()[ask.token][2] == 300
    gw.on_order_confirmed(ask.token, 100, T0, "S")              # Order Modified, side S
    assert gw.state_items()[3] == []                            # marked long: as any S sell


_OPS = st.lists(st.tuples(st.sampled_from(["enter", "fill", "done", "replace", "confirm", "refuse"]),
                          st.integers(0, 10), st.integers(1, 400)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_shares_sold_short_plus_all_that_may_still_be_never_pass_the_locate(ops):
    """A model of the venue beside the gateway: whatever the order of enters, fills, cancels and
    replaces (answered or refused), what was sold short plus the worst case of what is working (an
    original not yet replaced: what is left of it and the whole replacement) stays within the
    located shares."""
    located = 1_000
    gw = make_gateway(reg_sho={**NO_BORROW, "locates": {"1": located}},
                      duplicate={"window_ms": 0}, rates={"max_submits": 10_000, "max_modifies": 10_000})
    live: dict[str, list] = {}          # token -> [left, replacement token or "", its qty]
    sold = 0
    for n, (op, pick, qty) in enumerate(ops):
        tokens = sorted(live)
        token = tokens[pick % len(tokens)] if tokens else None
        if op == "enter":
            if gw.check(sell(qty=qty, token=f"E{n}"), T0, "T").allowed:
                live[f"E{n}"] = [qty, "", 0]
        elif token is None:
            continue
        elif op == "fill" and live[token][0]:
            q = min(qty, live[token][0])
            gw.on_fill(1, Side.SELL, q, FAIR + 100, T0, token=token)
            sold += q
            live[token][0] -= q
            if not live[token][0] and not live[token][1]:
                gw.on_order_done(token, T0)
                del live[token]
        elif op == "done" and not live[token][1]:
            gw.on_order_done(token, T0)
            del live[token]
        elif op == "replace" and not live[token][1]:
            intent = order(kind=OrderKind.REPLACE, side=Side.SELL, price=FAIR + 150, qty=qty,
                           orig_token=token, token=f"R{n}")
            if gw.check(intent, T0, "T").allowed:
                live[token][1:] = [f"R{n}", qty]
        elif op == "confirm" and live[token][1]:
            _, replacement, new = live.pop(token)
            gw.on_order_confirmed(replacement, new, T0)
            live[replacement] = [new, "", 0]
        elif op == "refuse" and live[token][1]:
            gw.on_order_done(live[token][1], T0)
            live[token][1:] = ["", 0]
            if not live[token][0]:
                del live[token]
        assert sold + sum(left + new for left, _, new in live.values()) <= located, (op, live, sold)
