"""An independent, per-record reading of a journal with the project's OUCH/SoupBinTCP codecs:
what the vectorised reports must reconcile with. Slow on purpose (one Python step per record);
it works on any journal, so golden engine journals can be checked the same way."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from journal import Reader
from journal.catalogue import RecordType, raw_bytes, unpack
from mm_core.protocol import ouch, soupbintcp

SENT_NAMES = {"EnterOrder": "SENT_NEW", "ReplaceOrder": "SENT_REPLACE", "CancelOrder": "SENT_CANCEL",
              "ModifyOrder": "SENT_MODIFY"}
VENUE_NAMES = {"Accepted": "ACCEPTED", "Replaced": "REPLACED", "Canceled": "CANCELED", "Executed": "EXECUTED",
               "Rejected": "REJECTED", "AiqCanceled": "AIQ_CANCELED", "BrokenTrade": "BROKEN_TRADE",
               "CancelPending": "CANCEL_PENDING", "CancelReject": "CANCEL_REJECT",
               "OrderPriorityUpdate": "PRIORITY_UPDATE", "OrderModified": "ORDER_MODIFIED",
               "ExecutedWithReferencePrice": "EXECUTED_WITH_REF_PRICE", "TradeCorrection": "TRADE_CORRECTION"}


@dataclass
class Totals:
    events: Counter = field(default_factory=Counter)     # report event_type -> count
    seqs: set = field(default_factory=set)               # journal sequences of order events
    shares: int = 0                                      # executed shares
    notional: int = 0                                    # Σ shares · price4
    matches: set = field(default_factory=set)
    sent_seqs: list = field(default_factory=list)        # ORDER_SENT sequences, in journal order
    venue_seqs: list = field(default_factory=list)       # sequenced, non-system OUCH venue messages
    executions: list = field(default_factory=list)       # (seq, token, shares, price4)
    clock_samples: int = 0                               # CLOCK_SAMPLE records
    cancel_reasons: Counter = field(default_factory=Counter)   # OUCH Canceled reason -> count

    @property
    def order_event_seqs(self) -> list[int]:
        return sorted(self.sent_seqs + self.venue_seqs)


def journal_totals(path) -> Totals:
    out = Totals()
    with Reader(path) as reader:
        for rec in reader.records(rtypes=(RecordType.ORDER_SENT, RecordType.VENUE_MSG, RecordType.CLOCK_SAMPLE)):
            _count(out, rec)
    return out


def _count(out: Totals, rec) -> None:
    if rec.rtype == RecordType.CLOCK_SAMPLE:
        out.clock_samples += 1
        return
    frame = raw_bytes(unpack(rec.rtype, rec.payload))
    if rec.rtype == RecordType.ORDER_SENT:
        msg = ouch.decode_inbound(soupbintcp.decode(frame, soupbintcp.Direction.FROM_CLIENT).payload)
        name = SENT_NAMES[type(msg).__name__]
        out.sent_seqs.append(rec.seq)
    else:
        packet = soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER)
        if not isinstance(packet, soupbintcp.SequencedData):
            return
        msg = ouch.decode_outbound(packet.payload)
        if isinstance(msg, ouch.SystemEvent):
            return
        name = VENUE_NAMES.get(type(msg).__name__, "OTHER_VENUE_MSG")
        out.venue_seqs.append(rec.seq)
        if isinstance(msg, ouch.Canceled):
            out.cancel_reasons[msg.reason] += 1
        if isinstance(msg, (ouch.Executed, ouch.ExecutedWithReferencePrice)):
            out.shares += msg.executed_shares
            out.notional += msg.executed_shares * msg.execution_price
            out.matches.add(msg.match_number)
            out.executions.append((rec.seq, msg.token, msg.executed_shares, msg.execution_price))
    out.events[name] += 1
    out.seqs.add(rec.seq)
