"""TX stamp keys and counts when the journal refuses an order inside a decision: the orders sent
with it keep the key they were journaled with (the refused one's bytes go as a SoupBinTCP Debug
packet of its length, kept in an alert), and the summary counts only TX_TS records written."""
from __future__ import annotations

import json
import socket
import time
from types import SimpleNamespace

from audit.capture import TimestampedTcpSocket
from journal import DiskFull
from journal.catalogue import RecordType, unpack
from mm_core.events import SendOrder
from mm_core.protocol import ouch, soupbintcp
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from mm_core.types import OrderKind, Side, make_intent
from tests.mm_core.fake_venue import new_engine
from tests.mm_core.test_runner import LockedClock


class RefusingJournal:
    """Ordinary appends of the listed types are refused (DiskFull) after `after` of them."""

    def __init__(self, refuse: dict[RecordType, int]) -> None:
        self.records: list[tuple[int, RecordType, bytes]] = []
        self.left = dict(refuse)

    def append(self, rtype, payload, reserve=False, **kw) -> int:
        if rtype in self.left and not reserve:
            if self.left[rtype] <= 0:
                raise DiskFull("no space")
            self.left[rtype] -= 1
        self.records.append((len(self.records) + 1, rtype, payload))
        return len(self.records)

    def of(self, rtype):
        return [(seq, unpack(rtype, p) if rtype != RecordType.METRICS else json.loads(p))
                for seq, t, p in self.records if t == rtype]


def order(kind, token: str, msg) -> SendOrder:
    packet = soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(msg)))
    return SendOrder(make_intent(kind, token, 0, Side.BUY, 100_0000, 100, (1, 2, 3, 4)), packet,
                     SimpleNamespace(limits_version=1), 1)


def enter(token: str) -> SendOrder:
    return order(OrderKind.ENTER, token, ouch.EnterOrder(token, "B", 100, "ACME", 100_0000, 99999, "", "Y",
                                                         "P", "N", 0, "N", "R"))


def connected_runner(journal, engine=None):
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    runner = Runner(engine or new_engine(), journal, RunnerSettings(), LockedClock())
    runner._oe = TimestampedTcpSocket.connect(lsn.getsockname())
    peer, _ = lsn.accept()
    lsn.close()
    return runner, peer


def test_an_order_refused_mid_decision_leaves_the_others_their_stamp_key():
    journal = RefusingJournal({RecordType.ORDER_SENT: 1})      # A journaled, B refused, C (a cancel) reserved
    runner, peer = connected_runner(journal)
    a, b = enter("A"), enter("B")
    c = order(OrderKind.CANCEL, "C", ouch.CancelOrder("C", 0))
    runner._act([a, b, c], time.clock_gettime_ns(time.CLOCK_REALTIME))
    time.sleep(0.05)
    runner._drain_tx(time.monotonic_ns() + 10**9)
    sent = journal.of(RecordType.ORDER_SENT)
    assert [bytes(u["token"]).rstrip(b"\0") for _, u in sent] == [b"A", b"C"]
    key = runner.tcp_bytes - 1
    assert {int(u["tskey"]) for _, u in sent} == {key}
    tx = journal.of(RecordType.TX_TS)
    assert sorted(int(u["order_seq"]) for _, u in tx) == [seq for seq, _ in sent]
    assert {int(u["tskey"]) for _, u in tx} == {key}
    alerts = [d for _, d in journal.of(RecordType.METRICS) if "alert" in d]
    assert not [d for d in alerts if d["alert"] == "tskey-mismatch"]
    withheld = [d for d in alerts if d["alert"] == "order-withheld"]
    filler = bytes.fromhex(withheld[0]["raw_hex"])
    assert len(withheld) == 1 and len(filler) == len(b.packet)
    assert isinstance(soupbintcp.decode(filler, soupbintcp.Direction.FROM_CLIENT), soupbintcp.Debug)
    peer.settimeout(1.0)
    wire = b""
    while len(wire) < runner.tcp_bytes:
        wire += peer.recv(4096)
    assert wire == a.packet + filler + c.packet              # B never left
    assert runner.report.orders_sent == 2
    peer.close()
    runner.close()


def test_tx_counts_are_of_the_records_written():
    journal = RefusingJournal({RecordType.TX_TS: 1})
    runner, peer = connected_runner(journal)
    for token in ("A", "B"):
        runner._act([enter(token)], time.clock_gettime_ns(time.CLOCK_REALTIME))
        time.sleep(0.02)
    runner._drain_tx(time.monotonic_ns() + 10**9)
    written = journal.of(RecordType.TX_TS)
    report = runner.report
    assert report.orders_sent == 2 and len(written) == 1
    assert report.tx_stamped + report.tx_missing == len(written)
    peer.close()
    runner.close()
