"""Versioned limits documents: parsing, units, errors naming the field, replacement that keeps
the old limits in force when the new document is bad."""
from __future__ import annotations

import pytest

from mm_core.risk import EXAMPLE_TOML, Limits, LimitsError
from tests.risk.conftest import T0, limits_doc, limits_text, make_gateway, order, to_toml


def test_example_document_parses_with_units():
    limits = Limits.from_toml(EXAMPLE_TOML)
    assert limits.version == 1 and limits.latch_state == "HALTED"
    assert limits.max_market_age_ns == 2_000_000_000
    assert limits.defaults.max_order_value == 500_000 * 10_000      # price4 x shares
    assert limits.max_gross_notional == 5_000_000 * 10_000
    assert len(limits.digest) == 64


def test_symbol_tables_override_defaults():
    limits = Limits.from_toml(limits_text(symbols={"3": {"max_order_qty": 7}, "4": {}}))
    assert limits.for_symbol(3).max_order_qty == 7
    assert limits.for_symbol(3).max_position == limits.defaults.max_position
    assert limits.for_symbol(4) == limits.for_symbol(99) == limits.defaults


def _without(path: str) -> str:
    doc = limits_doc()
    *parents, leaf = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    del node[leaf]
    return to_toml(doc)


@pytest.mark.parametrize("text,field", [
    (_without("version"), "version"),
    (_without("rates.max_submits"), "rates.max_submits"),
    (_without("defaults.max_position"), "defaults.max_position"),
    (_without("greeks"), "greeks.max_delta"),
    (limits_text(version="seven"), "version"),
    (limits_text(version=-1), "version"),
    (limits_text(version=2**32), "version"),
    (limits_text(latch_state="PANIC"), "latch_state"),
    (limits_text(clock_profile="eu-fast"), "clock_profile"),
    (limits_text(start_reconciled="yes"), "start_reconciled"),
    (limits_text(rates={"max_submits": 0}), "rates.max_submits"),
    (limits_text(rates={"max_submits": 1.5}), "rates.max_submits"),
    (limits_text(rates={"max_submits": True}), "rates.max_submits"),
    (limits_text(collar={"fair_bps": 10_001}), "collar.fair_bps"),
    (limits_text(safe_mode={"size_multiplier": 1.5}), "safe_mode.size_multiplier"),
    (limits_text(greeks={"max_vega": "lots"}), "greeks.max_vega"),
    (limits_text(account={"restricted": ["AAPL"]}), "account.restricted"),
    (limits_text(account={"max_open_order": 5}), "account.max_open_order"),
    (limits_text(colar={"fair_bps": 1}), "colar.fair_bps"),
    (limits_text(symbols={"x": {"max_order_qty": 1}}), "symbols.x"),
    (limits_text(symbols={"3": {"max_order_qty": 0}}), "symbols.3.max_order_qty"),
    (limits_text(symbols={"3": {"max_order_qty": 2**32}}), "symbols.3.max_order_qty"),   # past OUCH's u32
    (limits_text(symbols={"3": {"max_qty": 1}}), "symbols.3.max_qty"),
    ("version = [", "<document>"),
    (limits_text(rates=5), "rates"),
], ids=lambda v: v if len(v) < 40 else None)
def test_bad_documents_name_the_field(text, field):
    with pytest.raises(LimitsError) as info:
        Limits.from_toml(text)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(field)


def test_not_text_is_refused():
    with pytest.raises(LimitsError):
        Limits.from_toml(b"version = 1")  # type: ignore[arg-type]


def test_replace_limits_keeps_old_limits_on_a_bad_document():
    gw = make_gateway(defaults={"max_order_qty": 100})
    assert gw.check(order(qty=101), T0).check.label == "max-order-qty"
    with pytest.raises(LimitsError):
        gw.replace_limits(limits_text(version=2, defaults={"max_order_qty": "many"}))
    with pytest.raises(LimitsError) as info:
        gw.replace_limits(limits_text(version=1, defaults={"max_order_qty": 500}))
    assert info.value.field == "version"
    assert gw.limits_version == 1
    decision = gw.check(order(qty=101, price=999_999), T0)
    assert decision.check.label == "max-order-qty" and decision.limits_version == 1
    assert gw.replace_limits(limits_text(version=2, defaults={"max_order_qty": 500})) == 2
    decision = gw.check(order(qty=101, price=999_998), T0)
    assert decision.allowed and decision.limits_version == 2


def test_replace_limits_can_switch_the_latch_state():
    gw = make_gateway()
    gw.replace_limits(limits_text(version=2, latch_state="REDUCING"))
    gw.on_journal_health(False, T0)          # an on-report fault latches the configured state
    assert gw.state.name == "REDUCING"
