"""The runner's order sending: each order journaled (ORDER_SENT) before its bytes go out, a
decision's orders in one send, the guard's pulls through the armed plans and the C lane first,
orders held back (and named) when order entry is lost, and TX stamps journaled as they arrive.
Part of Runner (mm_core.runner); makes no trading decision.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Iterable

from audit.txtrack import TxOutcome, TxStatus
from journal.catalogue import RecordType, TsSource
from journal.errors import JournalError
from mm_core.events import JournalNote, RequestRetransmit, SendOrder, venue_message_of
from mm_core.fastbook import ffi as _ffi, lib as _fastlib
from mm_core.protocol import ouch, soupbintcp
from mm_core.runner_shared import _ORDER_SENT, _USER, _oserror, _realtime
from mm_core.runnerrecords import _TX_TS_PACK, order_sent_payload
from mm_core.types import OrderKind, Side, make_intent

_CANCEL = ord("X")                   # OUCH Cancel Order: the order record may use the reserve
_LANE_NOT, _LANE_REFUSED = _fastlib.FLANE_NOT, _fastlib.FLANE_REFUSED
# an OUCH Executed frame of no quote (a NUL token) for 0 shares, which the lane never takes: upkeep
# runs the frame read's path to flane_fire_input on it (nothing is journaled, sent or changed)
_PROBE_FILL = b"\x00\x29SE" + bytes(8 + 14 + 4) + (1).to_bytes(4, "big") + b"A" + bytes(8)
_RESERVED_NOTES = frozenset({RecordType.RISK_DECISION, RecordType.STATE_CHANGE, RecordType.KILL})
# what Runner.upkeep plans (and never sends) to keep the urgent path warm: a cancel, as pulls are
_WARM_PULL = [SendOrder(make_intent(OrderKind.CANCEL, "WARM", 0, Side.BUY, 0, 0, (0, 0, 0, 0)),
                        soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.CancelOrder("WARM", 0)))),
                        None, 0)]
_OE_LOST_ALERT = "order-entry-lost"      # the alert of orders held back with no order entry


class RunnerOrders:
    """Runner's order sending, urgent pulls and TX stamps (a mixin of Runner)."""

    def _fill_first(self, frame: bytes, now: int, ts_ns: int, source) -> bool | None:
        """An OUCH Executed frame, maybe our own fill, as _input would take it, with the guard
        first: one C call (Engine.lane_first) journals it, hears the fill, decides and journals
        and sends the guard's pulls from upkeep's plan; then the engine hears the frame and books
        what that call did. None, having done nothing, where that call does not take the frame
        (not a fill of an armed quote; the plan, journal or order entry not fit: _lane_ready);
        else as _input: False when the journal refused the frame."""
        if self._space_lost:             # the reserve's appends are counted in Python (_append)
            return None
        sink = self._lane_ready()
        if sink == _ffi.NULL:
            return None
        rc = self.engine.lane_first(frame, now, sink, self.soup_seq, ts_ns, int(source))
        if rc == _LANE_NOT:
            return None
        user = int(source) == _USER
        if rc == _LANE_REFUSED:
            self._input_refused(self.journal.refusal(sink.input_seq, RecordType.VENUE_MSG), ts_ns, user)
            return False
        self.report.inputs += 1
        self._input_fed(venue_message_of(frame, now, source), ts_ns, user)
        return True

    # ------------------------------------------------------------------ outputs
    def _act(self, actions: Iterable, now: int) -> None:
        """Carry out one decision. Its orders are journaled one by one (write-ahead) and then
        leave together in one send: a later order no longer waits for the kernel to deliver the
        earlier ones (on loopback the send syscall carries the receiver's side too), and all of
        them carry the one TX stamp of that send. While the journal refuses records, each order
        goes alone, so a refused one never shifts the stamp key another was journaled with; one
        refused inside a planned send is replaced by a SoupBinTCP Debug packet of its length
        (venues ignore those; its bytes are journaled in an alert), so the others keep their key."""
        if self._urgent_held:           # the early sink's, which could not leave: first
            actions, self._urgent_held = self._urgent_held + list(actions), []
        self._acting += 1
        try:
            # the common decision, orders only (a requote's replaces, a pull's cancels): journaled
            # and sent in one C call, as the Python path below would
            if not self._orders_fast(actions):
                self._act_python(actions, now)
        finally:
            self._acting -= 1
        if not self._acting and (self._unreported or self._unsent):
            self._report_unhealthy(now)

    def _act_python(self, actions: Iterable, now: int) -> None:
        """_act's work in Python, action by action."""
        key = -1
        if self.journal_ok and not self._unreported:
            planned = sum(len(a.packet) for a in actions if isinstance(a, SendOrder))
            key = (self.tcp_bytes + planned - 1) & 0xFFFFFFFF
        self._act_from(actions, now, key, [], False)

    def _act_from(self, actions: Iterable, now: int, key: int, batch: list, padded: bool) -> None:
        """_act's work from `actions` on, with `batch` the orders of the planned send (stamp key
        `key`, -1: none) journaled so far and `padded` whether a filler is among them."""
        for action in actions:
            if isinstance(action, SendOrder):
                entry = self._journal_order(action, key)
                if entry is not None:
                    batch.append(entry)
                    if key < 0:
                        self._send_orders(batch)
                        batch = []
                elif key >= 0:
                    batch.append(self._filler(action, key, now))
                    padded = True
            elif isinstance(action, RequestRetransmit):
                self._rerequest(action, now)
            elif isinstance(action, JournalNote):
                try:
                    self._append(action.rtype, action.payload, now, int(TsSource.USER),
                                 reserve=action.rtype in _RESERVED_NOTES)
                except JournalError as exc:
                    self._journal_failed(exc, now)
        if batch and (not padded or any(seq for _, seq, _ in batch)):
            self._send_orders(batch, padded)

    def _rerequest(self, action: RequestRetransmit, now: int) -> None:
        """A MoldUDP64 re-request, from the market-data socket (the re-request server answers the
        sender's address). A send the kernel refuses (ENOBUFS, unreachable) is journaled as an
        alert and the decision's other actions go on: the engine asks again on its timer."""
        try:
            self._md.sock.sendto(action.packet, self._rerequest_to)
            self.report.md_rerequests += 1
        except OSError as exc:
            self._note_alert("rerequest-failed", f"re-request of {action.count} packet(s) from {action.sequence} "
                             f"to {self._rerequest_to[0]}:{self._rerequest_to[1]} not sent: {_oserror(exc)}", now)

    def _act_urgent(self, actions: list) -> None:
        """The early sink: the guard's pulls, or a decision's first orders, journaled and sent
        while the engine is still inside on_event. A refusal by the journal is told to the engine
        after the event (never re-entering it). With no order entry to send on, they wait for
        _act, which carries them out ahead of the event's other actions, in one go."""
        if self._oe is None or self._oe_eos or self._oe_end:
            self._urgent_held += actions
            return
        self._acting += 1
        try:
            if not self._orders_fast(actions):
                self._act_python(actions, _realtime())
        finally:
            self._acting -= 1

    def _orders_fast(self, actions: list) -> bool:
        """The orders' ORDER_SENT records and their one send in one C call (the journal's
        append_then_send: every record in before the bytes go, none sent if one is refused), with
        the records, stamp key and TX bookkeeping _act would give them. False, having done
        nothing, where only _act's Python path applies: the journal or order entry unhealthy, a
        journal without the call, an action that is not an order, cancels mixed with other orders
        (only a cancel's record may use the journal's reserve, and the call takes one flag)."""
        send, oe = self._append_send, self._oe
        if send is None or oe is None or self._oe_end or not self.journal_ok or self._unreported:
            return False
        plan = self._orders_plan(actions, oe)
        if plan is None:
            return False
        key, payloads, data, fd, cancels = plan
        try:
            seqs, status, err = send(_ORDER_SENT, payloads, _USER, self._clock_state, cancels, fd, data)
        except (TypeError, OverflowError, ValueError):     # arguments it does not take: nothing was done
            return False
        self._orders_sent(actions, key, data, cancels, seqs, status, err)
        return True

    def _fire_armed(self, orders: list) -> Callable[[list[SendOrder]], None] | None:
        """The engine's armed sink: the guard's pulls of these orders journaled and sent from
        the plan upkeep made (ArmedPulls), in one C call, before the engine builds them. Returns
        the call that books the built pulls (as _orders_fast would after its send), or None,
        having done nothing, where the plan or the journal and order entry do not allow it."""
        out = self._armed_out(orders)
        if out is None:
            return None
        key, payloads, data = out
        try:
            seqs, status, err = self._append_send(_ORDER_SENT, payloads, _USER, self._clock_state, True,
                                                  self._oe.sock.fileno(), data)
        except (TypeError, OverflowError, ValueError):
            return None

        return lambda pulls: self._armed_booked(pulls, key, payloads, data, seqs, status, err)

    def _armed_booked(self, pulls: list[SendOrder], key: int, payloads: list[bytes], data: bytes,
                      seqs, status: int, err: int) -> None:
        """The pulls the engine built, booked as sent from the plan (journaled as `payloads`)."""
        self._acting += 1
        try:
            self._orders_sent(pulls, key, data, True, seqs, status, err)
            for action, payload in zip(pulls, payloads):
                if order_sent_payload(action, key) != payload:    # never: the plan is the engine's
                    # the journal no longer says what was sent: fail closed, as on a journal
                    # failure (the engine hears it after this event: latched, every quote pulled)
                    now = _realtime()
                    self._note_alert("armed-pull-mismatch", f"{action.intent.token}: its ORDER_SENT "
                                     "was journaled from a plan that differs from the pull built", now)
                    self._journal_failed(JournalError(f"armed pull {action.intent.token}: the journaled "
                                                      "ORDER_SENT differs from the order built"), now)
                    break
        finally:
            self._acting -= 1

    def _lane_ready(self):
        """The engine's C lane asks for the sink: the plan's, with the send's stamp key base, the
        socket and the clock state of now, when the armed path may send (as _armed_out); else NULL."""
        if self._append_send is None or self._oe is None or self._oe_end or not self.journal_ok or self._unreported:
            return _ffi.NULL
        armed, engine = self._armed, self.engine
        if armed.version != engine.armed_version or armed.verdict != engine.risk_verdict():
            return _ffi.NULL
        sink = armed.sink
        sink.fd, sink.tcp_bytes, sink.clock_state = self._oe.sock.fileno(), self.tcp_bytes & 0xFFFFFFFF, self._clock_state
        return sink

    def _lane_booked(self, pulls: list[SendOrder]) -> None:
        """The pulls the engine built after its C lane sent them through the sink, booked."""
        sink = self._armed.sink
        key = sink.key
        self._armed_booked(pulls, key, self._armed.patched([a.intent for a in pulls], key),
                           b"".join([a.packet for a in pulls]), tuple(sink.seqs[0:sink.n_appended]),
                           int(sink.status), int(sink.err))

    def _armed_out(self, orders: list) -> tuple[int, list[bytes], bytes] | None:
        """(stamp key, ORDER_SENT payloads, bytes) of these orders' pulls from the plan, or None
        where the plan or the journal and order entry do not allow the armed path. Reads only."""
        if self._append_send is None or self._oe is None or self._oe_end or not self.journal_ok or self._unreported:
            return None
        engine = self.engine
        return self._armed.out(orders, self.tcp_bytes, engine.armed_version, engine.risk_verdict())

    def _orders_sent(self, actions: list, key: int, data: bytes, cancels: bool, seqs: list[int],
                     status: int, err: int) -> None:
        """After the journal's append_then_send of these orders: reserve bookkeeping, the
        refused one replaced by a filler and the rest carried on, or the send's TX bookkeeping."""
        oe = self._oe
        if cancels:
            if self._space_lost:
                self.report.reserve_appends += len(seqs)
            self._reserve_seqs.update(seqs)
        batch = [(action, seq, key) for action, seq in zip(actions, seqs)]
        if status:                   # the journal refused the next one: nothing was sent, _act goes on
            now = _realtime()
            action = actions[len(seqs)]
            self._order_refused(action, self.journal.refusal(status, RecordType.ORDER_SENT), now, cancels)
            batch.append(self._filler(action, key, now))
            self._act_from(actions[len(seqs) + 1:], now, key, batch, True)
            return
        self._orders_out(batch, self._send_failed(OSError(err, os.strerror(err))) if err else
                         self._wrote(len(data), oe.sent_elsewhere(len(data))))

    def _orders_plan(self, actions: list, oe) -> tuple[int, list[bytes], bytes, int, bool] | None:
        """(stamp key, ORDER_SENT payloads, bytes, order-entry descriptor, all cancels) of orders
        that leave in one send, as _act would journal them; None unless every action is an order
        and either all or none of them are cancels."""
        if type(actions) is not list:
            return None
        planned = cancels = 0
        for action in actions:
            if type(action) is not SendOrder:
                return None
            packet = action.packet
            planned += len(packet)
            if packet[3] == _CANCEL:
                cancels += 1
        if not planned or (cancels and cancels != len(actions)):
            return None
        key = (self.tcp_bytes + planned - 1) & 0xFFFFFFFF
        data = actions[0].packet if len(actions) == 1 else b"".join([a.packet for a in actions])
        return key, [order_sent_payload(action, key) for action in actions], data, oe.sock.fileno(), bool(cancels)

    def upkeep(self) -> None:
        """Idle-time upkeep, after a wake-up's work and before the loop waits again: the engine's
        (Engine.prepare), then the urgent path's Python planning run on a stand-in pull, so that
        a guard's pulls (rare: a toxic print comes once in thousands of packets) find that code
        and its data in the caches. It journals nothing, sends nothing, changes no state."""
        engine = self.engine
        engine.prepare()
        if self._append_send is not None and self._oe is not None:
            armed = self._armed
            armed.plan(engine, order_sent_payload)
            if armed.sample:
                self._armed_out(armed.sample)     # the armed path's Python, warm when a trip comes
                # and the frame read's to the C lane (it fills the sink, the lane refuses the probe)
                self._fill_first(_PROBE_FILL, 0, 0, _USER)
            self.warm_order_path()

    def warm_order_path(self) -> None:
        """Between upkeeps, while the loop idles: the Python that plans a decision's orders (their
        ORDER_SENT payloads and one send) run on a stand-in pull, as upkeep runs it, so orders
        after an idle spell find it warm (their send() entered ~5 us after _act, against 8-11
        cold). Journals nothing, sends nothing, changes no state."""
        if self._append_send is not None and self._oe is not None:
            self._orders_plan(_WARM_PULL, self._oe)

    def _send_order(self, action: SendOrder) -> None:
        """One order on its own: journaled, then sent."""
        entry = self._journal_order(action, -1)
        if entry is not None:
            self._send_orders([entry])

    def _journal_order(self, action: SendOrder, tskey: int) -> tuple[SendOrder, int, int] | None:
        """The ORDER_SENT record, with the TX stamp key the order's send will carry (`tskey`; -1:
        its own last byte, when it is sent alone). None when the journal refused it: Rule 1, an
        order that is not in the journal does not go out."""
        packet = action.packet
        if tskey < 0:
            tskey = (self.tcp_bytes + len(packet) - 1) & 0xFFFFFFFF
        payload = order_sent_payload(action, tskey)
        now = _realtime()
        cancel = packet[3] == _CANCEL
        try:
            seq = self._append(RecordType.ORDER_SENT, payload, now, int(TsSource.USER), reserve=cancel)
        except JournalError as exc:
            self._order_refused(action, exc, now, cancel)
            return None
        if cancel:
            self._reserve_seqs.add(seq)
        return action, seq, tskey

    def _order_refused(self, action: SendOrder, exc: JournalError, now: int, cancel: bool) -> None:
        """An order whose ORDER_SENT the journal refused: it is not sent (Rule 1)."""
        if cancel:
            self.report.cancels_withheld += 1
        self._journal_failed(exc, now, "" if cancel else action.intent.token)

    def _filler(self, action: SendOrder, tskey: int, now: int) -> tuple[SendOrder, int, int]:
        """The stand-in of an order the journal refused inside a planned send: a SoupBinTCP Debug
        packet as long as the order (seq 0: no order), journaled in an alert (in the reserve)."""
        n = len(action.packet)
        text = f"withheld {action.intent.token}".encode()[: n - 3].ljust(n - 3, b".")
        filler = (n - 2).to_bytes(2, "big") + b"+" + text
        self._note_alert("order-withheld", f"{action.intent.token} was not journaled: a Debug packet of its "
                         f"{n} bytes went in its place, so the orders sent with it keep stamp key {tskey}",
                         now, filler, reserve=True)
        return SendOrder(action.intent, filler, action.decision, action.trading_state), 0, tskey

    def _send_orders(self, batch: list[tuple[SendOrder, int, int]], padded: bool = False) -> None:
        """Journaled orders out in one send; each gets a TX_TS record from that send's stamp
        (`padded`: the batch holds fillers, seq 0, sent but no order)."""
        if self._oe is None or self._oe_eos:
            self._withhold([entry for entry in batch if entry[1]] if padded else batch)
            return
        data = batch[0][0].packet if len(batch) == 1 else b"".join(a.packet for a, _, _ in batch)
        key = self._send_tcp(data)
        if padded:
            batch = [entry for entry in batch if entry[1]]
        self._orders_out(batch, key)

    def _orders_out(self, batch: list[tuple[SendOrder, int, int]], key: int) -> None:
        """After the send of journaled orders (no fillers): its TX key, -1 when it failed."""
        if key < 0:                  # journaled, refused by the socket: no stamp will ever come
            self.report.sends_failed += len(batch)
            for _, seq, tskey in batch:
                self._journal_tx(TxOutcome(tskey, (seq,), TxStatus.SEND_FAILED, 0, TsSource.NONE))
            return
        for action, seq, tskey in batch:
            if key != tskey:
                self._note_alert("tskey-mismatch", f"journaled {tskey}, socket says {key} "
                                 f"({action.intent.token})", _realtime())
        for outcome in self.tx.sent(key, time.monotonic_ns(), tuple(seq for _, seq, _ in batch)):
            self._journal_tx(outcome)
        self.report.orders_sent += len(batch)
        for action, _, _ in batch:
            self._order_sent(action)

    def _withhold(self, batch: list[tuple[SendOrder, int, int]]) -> None:
        """Journaled orders with no order entry to send them on (a reconciliation could not log
        in again; only cancels get this far while the gateway is latched unreconciled): not sent,
        their TX stamps journaled MISSING, an alert names them. The next reconciliation compares
        what the venue holds and resolves it, as after a crash between journal and send."""
        self.report.orders_unsent += len(batch)
        for action, seq, tskey in batch:
            self._journal_tx(TxOutcome(tskey, (seq,), TxStatus.MISSING, 0, TsSource.NONE))
        self._note_alert(_OE_LOST_ALERT, f"{len(batch)} journaled order(s) not sent, no order entry: "
                         + ",".join(a.intent.token for a, _, _ in batch)[:160], _realtime())

    def _order_sent(self, action: SendOrder) -> None:
        """Called for every order once its bytes went to the kernel (for subclasses)."""

    def _drain_tx(self, mono_ns: int) -> None:
        stamps = ()
        if self._oe is not None:
            try:
                stamps = self._oe.poll_tx_timestamps()
            except OSError as exc:       # the stamps still due come out missing at their timeout
                self._oe_broke(f"order entry failed: {_oserror(exc)}")
        for outcome in self.tx.collect(stamps, mono_ns):
            self._journal_tx(outcome)
        self.report.tx_unmatched, self.report.tx_repeated = self.tx.unmatched, self.tx.repeated

    def _journal_tx(self, outcome) -> None:
        """One TX_TS record per order of the send (outcome.context: their ORDER_SENT seqs)."""
        for seq in outcome.context:
            payload = _TX_TS_PACK(seq, outcome.tskey, outcome.status, outcome.source, outcome.ts_ns)
            reserve = seq in self._reserve_seqs
            if reserve:
                self._reserve_seqs.discard(seq)
            try:
                self._append(RecordType.TX_TS, payload, outcome.ts_ns, int(outcome.source), reserve=reserve)
            except JournalError as exc:
                self._journal_failed(exc, _realtime())
                continue
            if outcome.status == TxStatus.STAMPED:   # counted once journaled: the summary matches it
                self.report.tx_stamped += 1
            elif outcome.status == TxStatus.LATE:
                self.report.tx_late += 1
            else:
                self.report.tx_missing += 1
