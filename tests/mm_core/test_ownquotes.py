"""The own-quote table (mm_core.ownquotes) against the levels computed afresh: after every rebuild
of a changing set of live orders, each symbol's view and its packet-table entry (offset, bid and
ask counts into the flat arrays) hold exactly our summed levels, bids first, and symbols without
quotes read as empty; the arrays grow when the quotes need more room."""
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from mm_core.ownquotes import OwnQuotes
from mm_core.types import Purpose, Side

N = 6
_order = st.builds(lambda s, buy, price, leaves, quote: SimpleNamespace(
    symbol_id=s, side=Side.BUY if buy else Side.SELL, price=price, leaves=leaves,
    purpose=Purpose.QUOTE if quote else Purpose.HEDGE),
    st.integers(0, N - 1), st.booleans(), st.integers(100, 112), st.integers(1, 5), st.booleans())


def _expected(live) -> dict:
    """symbol -> (prices, shares, n bids, n asks), computed afresh: levels in first-seen order."""
    levels: dict = {}
    for o in live:
        if o.purpose is Purpose.QUOTE:
            bids, asks = levels.setdefault(o.symbol_id, ({}, {}))
            side = bids if o.side == Side.BUY else asks
            side[o.price] = side.get(o.price, 0) + o.leaves
    return {s: ([*b, *a], [*b.values(), *a.values()], len(b), len(a)) for s, (b, a) in levels.items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_order, max_size=14), min_size=1, max_size=8))
def test_every_rebuild_holds_exactly_our_levels(snapshots):
    table = OwnQuotes(N)
    for live in snapshots:
        own = table.rebuild(live)
        want = _expected(live)
        assert set(own) == set(want)
        for s, (px, qty, nb, na) in own.items():
            m = nb + na
            assert (list(px[0:m]), list(qty[0:m]), nb, na) == want[s]
        for s in range(N):
            nb, na = table.nb[s], table.na[s]
            k = table.off[s]
            got = (list(table.px[k:k + nb + na]), list(table.qty[k:k + nb + na]), nb, na) if nb + na \
                else ([], [], 0, 0)
            assert got == want.get(s, ([], [], 0, 0))
        assert table.total == sum(w[2] + w[3] for w in want.values())


def test_quotes_that_need_more_room_grow_the_arrays():
    table = OwnQuotes(N)
    table.rebuild([])
    live = [SimpleNamespace(symbol_id=2, side=Side.BUY, price=100 + i, leaves=1, purpose=Purpose.QUOTE)
            for i in range(40)]
    own = table.rebuild(live)
    assert table.cap >= len(live) and own[2][2] == len(live)
    assert list(own[2][0][0:len(live)]) == [100 + i for i in range(len(live))]
