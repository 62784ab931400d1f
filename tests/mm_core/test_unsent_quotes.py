"""Quotes the journal refused were never sent (write-ahead): they leave the orders-sent count and
the fill rate's denominator (quotes sent, shares quoted) again."""
import pytest

from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, SendOrder, Timer
from tests.mm_core.wire import ACME, MS, S, SYMBOLS, Feed, gateway, md, two_sided


def _refused(compiled: bool) -> tuple[Engine, list[str]]:
    engine, feed = Engine(EngineConfig(), SYMBOLS, gateway(), compiled=compiled), Feed()
    for ev in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(ev)
    msgs, _ = two_sided(feed, ACME, 1_000_000, 1_001_000)
    sent = [a.intent for a in engine.on_event(md(feed.packet(*msgs), S + MS)) if isinstance(a, SendOrder)]
    m = engine.metrics
    assert engine.counts["orders_sent"] == 2 and m.quotes_sent == [1, 1]
    assert m.quoted_qty == [sent[0].qty, sent[1].qty]
    engine.on_event(JournalHealth(S + 2 * MS, False, (sent[0].token,)))    # the bid's record refused
    return engine, sent


@pytest.mark.parametrize("compiled", [True, False])
def test_a_refused_quote_leaves_the_fill_rate_and_the_sent_count(compiled):
    engine, sent = _refused(compiled)
    m = engine.metrics
    assert engine.oms.get(sent[0].token).state.name == "REJECTED"
    assert engine.counts["orders_sent"] == 1
    assert m.quotes_sent == [0, 1] and m.quoted_qty == [0, sent[1].qty]
    doc = engine.summary()
    assert doc["quotes_sent"] == {"bid": 0, "ask": 1} and doc["quoted_qty"] == {"bid": 0, "ask": sent[1].qty}
    # heard again (a second refusal report of the same record) it is not taken off twice
    engine.on_event(JournalHealth(S + 3 * MS, False, (sent[0].token,)))
    assert engine.counts["orders_sent"] == 1 and m.quotes_sent == [0, 1]


def test_compiled_and_reference_agree():
    assert _refused(True)[0].state_hash() == _refused(False)[0].state_hash()
