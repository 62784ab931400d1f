"""The vectorised quote rebuild against the per-message book it replaced (kept as the oracle):
random ITCH days with adds, partial and over-executions, cancels, deletes, replace chains,
unknown references and several messages per packet must give the same quote timeline."""
import numpy as np
import pytest

from mm_core.protocol import itch
from reports import nbbo
from reports.source import open_slice
from tests.reports import nbbo_oracle
from tests.reports.journal_builder import SYMBOLS, DayBuilder

SYMBOL_IDS = {name: sid for sid, name in SYMBOLS.items()}


def _random_day(seed: int, packets: int) -> DayBuilder:
    rng = np.random.default_rng(seed)
    b = DayBuilder()
    b.clock_sample()
    live: list[tuple[int, int]] = []          # (ref, locate) possibly still resting
    next_ref = 1
    for _ in range(packets):
        msgs = []
        for _ in range(int(rng.integers(1, 6))):
            locate = int(rng.integers(1, 4))
            head = dict(stock_locate=locate, tracking_number=0, timestamp=b._venue_ts())
            action = rng.random()
            if action < 0.45 or not live:
                side = "B" if rng.random() < 0.5 else "S"
                price = int(1_000_000 + rng.integers(-20, 21) * 100)
                msgs.append(itch.AddOrder(order_ref=next_ref, side=side, shares=int(rng.integers(1, 5)) * 100,
                                          stock=SYMBOLS[locate], price=price, **head))
                live.append((next_ref, locate))
                next_ref += 1
                continue
            ref, loc = live[int(rng.integers(0, len(live)))]
            head["stock_locate"] = loc
            if rng.random() < 0.05:
                ref = 10_000_000 + int(rng.integers(0, 100))          # unknown reference
            if action < 0.6:
                msgs.append(itch.OrderExecuted(order_ref=ref, executed_shares=int(rng.integers(1, 4)) * 100,
                                               match_number=int(rng.integers(1, 1 << 40)), **head))
            elif action < 0.7:
                msgs.append(itch.OrderExecutedWithPrice(
                    order_ref=ref, executed_shares=int(rng.integers(1, 3)) * 100, match_number=1,
                    printable="Y", execution_price=1_000_000, **head))
            elif action < 0.8:
                msgs.append(itch.OrderCancel(order_ref=ref, canceled_shares=int(rng.integers(1, 300)), **head))
            elif action < 0.9:
                msgs.append(itch.OrderDelete(order_ref=ref, **head))
            else:
                msgs.append(itch.OrderReplace(original_order_ref=ref, new_order_ref=next_ref,
                                              shares=int(rng.integers(1, 5)) * 100,
                                              price=int(1_000_000 + rng.integers(-20, 21) * 100), **head))
                live.append((next_ref, loc))
                next_ref += 1
        b.advance(1_000_000)
        b._md(*msgs)
    return b


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_timeline_as_the_per_message_book(seed, tmp_path):
    journal = _random_day(seed, 400).write(tmp_path / "j")
    src = open_slice(journal)
    ours = nbbo.build_timeline(src, SYMBOL_IDS)
    oracle = nbbo_oracle.build_timeline(src, SYMBOL_IDS)
    assert len(oracle) > 300
    for name in ("seq", "ts_ns", "ts_source", "symbol_id", "bid", "ask"):
        assert np.array_equal(getattr(ours, name), getattr(oracle, name)), name


def test_no_market_data_gives_an_empty_timeline(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    timeline = nbbo.build_timeline(open_slice(b.write(tmp_path / "j")), SYMBOL_IDS)
    assert len(timeline) == 0 and timeline.bid.dtype == np.int64
