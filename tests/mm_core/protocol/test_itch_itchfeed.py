"""Cross-check against the independent `itchfeed` decoder: what our encoder writes, itchfeed
reads back with the same field values, and itchfeed's own re-encoding gives our bytes."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings

from mm_core.protocol import itch
from mm_core.protocol._layout import Alpha, Char, layout_of
from tests.mm_core.protocol.strategies import message_strategy

os.environ.setdefault("ITCH_NO_CPP", "1")          # the pure-Python itchfeed, not its C++ backend
itchfeed_messages = pytest.importorskip("itch.messages", reason="itchfeed is not installed")

# itchfeed's attribute names where they differ from ours (ours follow the specification's words)
THEIR_NAMES = {
    "financial_status": "financial_status_indicator",
    "issue_subtype": "issue_sub_type",
    "short_sale_threshold": "short_sale_threshold_indicator",
    "luld_reference_price_tier": "luld_ref",
    "level_1": "level1_price",
    "level_2": "level2_price",
    "level_3": "level3_price",
    "ipo_quotation_release_time": "ipo_release_time",
    "ipo_quotation_release_qualifier": "ipo_release_qualifier",
    "reference_price": "auction_collar_reference_price",
    "upper_price": "upper_auction_collar_price",
    "lower_price": "lower_auction_collar_price",
    "extension": "auction_collar_extention",
    "order_ref": "order_reference_number",
    "original_order_ref": "order_reference_number",
    "new_order_ref": "new_order_reference_number",
    "side": "buy_sell_indicator",
    "canceled_shares": "cancelled_shares",
    "price_variation_indicator": "variation_indicator",
}


def their_value(parsed: object, name: str, kind: object) -> object:
    value = getattr(parsed, THEIR_NAMES.get(name, name))
    if isinstance(kind, Alpha):
        return value.decode("ascii").rstrip(" ")      # itchfeed keeps raw padded bytes
    if isinstance(kind, Char):
        return value.decode("ascii")
    return value


def assert_itchfeed_agrees(msg: itch.ItchMessage) -> None:
    wire = itch.encode(msg)
    parsed = itchfeed_messages.messages[wire[:1]](wire)
    for name, kind in layout_of(type(msg)).fields:
        assert their_value(parsed, name, kind) == getattr(msg, name), name
    assert parsed.to_bytes() == wire


def test_itchfeed_knows_every_type_we_encode() -> None:
    assert {c.TYPE.encode() for c in itch.MESSAGE_CLASSES} <= set(itchfeed_messages.messages)
    for cls in itch.MESSAGE_CLASSES:
        assert itchfeed_messages.messages[cls.TYPE.encode()].message_size == itch.SIZES[cls.TYPE]


@pytest.mark.parametrize("cls", itch.MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_itchfeed_reads_what_we_write(cls: type) -> None:
    @settings(max_examples=40, deadline=None)
    @given(message_strategy(cls))
    def agrees(msg: itch.ItchMessage) -> None:
        assert_itchfeed_agrees(msg)

    agrees()


def test_itchfeed_reads_a_known_add_order_price() -> None:
    wire = itch.encode(itch.AddOrder(1, 2, 34_200_000_000_001, 7, "B", 100, "AAPL", 2_999_400))
    parsed = itchfeed_messages.messages[b"A"](wire)
    assert parsed.decode_price("price") == pytest.approx(299.94)
    assert parsed.timestamp == 34_200_000_000_001
