"""The engine's view of the feed's health and what follows from it: gaps re-requested (the
packets past one kept in mm_core.gapbuffer, applied once it is filled), a stale book (quotes
pulled), a MoldUDP64 session that changed or ended, a message that cannot be read, a feed gone
silent, Broken Trade reversals, and a symbol's fair value repriced and fed to the risk gateway.
Part of Engine (mm_core.engine); sans-io like it.
"""
from __future__ import annotations

import hashlib

from mm_core.engine_shared import _NULL, _SENT_N, _log2
from mm_core.events import Action, RequestRetransmit
from mm_core.fastbook import lib
from mm_core.gapbuffer import DUPLICATE, KEPT
from mm_core.protocol import SessionMismatch, moldudp64
from mm_core.trades import TAPE_MAX
from mm_core.types import Purpose

_reprice_c = lib.fsig_reprice


class EngineFeed:
    """Engine's feed health, repricing and risk feeds (a mixin of Engine: its state is Engine's)."""

    def _break_trade(self, match: int, actions: list[Action]) -> int:
        """ITCH Broken Trade: the tape reverses the print; journaled either way. Returns its
        symbol or -1."""
        r = self.tape.break_trade(match, self.guards, self.fv)
        if r is None:
            actions.append(self._alert("trade-break-unknown", f"match {match}: not among the last "
                                       f"{TAPE_MAX} prints"))
            return -1
        actions.append(self._alert("trade-broken", f"match {match} symbol {r.symbol_id} "
                                   f"{'buy' if r.aggressor_buys else 'sell'} {r.qty} reversed: flow=True "
                                   f"window={r.window} vpin={r.vpin}"))
        return r.symbol_id

    def _go_stale(self, reason: str, actions: list[Action]) -> None:
        """A gap or a silent feed: the book cannot be trusted until current data shows it is.
        Pull every quote now."""
        self.stale = True
        actions.append(self._alert("book-stale", reason))
        self._feed_risk_all()
        self._cancel_all(Purpose.QUOTE, actions, guard=False)

    def _md_session_changed(self, exc: SessionMismatch, packet: bytes, heard_before: int,
                            actions: list[Action]) -> bool:
        """A packet of another MoldUDP64 session. The feed moves to it (True) only when that
        session shows a consistent stream (MarketDataPath.foreign) while the followed one has
        ended or gone silent (no packet of it for longer than the market-data age limit): a
        venue restarted after a crash starts a new session, its books rebuilt from its first
        message. One stray, corrupted or foreign packet never wipes the books: it is journaled
        and the quotes pulled (the followed session's next packet shows the book current again).
        On a move nothing of the old session's books holds: pull the quotes, drop the books and
        follow the new session from its sequence 1; the packets before the first one heard are a
        gap, re-requested as any other."""
        consistent = self.md.foreign(packet)
        silent = heard_before < 0 or self.now - heard_before > self.risk.limits.max_market_age_ns
        if not (consistent and (silent or self.tracker.end_of_session)):
            self.counts["md_foreign"] += 1
            why = "its stream not yet consistent" if not consistent else "the followed session is live"
            self._alert_gated("md-foreign-session", f"{exc}: not followed ({why})", actions)
            if not self.stale:
                self._go_stale(f"a packet of another market-data session {exc.received!r}", actions)
            return False
        self.counts["md_session_changes"] += 1
        actions.append(self._alert("md-session-change", str(exc)))
        if not self.stale:
            self._go_stale(f"market-data session changed ({exc})", actions)
        self.md.new_session()
        self.counts["md_gap_discarded"] += self.gap_kept.clear()    # the old session's
        return True

    def _md_end_of_session(self, actions: list[Action]) -> None:
        """MoldUDP64 End of Session: the venue sends nothing more in this session, so the books
        will not follow the market again: pull the quotes now (not at the silence limit). Stale
        until a new session is followed (its first message rebuilds the books)."""
        self.counts["md_ends"] += 1
        actions.append(self._alert("md-end-of-session", f"session {self.tracker.session!r} ended "
                                   f"at {self.tracker.highest_announced}"))
        if not self.stale:
            self._go_stale("market-data session ended", actions)

    def _md_message_unreadable(self, sequence: int, text: str, packet: bytes, actions: list[Action]) -> None:
        """A message of a known type that could not be read: the book may miss what it said, so
        it is stale from here, and the message is re-requested (the tracker stopped before it).
        The same message unreadable again once re-requested will not come right by asking:
        escalate (journaled, a kill of everything latches HALTED) so that an operator acts.

        UDP duplicates packets, and a duplicate of the failed packet may come before the
        re-request's answer. The engine cannot tell a duplicate from an answer by when it came (it
        sees no wire, and both come after the re-request), so it decides by bytes: the first
        packet bearing exactly the bytes of the one that failed is taken as the network's
        duplicate (counted in md_duplicates, alerted, not escalated); a failure in any other
        packet (a retransmission is framed from the requested sequence), or a second identical
        copy, answers the re-request and escalates. A venue whose retransmission repeats the
        original bytes exactly is escalated one re-request later (the timer's next one): the
        book stays stale and the quotes pulled meanwhile, so the delay costs no safety."""
        digest = hashlib.blake2b(packet, digest_size=16).hexdigest()
        last, times = self.md_unreadable
        if last == sequence and times and digest == self.md_unreadable_packet:
            self.md_unreadable_packet = ""          # one duplicate only: the next copy is an answer
            self.counts["md_duplicates"] += 1
            actions.append(self._alert("md-duplicate-unreadable", f"sequence {sequence}: the same packet "
                                       "again, taken as the network's duplicate, not the re-request's answer"))
            self._request_gap(actions)
            return
        self.counts["protocol_errors"] += 1
        actions.append(self._alert("md-protocol-error", f"sequence {sequence}: {text}"))
        times = times + 1 if last == sequence else 1
        if times == 1:
            self.md_unreadable_packet = digest
        self.md_unreadable = (sequence, times)
        if not self.stale:
            self._go_stale(f"market-data message {sequence} unreadable", actions)
        if times == 2:
            self.counts["md_unrecoverable"] += 1
            reason = f"market data unrecoverable at sequence {sequence}"
            actions.append(self._alert("md-unrecoverable", f"{reason}: re-requested, unreadable again ({text})"))
            kill = self.risk.kill("all", 0, "engine", reason[:64], self.now)
            actions.append(self._kill_note(kill, self._cancel_all(None, actions, guard=False)))
        self._request_gap(actions)

    def _book_current(self, actions: list[Action]) -> None:
        """A packet with no gap before it ended a gap, a silence or the wait after reconciliation."""
        self.stale = False
        self.gap_requested_ns = -1
        actions.append(self._alert("book-recovered", f"market data current at {self.tracker.next_expected}"))

    def _check_feed_alive(self, now: int, actions: list[Action]) -> None:
        """A feed heard from once and silent for longer than the gateway's market-data age limit
        (no packet, not even a MoldUDP64 heartbeat): the books may be far from the market, as
        after a gap. The timer below refreshes each price's age for the gateway, which is only
        true while packets arrive; the next packet ends it (book-recovered)."""
        heard = self.md_heard_ns
        limit = self.risk.limits.max_market_age_ns
        if heard >= 0 and not self.stale and now - heard > limit:
            self._go_stale(f"market data silent for {(now - heard) // 1_000_000} ms "
                           f"(limit {limit // 1_000_000} ms)", actions)

    def _feed_risk_all(self, priced_only: bool = False) -> None:
        """The feed's staleness changed: tell the gateway for every symbol with a fair value, not
        just the ones the packet touched (one left stale there would hold its fault open).
        `priced_only`: skip a book that cannot be priced now (one side empty): it stays stale."""
        fair_values, specs, mid2 = self.fv.fair, self.specs, self.mid2
        for symbol_id in range(self.n):
            fair = fair_values[symbol_id]
            if specs[symbol_id] is not None and fair > 0 and (mid2[symbol_id] > 0 or not priced_only):
                self._feed_risk(symbol_id, fair)

    def _request_gap(self, actions: list[Action], answered: bool = False) -> None:
        """Re-request the gap: at once when the last request was `answered`, else when none is
        out or it went unanswered for rerequest_timeout (the packet or answer may be lost)."""
        now = self.now
        if not answered and self.gap_requested_ns >= 0 and now - self.gap_requested_ns < self.cfg.rerequest_timeout_ns:
            return
        tracker = self.tracker
        # only what is missing: up to the first packet kept past the gap, not through it
        request = tracker.request(self.cfg.rerequest_max_count, self.gap_kept.after(tracker.next_expected))
        if request is None:
            return
        self.gap_requested_ns = now
        self.gap_requested_to = request.sequence + request.count
        self._made += 1
        actions.append(RequestRetransmit(moldudp64.encode_request(request), request.sequence, request.count))

    def _keep_past_gap(self, gap: moldudp64.Gap, packet: bytes, actions: list[Action]) -> None:
        """A packet that came past the gap: kept, to be applied once the messages before it are
        in. One past the buffer's caps is dropped (counted, alerted) and asked for again with the
        gap; one whose messages a kept packet already carries is counted as discarded."""
        header = moldudp64.decode_header(packet)
        if header.is_heartbeat or header.is_end_of_session:
            return                      # no message to keep (what it announced, the tracker has)
        kept, counts = self.gap_kept, self.counts
        end = gap.received + header.count
        verdict = kept.keep(gap.received, end, packet)
        if verdict == KEPT:
            counts["md_gap_kept"] += 1
        elif verdict == DUPLICATE:
            counts["md_gap_discarded"] += 1
        else:
            counts["md_gap_dropped"] += 1
            self._alert_gated("md-gap-buffer-full", f"messages {gap.received}..{end - 1} past the gap at "
                              f"{gap.expected} not kept ({len(kept)} packets, {kept.bytes} bytes kept; caps "
                              f"{kept.max_packets} packets, {kept.max_bytes} bytes): re-requested", actions)

    def _drop_kept_behind(self) -> None:
        """Forget the kept packets whose messages all came in another packet first (counted)."""
        discarded = self.gap_kept.drop_behind(self.tracker.next_expected)
        if discarded:
            self.counts["md_gap_discarded"] += discarded

    def _reprice(self, symbol_id: int) -> None:
        """Fair value and volatility after the book changed; tell the risk gateway."""
        if self.sig is not None:
            # compiled: _market_top, fv.update, vol and hedger.observe below in one C call
            own = self._own_for(symbol_id)
            out = self._fair_out
            if own is None:
                rc = _reprice_c(self._sh, self._bh, symbol_id, self.imb_levels, self.imb_decay,
                                _NULL, _NULL, 0, 0, self.now, out)
            else:
                rc = _reprice_c(self._sh, self._bh, symbol_id, self.imb_levels, self.imb_decay,
                                own[0], own[1], own[2], own[3], self.now, out)
            fair = self.fv.calibrate_and_finish_reprice(symbol_id) if rc else out[0]
            if fair > 0:
                self._feed_risk(symbol_id, fair)
            return
        top = self._top
        depth = self._market_top(symbol_id, top)
        b, bq, a, aq = top
        fv = self.fv
        fair = fv.update(symbol_id, b, bq, a, aq, depth)
        if fair <= 0:
            self.mid2[symbol_id] = 0
            return
        mid2 = b + a
        self.mid2[symbol_id] = mid2
        vol = self.vol[symbol_id]
        if vol.update(mid2 * 0.5, self.now):
            self.vol_q[symbol_id] = int(_log2(vol.variance_per_s + 1.0) * 8)
        self._feed_risk(symbol_id, fair)
        pair = self.hedger.pairs.get(symbol_id)
        if pair is not None:
            self.hedger.observe(symbol_id, fv.mids[symbol_id], fv.mids[pair.hedge_id])

    def _feed_risk(self, symbol_id: int, fair: float, force: bool = False) -> None:
        """Tell the gateway a symbol's fair value when its price4 value or staleness changed, or
        when the last report is older than risk_refresh_ns (its market-data age must stay fresh)."""
        now = self.now
        stale = self.stale
        last = self.risk_sent[symbol_id]
        if stale and last[0] == 0:
            return      # catching up at start: never quoted on, so nothing to fail closed about
        fair_price4 = int(fair + 0.5)
        if force or last[0] != fair_price4 or last[1] != stale or now - last[2] >= self.risk_refresh_ns:
            self.risk_sent[symbol_id] = (fair_price4, stale, now)
            rx = self._rx
            if rx is not None:
                b = symbol_id * _SENT_N
                rx.sent[b:b + _SENT_N] = [fair_price4, int(stale), now]
            self.risk.on_market(symbol_id, fair, self.specs[symbol_id].reference_price, stale, now)
