"""Orders reconciliation adopts are counted by the risk gateway: recovery against the embedded venue
on loopback of a journal that never recorded a short sale of ours resting there. Once adopted the
gateway counts it as a confirmed order (its open-order and locate limits see it), its cancel
releases it, and a replay of the RECON records rebuilds the same state at every step."""
from __future__ import annotations

import time

import pytest

from journal import Journal, Reader, RecordType
from journal.catalogue import TsSource, unpack, unpack_json
from mm_core.engine import Engine
from mm_core.protocol import ouch, soupbintcp
from mm_core.risk import CheckId, Limits, RiskGateway
from mm_core.types import OrderIntent, OrderKind, Side
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery import recover as recover_module
from recovery.codecheck import session_start
from recovery.recover import RecoverySettings, recover
from recovery.replay import replay_journal
from recovery.venue_link import SoupSession
from tests.mm_core.wire import ACME, LIMITS_TEXT, SYMBOLS
from tests.recovery.conftest import USER, free_udp_port
from tests.recovery.session import CONFIG

PASSWORD = "mmaudit"
LOCATED = 300
# ACME off the easy-to-borrow list with 300 shares located; room for two working orders
LIMITS = (LIMITS_TEXT.replace("easy_to_borrow = [1, 2, 3]", "easy_to_borrow = [2, 3]")
          .replace("max_open_orders = 100", "max_open_orders = 2")
          .replace("[reg_sho.locates]             # symbol id = shares located for the day (used up by short sales)",
                   f"[reg_sho.locates]\n1 = {LOCATED}"))


def fresh_engine() -> Engine:
    return Engine(CONFIG, SYMBOLS, RiskGateway(Limits.from_toml(LIMITS)))


def enter(session: SoupSession, token: str, side: str, shares: int, price: int) -> None:
    """An order of ours entered at the venue the way the engine would, never journaled."""
    session.send(soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.EnterOrder(
        token, side, shares, "ACME", price, 99999, "MMCO", "Y", "P", "N", 0, "N", "R")))))


def recon_docs(path: str) -> list[tuple[int, dict]]:
    with Reader(path) as reader:
        return [(r.seq, unpack_json(r.payload)) for r in reader.records(rtypes=[RecordType.RECON])]


def healthy_copy_check(path: str, last_seq: int, intent: OrderIntent, mark: str):
    """The gateway a replay to `last_seq` rebuilds, with every input made healthy, asked about
    one more order (on a replay of its own: the recovered engine is not touched)."""
    engine = fresh_engine()
    result = replay_journal(path, engine, last_seq=last_seq)
    risk = result.engine.risk
    now = result.engine.now + 1
    risk.on_reconciled(True, now)
    risk.on_clock(True, now)
    risk.on_journal_health(True, now)
    risk.on_market(ACME, 1_000_000, 1_000_000, False, now)
    if risk.state.name != "ACTIVE":
        risk.operator_enable("test", "check", now)
    return risk.check(intent, now, mark)


def sell(token: str, qty: int, price: int = 1_000_500) -> OrderIntent:
    return OrderIntent(OrderKind.ENTER, token, ACME, Side.SELL, price, qty, algo_id=1, desk_id=1,
                       trader_id=1, client_id=1)


@pytest.fixture
def venue(tmp_path):
    config = load_config().with_venue(itch_port=free_udp_port(), duration=30.0,
                                      log_dir=str(tmp_path / "venue"), heartbeat_timeout=10.0)
    with Venue(config) as v:
        yield v


def test_an_order_the_journal_never_confirmed_is_counted_by_the_gateway_once_adopted(tmp_path, venue, monkeypatch):
    path = str(tmp_path / "journal")
    with Journal(path) as journal:      # the session's start; its orders' records were lost
        journal.append(RecordType.SESSION_START, session_start(), ts_ns=time.time_ns(),
                       ts_source=int(TsSource.USER))
    prefix = fresh_engine().oms.prefix
    short = prefix + "0000000000A1"
    session = SoupSession("127.0.0.1", venue.ports.ouch)
    session.login(USER, PASSWORD, 1)
    enter(session, short, "T", 200, 1_003_000)       # a short sale, far from the touch: it rests
    deadline = time.monotonic() + 10
    while short not in {o.token for o in venue.live_orders(USER)} and time.monotonic() < deadline:
        time.sleep(0.02)
    session.logout()
    assert short in {o.token for o in venue.live_orders(USER)}

    # the live engine, looked at once the venue's messages were applied (before the resolutions)
    engines, seen = [], {}
    monkeypatch.setattr(recover_module, "build_engine",
                        lambda *a: engines.append(fresh_engine()) or engines[-1])

    def progress(stage, text):
        if stage == "venue" and text.startswith("applied"):
            risk = engines[-1].risk
            seen.update(working=risk.working_orders(), hash=engines[-1].state_hash())
            with Reader(path) as reader:
                seen["seq"] = reader.last_seq

    settings = RecoverySettings(journal=path, config=CONFIG, symbols=SYMBOLS, limits_text=LIMITS,
                                venue=("127.0.0.1", venue.ports.ouch), username=USER, password=PASSWORD)
    result = recover(settings, progress=progress)
    # adopted: counted with its size, price and side, as a confirmed order is
    assert seen["working"] == {short: (ACME, False, 200, 1_003_000)}
    # ... and as the venue holds it, a short sale: it holds 200 of the 300 shares located
    assert healthy_copy_check(path, seen["seq"], sell(prefix + "0000000000B1", 101), "T").check \
        is CheckId.LOCATE_REQUIRED
    assert healthy_copy_check(path, seen["seq"], sell(prefix + "0000000000B2", 100), "T").allowed
    # the replay of the journal to that point is the live engine then, exactly
    assert replay_journal(path, fresh_engine(), last_seq=seen["seq"]).state_hash == seen["hash"]
    adopt = [d for _, d in recon_docs(path) if d.get("resolution", {}).get("action") == "adopt"]
    assert [d["resolution"]["token"] for d in adopt] == [short]
    # the outcome names each resolution's order before and after it: adopted from nothing, then
    # a cancel of the live order
    applied = recon_docs(path)[-1][1]["applied"]
    assert applied[0]["token"] == short and applied[0]["before"] is None
    assert applied[0]["after"]["leaves"] == 200
    assert [a["token"] for a in applied] == [short] * len(applied) and len(applied) >= 2
    assert applied[0]["after"]["state"] == "pending-new"          # its Accepted follows
    assert applied[-1]["before"]["state"] == "accepted" and applied[-1]["after"] != applied[-1]["before"]

    # reconciliation cancelled it at the venue; done, it is released
    assert result.reconciled, result.reasons
    assert short not in {o.token for o in venue.live_orders(USER)}
    assert result.engine.risk.working_orders() == {}
    again = replay_journal(path, fresh_engine())
    assert again.deterministic and again.state_hash == result.engine.state_hash()


def test_a_second_adopted_order_fills_the_open_order_limit(tmp_path, venue, monkeypatch):
    """Two orders the journal lost, both adopted: with max_open_orders = 2 the gateway now denies
    a third (it counted none of them before)."""
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        journal.append(RecordType.SESSION_START, session_start(), ts_ns=time.time_ns(),
                       ts_source=int(TsSource.USER))
    prefix = fresh_engine().oms.prefix
    tokens = [prefix + "0000000000C1", prefix + "0000000000C2"]
    session = SoupSession("127.0.0.1", venue.ports.ouch)
    session.login(USER, PASSWORD, 1)
    enter(session, tokens[0], "B", 100, 997_000)
    enter(session, tokens[1], "T", 100, 1_003_000)
    deadline = time.monotonic() + 10
    while len(venue.live_orders(USER)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    session.logout()
    seen = {}

    def progress(stage, text):
        if stage == "venue" and text.startswith("applied"):
            with Reader(path) as reader:
                seen["seq"] = reader.last_seq

    settings = RecoverySettings(journal=path, config=CONFIG, symbols=SYMBOLS, limits_text=LIMITS,
                                venue=("127.0.0.1", venue.ports.ouch), username=USER, password=PASSWORD)
    result = recover(settings, progress=progress)
    assert result.reconciled, result.reasons
    buy = OrderIntent(OrderKind.ENTER, prefix + "0000000000D1", ACME, Side.BUY, 999_000, 100,
                      algo_id=1, desk_id=1, trader_id=1, client_id=1)
    decision = healthy_copy_check(path, seen["seq"], buy, "B")
    assert not decision.allowed and decision.check is CheckId.MAX_OPEN_ORDERS, decision
