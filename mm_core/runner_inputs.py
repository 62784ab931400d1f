"""The runner's inputs: market-data packets and order-entry frames read with their RX stamps
(drops, foreign senders and venue sequence breaks counted and alerted), timers and clock
samples taken, each journaled before the engine hears it (runner_journal). Part of Runner
(mm_core.runner); makes no trading decision.
"""
from __future__ import annotations

import contextlib
import select
import socket
import time

from audit.phc import phc_leap, phc_offset
from audit.rxbuffer import RxBufferError
from journal.catalogue import ClockState, RecordType, TsSource, pack, unpack, venue_payload
from mm_core.events import ClockSample, Timer, market_data_of, venue_message_of
from mm_core.protocol import ProtocolError, soupbintcp
from mm_core.runner_shared import _MD_TURN, _oserror, _realtime
from mm_core.runnerrecords import engine_time
from mm_core.runnertypes import LoginRejected, VenueSequenceError

_HEARTBEAT = ord("H")                # SoupBinTCP server heartbeat: not an answer, never reserved
_EXECUTED = ord("E")                 # OUCH Executed: maybe our own fill, for the guard's lane
_OE_CLOSED = "venue closed the order-entry session"
_OE_EOS = "venue end of session"         # the venue's SoupBinTCP End of Session: a clean end
# a frame that is not the last of its read, or that a read's partial frame follows: the read's one
# stamp (its last segment's) is only an upper bound on when this frame arrived
_RECEIVED_BY = {TsSource.SW_KERNEL: TsSource.SW_KERNEL_BY, TsSource.HW_PHC: TsSource.HW_PHC_BY}
_HW_PHC = TsSource.HW_PHC
_MD_FOREIGN_NAMED = 16      # other senders named in an alert, at most (the rest only counted)


class RunnerInputs:
    """Runner's reads of market data, order entry, timers and clock samples (a mixin of Runner)."""

    def _poll_order_entry(self, poller, old_fd: int) -> int:
        """Poll the current order-entry socket instead of the one before (closed: the poller
        forgot it); its descriptor, -1 with none."""
        if old_fd >= 0:
            with contextlib.suppress(OSError, ValueError):
                poller.unregister(old_fd)
        if self._oe is None:
            return -1
        fd = self._oe.sock.fileno()
        try:
            poller.register(fd, select.EPOLLIN)
        except FileExistsError:
            poller.modify(fd, select.EPOLLIN)
        return fd

    # ------------------------------------------------------------------ inputs
    def _on_md(self, errors: bool = True) -> int:
        """Read (and journal, and feed) the packets waiting, at most _MD_TURN (the timers and the
        order socket get their turn); how many. `errors`: with none waiting, the socket was
        readable for its error queue, which is drained."""
        for i in range(_MD_TURN):
            try:
                data, sender, rx_ns, source = self._md.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                if not i and errors:
                    # readable for the error queue only: TX stamps of our re-requests (not
                    # evidence of any order) would keep the socket readable for ever, so drain
                    # them (after packets were read the next wake-up finds them, if any)
                    self._md.poll_tx_timestamps()
                return i
            self._md_packet(data, sender, rx_ns, source)
        return _MD_TURN

    def _md_packet(self, data: bytes, sender: tuple, rx_ns: int, source) -> None:
        """One datagram read off the market-data socket: journaled and fed, or refused when it
        does not come from the venue's market data. Drops the kernel counted before it are
        journaled ahead of it: the gap it may open has its cause in the journal."""
        md = self._md
        if md is not None and md.rx_drops and md.rx_drops != self.md_drops.seen:
            self._md_dropped(self.md_drops.new())
        if sender[0] not in self._md_from:
            self._md_refused(data, sender[0])
            return
        if source != _HW_PHC:
            now = rx_ns
        elif self._utc_leap:
            now = engine_time(rx_ns, source, self._utc_offset_s, self._utc_leap)
        else:
            now = rx_ns - self._utc_offset_s * 1_000_000_000                 # engine_time inlined
        self._input(RecordType.MD_PACKET, data, rx_ns, source, market_data_of(data, now, source),
                    read_ns=_realtime())

    def _md_dropped(self, n: int, tail: bool = False) -> None:
        """n datagrams the kernel dropped on the market-data socket: counted, and journaled in an
        alert (MdDrops.alert: at most one a second, the run's end naming any held back)."""
        self.report.md_kernel_drops += n
        now = _realtime()
        text = self.md_drops.alert(n, self.report.md_kernel_drops, now, tail)
        if text is not None:
            self._note_alert("md-kernel-drops", text, now)

    def _md_tail_drops(self) -> None:
        """At the end of a run: the drops no datagram read carried (the socket's own count)."""
        if self.md_drops is None:
            return
        try:
            self._md_dropped(self.md_drops.tail(), tail=True)
        except RxBufferError as exc:
            self._note_alert("md-kernel-drops", f"drops after the last datagram read not known: {exc}", _realtime())

    def _md_refused(self, data: bytes, sender: str) -> None:
        """A datagram from an address the venue's market data does not come from (anyone can
        send to the port): never fed to the engine, counted, the first from each sender
        journaled in an alert with its bytes (a flood of them cannot fill the journal)."""
        self.report.md_foreign += 1
        if sender not in self._md_foreign and len(self._md_foreign) < _MD_FOREIGN_NAMED:
            self._md_foreign.add(sender)
            self._note_alert("md-foreign-source", f"market data from {sender} refused (expected "
                             f"{', '.join(sorted(self._md_from))}); later ones only counted",
                             _realtime(), data[:256])

    def _on_oe(self) -> bool:
        """Readable order entry: TX stamps on the error queue (they make the socket readable too)
        and/or venue bytes. False when the order entry ended: the venue closed or reset it (the
        bytes of a frame cut short are journaled in an alert), or its stream cannot be framed."""
        mono_ns = time.monotonic_ns()
        self._drain_tx(mono_ns)
        try:
            data, rx_ns, source = self._oe.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            return self._link_lost(f"order entry read failed: {_oserror(exc)}")
        self._last_rx_mono = mono_ns
        if not data:
            partial = self.framer.partial
            if partial:
                self._note_alert("venue-partial-frame", f"the venue's stream ended {len(partial)} bytes "
                                 "into a frame", _realtime(), partial)
            return self._link_lost(_OE_CLOSED)
        return self._on_oe_bytes(data, rx_ns, source)

    def _on_oe_bytes(self, data: bytes, rx_ns: int, source) -> bool:
        error = None
        try:
            frames = self.framer.feed(data)
        except ProtocolError as exc:     # the whole frames before the bad length go in first
            frames, error = self.framer.salvaged, exc
        rejected = None
        bound = _RECEIVED_BY.get(source, source)    # USER: taken after the read, true for every frame
        last = len(frames) - 1 if error is None and not self.framer.buffered else -1
        for i, frame in enumerate(frames):
            src = source if i == last else bound
            ptype = frame[2]
            msg_type = 0
            if ptype == ord("S"):
                self.soup_seq += 1
                msg_type = frame[3] if len(frame) > 3 else 0
            elif ptype == ord("A"):
                try:
                    accepted = soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER)
                except ProtocolError:
                    accepted = None
                if accepted is not None and self._oe_asked and accepted.sequence != self._oe_asked:
                    raise self._venue_sequence(accepted.sequence, b"".join(frames[i:]))
                if accepted is not None:
                    self.soup_seq = accepted.sequence - 1
                    self._oe_accepted = True
            elif ptype == ord("J"):
                rejected = frame             # raised once the frames up to it are journaled
            elif ptype == ord("Z"):
                # the venue ended the session: nothing more is sent (orders decided from here on
                # are withheld), the run ends cleanly; the frames after it are still taken
                self._oe_eos = True
                self._oe_lost(_OE_EOS)
            now = engine_time(rx_ns, src, self._utc_offset_s, self._utc_leap)
            fed = self._fill_first(frame, now, rx_ns, src) if msg_type == _EXECUTED else None
            if fed is None:
                rtype, payload = venue_payload(self.soup_seq if ptype == ord("S") else 0, ptype, msg_type, frame)
                # the venue's answers may use the reserve: the engine must know what it owns
                fed = self._input(rtype, payload, rx_ns, src, venue_message_of(frame, now, src),
                                  reserve=ptype != _HEARTBEAT)
            if not fed and msg_type:
                self._venue_refused.add(self.soup_seq)
            if msg_type and self._tap is not None:
                self._tap.append((self.soup_seq, frame[3:]))
            if rejected is not None:
                raise LoginRejected(rejected[3:4].decode("ascii", "replace"))
        if error is not None:
            self.report.protocol_errors += 1
            self._note_alert("venue-framing-error", str(error), _realtime(), self.framer.unframed)
            return self._link_lost(f"venue framing error: {error}")
        return True

    def _venue_sequence(self, start: int, unfed: bytes) -> VenueSequenceError:
        """The login asked for _oe_asked, the venue starts at `start`: its frames from the
        LoginAccepted on are kept in an alert, never fed; the engine latches (its pulls still go
        out), then the connection is closed unread and the link ends."""
        why = (f"the venue's login starts at sequence {start}, the runner asked for {self._oe_asked}: "
               "nothing of that session was fed")
        self._note_alert("venue-sequence", why, _realtime(), unfed)
        self._link_dead(why)
        self.drop_order_entry()
        self._oe_lost(why)
        return VenueSequenceError(why)

    def _on_timer(self, mono_ns: int) -> None:
        now = _realtime()
        payload = pack(RecordType.TIMER, timer_id=1, now_ns=now)
        self._input(RecordType.TIMER, payload, now, TsSource.USER, Timer(now, 1))
        self._drain_tx(mono_ns)
        if mono_ns - self._last_rx_mono >= self.settings.rx_timeout_ns and self._oe is not None \
                and not self._oe_end:
            self._venue_silent(mono_ns)

    def _on_clock(self, mono_ns: int) -> None:
        """Journal each clock sample the monitor took since the last look, exactly once and at its
        own measurement time, and tell the engine whether it is compliant. The record's compliant
        mask is what the engine was told: a monitor that went stale or failed (it says not
        compliant while its sample says compliant) clears every profile bit. A monitor that
        stalled without a new sample gets one UNKNOWN record, at now, with no bits. A replay sees
        exactly the same inputs."""
        self._clock_looked = mono_ns
        clock, profile = self.clock, self.settings.clock_profile
        newest = clock.current()
        ok = bool(clock.compliant(profile, mono_ns))
        trusted = ok or not newest.compliant(profile)
        since = getattr(clock, "samples_since", None)
        if since is not None:
            self._clock_seen, new, missed = since(self._clock_seen)
            if missed:
                self._note_alert("clock-samples-missed", f"{missed} clock samples left the monitor's "
                                 "history before the runner could journal them", _realtime())
        else:       # a clock without a history (a drill or test clock): its newest sample, if new
            key = (newest.mono_ns, newest.realtime_ns)
            new = (newest,) if key != self._clock_seen else ()
            self._clock_seen = key
        for sample in new:
            record, state = self._clock_payload(sample)
            if not trusted:
                record["compliant_mask"] = 0
            if self._clock_record(record, sample.realtime_ns, state):
                self.clock_shown = (sample, record)
        if not new and not ok and self._clock_told is not False:
            record, _ = self._clock_payload(newest)
            record["state"], record["error_bound_ns"], record["compliant_mask"] = int(ClockState.UNKNOWN), -1, 0
            if self._clock_record(record, _realtime(), ClockState.UNKNOWN):
                self.clock_shown = (newest, record)
        if self.publish_metrics is not None:
            self._publish_metrics()

    def _publish_metrics(self) -> None:
        """The scrape endpoint's text refreshed, once a clock step (never per packet). A refresh
        that fails is turned off for the rest of the run, said in one alert: the endpoint then
        goes stale (503) while trading goes on, as it does without one."""
        try:
            self.publish_metrics()
        except Exception as exc:         # a display's fault must never stop trading
            self.publish_metrics = None
            self._note_alert("metrics-publish-failed", f"the scrape endpoint is no longer refreshed: "
                             f"{type(exc).__name__}: {exc}"[:200], _realtime())

    def _clock_payload(self, sample):
        """A sample's CLOCK_SAMPLE record and state. One that does not fit the layout (a value no
        PTP field can hold reached the sample) is not evidence: it goes in as UNKNOWN with no
        bound and no bits, and a METRICS alert says why; the session carries on fail-closed."""
        try:
            return unpack(RecordType.CLOCK_SAMPLE, sample.payload()).copy(), sample.state
        except ValueError as exc:
            self._note_alert("clock-sample-unfit", f"a {sample.state.name} clock sample does not fit "
                             f"CLOCK_SAMPLE: {exc}", _realtime())
            payload = pack(RecordType.CLOCK_SAMPLE, state=int(ClockState.UNKNOWN), error_bound_ns=-1,
                           last_sync_age_ns=-1, gm_clock_accuracy=0xFE)
            return unpack(RecordType.CLOCK_SAMPLE, payload).copy(), ClockState.UNKNOWN

    def _clock_record(self, record, ts_ns: int, state: ClockState) -> bool:
        """One CLOCK_SAMPLE: journaled, then given to the engine; later records carry its state,
        the engine's answer to it included (a clock fault pulls the quotes: those cancels).
        False when the journal refused it."""
        compliant = bool(int(record["compliant_mask"]) & self._clock_bit)
        before, self._clock_state = self._clock_state, int(state)
        if self._input(RecordType.CLOCK_SAMPLE, record.tobytes(), ts_ns, TsSource.USER,
                       ClockSample(ts_ns, compliant), clock_state=int(state)):
            self._clock_told = compliant
            sets, offset = phc_offset(record)
            if sets:
                self._utc_offset_s = int(offset)
                self._utc_leap = int(phc_leap(record))
            return True
        self._clock_state = before     # the journal refused the sample: its state is not in force
        return False
