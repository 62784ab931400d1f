"""The [[options]] of the symbols file reach the risk gateway in a real session: an engine built
from files by mm_core.sessionconfig.load_inputs (as `mmaudit run` and `make demo` build it) declares
every option to its gateway, so Greeks and scenario limits bind on the underlying's orders."""
import pytest

from journal.catalogue import RecordType, unpack
from mm_core.config import ConfigError, symbols_from_toml
from mm_core.events import ClockSample, JournalHealth, JournalNote, SendOrder, Timer
from mm_core.risk import EXAMPLE_TOML
from mm_core.risk.checks import CheckId
from mm_core.sessionconfig import load_inputs
from mm_core.types import OrderIntent, OrderKind, Side
from tests.mm_core.wire import ACME, MS, S, SYMBOLS_TEXT, Feed, md, two_sided

ACME1C, ACME1P = 101, 102


def session_engine(tmp_path, max_delta: int):
    limits = EXAMPLE_TOML.replace("start_reconciled = false", "start_reconciled = true") \
        .replace("max_delta = 20000 ", f"max_delta = {max_delta} ")
    assert f"max_delta = {max_delta} " in limits
    path = tmp_path / "limits.toml"
    path.write_text(limits)
    engine = load_inputs(limits_path=str(path)).build_engine()
    now = 2 * S
    for ev in (JournalHealth(now, True), ClockSample(now, True), Timer(now)):
        engine.on_event(ev)
    return engine, now


def priced(tmp_path, max_delta: int):
    """A session engine after the first ACME book: (engine, now, that packet's actions)."""
    engine, now = session_engine(tmp_path, max_delta)
    feed = Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    now += MS
    return engine, now, engine.on_event(md(feed.packet(*msgs), now))


def acme_orders(actions) -> list:
    return [a for a in actions if isinstance(a, SendOrder) and a.intent.symbol_id == ACME]


def denials(actions) -> list[int]:
    return [int(unpack(a.rtype, a.payload)["check_id"]) for a in actions
            if isinstance(a, JournalNote) and a.rtype is RecordType.RISK_DECISION]


def test_a_delta_limit_from_the_limits_file_denies_quotes_on_an_underlying_with_options(tmp_path):
    engine, now, acts = priced(tmp_path, max_delta=50)
    assert not acme_orders(acts)
    assert int(CheckId.DELTA_LIMIT) in denials(acts)
    assert engine.risk.greeks(ACME) == (0.0, 0.0, 0.0)        # flat: only the orders would add delta


def test_options_are_valued_once_their_underlying_is_priced(tmp_path):
    engine, now, acts = priced(tmp_path, max_delta=20000)
    assert acme_orders(acts)                                    # quoting
    gw = engine.risk
    call, put = gw._symbols[ACME1C], gw._symbols[ACME1P]
    assert call.option.underlying_id == put.option.underlying_id == ACME
    assert call.option.is_call and not put.option.is_call
    assert call.option.expiry_ns == 2 * S + 30 * 86_400 * S      # 30 days from the first event
    assert 0.4 < call.risk.delta < 0.6 and -0.6 < put.risk.delta < -0.4      # at the money
    # an option order is checked against the group's Greeks: buying 60 calls adds ~30 delta
    intent = OrderIntent(OrderKind.ENTER, "X1", ACME1C, Side.BUY, 60_000, 60, algo_id=1, desk_id=1,
                         client_id=1)
    gw.on_market(ACME1C, 60_000.0, 60_000, False, now)
    assert gw.check(intent, now).allowed


def test_an_option_on_an_unknown_underlying_is_a_config_error():
    bad = SYMBOLS_TEXT.replace('underlying = "ACME"', 'underlying = "NOPE"', 1)
    with pytest.raises(ConfigError, match="underlying"):
        symbols_from_toml(bad)
    with pytest.raises(ConfigError, match="right"):
        symbols_from_toml(SYMBOLS_TEXT.replace('right = "C"', 'right = "X"', 1))
