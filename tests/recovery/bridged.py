"""A journaled session whose engine trades with the embedded venue on loopback: the in-memory
runner of journaling.py (every input journaled before the engine sees it, every order before its
bytes leave) with its orders sent on a real SoupBinTCP session and the venue's answers read back
as inputs. The venue's flow is off, so only our orders rest and nothing fills them unasked.

For tests of what recovery does when a torn tail lost an order the venue received: they send on
`session` what the journal then loses, and tear it."""
from __future__ import annotations

import contextlib

from journal import Journal, RecordType
from journal.catalogue import TsSource, venue_payload
from mm_core.events import ClockSample, SendOrder, Timer, VenueMessage
from mm_core.protocol import ouch, soupbintcp
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.venue_link import SoupSession
from mm_core.types import OrderIntent, Side
from tests.mm_core.wire import ACME, MS, S, Feed, md, two_sided
from tests.recovery.conftest import USER, free_udp_port
from tests.recovery.journaling import RunnerLike, fresh_engine, order_sent

PASSWORD = "mmaudit"
QUIET_S = 0.3           # the venue has answered everything once silent this long


@contextlib.contextmanager
def quiet_venue(tmp_path):
    """The embedded venue with no background flow (nobody trades against our orders)."""
    config = (load_config().with_venue(itch_port=free_udp_port(), duration=60.0, log_dir=str(tmp_path / "venue"),
                                       heartbeat_timeout=10.0)
              .with_flow(noise_rate=0.0, informed_rate=0.0, lp_count=0))
    with Venue(config) as venue:
        yield venue


class Bridged(RunnerLike):
    """RunnerLike whose orders go to the venue; each is answered before the next input."""

    parties = True

    def __init__(self, path: str, port: int) -> None:
        super().__init__(fresh_engine(), Journal(path, segment_size=1 << 20, checkpoint_every=64))
        self.session = SoupSession("127.0.0.1", port)
        self.session.login(USER, PASSWORD, 1)
        self.now = S

    def act(self, actions, now: int) -> None:
        super().act(actions, now)
        for a in actions:
            if isinstance(a, SendOrder):
                self.session.send(a.packet)

    def record(self, event):
        """A venue message journaled as the runner journals it (its OUCH type too: the reports'
        classification), the rest as RunnerLike does."""
        if not isinstance(event, VenueMessage):
            return super().record(event)
        frame = event.packet
        sequenced = frame[2] == ord("S")
        self.soup_seq += sequenced
        return venue_payload(self.soup_seq if sequenced else 0, frame[2], frame[3] if sequenced else 0, frame)

    def feed(self, event) -> list:
        """Journal and feed `event`; then the venue's answers, until it is quiet (each fed as it
        comes, so what the engine sends on one is answered too)."""
        actions = super().feed(event)
        if any(isinstance(a, SendOrder) for a in actions):
            while (got := self.session.next_sequenced(QUIET_S)) is not None:
                self.now += MS
                super().feed(VenueMessage(got[1], self.now, TsSource.USER))
        return actions

    def quoting(self) -> tuple:
        """Start, then a two-sided ACME book: our bid and ask accepted. Returns (bid, ask)."""
        self.start(self.now)
        self.feed(ClockSample(self.now, True))
        self.feed(Timer(self.now))
        self.md_feed = Feed()
        msgs, self.levels = two_sided(self.md_feed, ACME, 999_900, 1_000_100)
        self.now = 2 * S
        self.feed(md(self.md_feed.packet(*msgs), self.now))
        oms = self.engine.oms
        bid, ask = oms.working_order(ACME, Side.BUY), oms.working_order(ACME, Side.SELL)
        assert bid.state.value == ask.state.value == "accepted", (bid, ask)
        return bid, ask

    def market_moved(self, ticks: int):
        """The market data input of the ACME book moved by `ticks` (every level replaced)."""
        msgs = [Feed.delete(ref) for ref in self.levels.values()]
        added, self.levels = two_sided(self.md_feed, ACME, 999_900 + 100 * ticks, 1_000_100 + 100 * ticks)
        self.now += 300 * MS
        return md(self.md_feed.packet(*msgs, *added), self.now)

    def send_lost(self, intent: OrderIntent, message) -> int:
        """Journal an ORDER_SENT of the OUCH `message` and send it; the journal sequence of its
        record (what the test then tears: the venue got it, the journal lost it)."""
        packet = soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(message)))
        seq = self.journal.append(RecordType.ORDER_SENT, order_sent(SendOrder(intent, packet, None, 0), True),
                                  ts_ns=self.now, ts_source=int(TsSource.USER))
        self.session.send(packet)
        return seq

    def unjournaled_answer(self):
        """The venue's next message, read and not journaled (the crash came first)."""
        got = self.session.next_sequenced(5.0)
        assert got is not None, "the venue did not answer"
        return ouch.decode_outbound(got[1][3:])

    def unjournaled_answers(self) -> list:
        """The venue's messages until it is quiet, read and not journaled."""
        out = [self.unjournaled_answer()]
        while (got := self.session.next_sequenced(QUIET_S)) is not None:
            out.append(ouch.decode_outbound(got[1][3:]))
        return out

    def crash(self) -> None:
        self.session.close()
        self.journal.close()
