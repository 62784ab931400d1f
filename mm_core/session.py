"""One trading session from config files: the I/O shell's composition root.

Owns building a session — venue (embedded in-process, a `python3 -m mm_core.venue` subprocess, or
HOST:PORT), engine, risk gateway with its limits, journal, clock monitor (a ptp4l through pmc, or
a loopback PTP lab) — running it through the runner, and tearing everything down on every exit.
Must not make trading decisions (mm_core.engine) nor judge the clock (audit.health): it only wires.
Its configuration, settings, summary and errors are mm_core.sessionconfig's; starting the venue,
the clock monitor and the journal is mm_core.sessionsetup's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Callable

from audit.monitor import ClockMonitor
from journal import Journal, JournalError
from journal.catalogue import RecordType, TsSource, pack, pack_json, session_stop
from mm_core.control import ControlError, ControlServer
from mm_core.cpuplan import rest_elsewhere
from mm_core.engine import Engine
from mm_core.mdsocket import open_market_data
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerSettings, stage_latencies
from mm_core.sessionconfig import (
    ClockReport, Progress, SessionConfigError, SessionInputs, SessionInterrupted, SessionSettings,
    SessionSummary, VenueSpec, VenueUnavailable, _CONTROL_HINT, load_inputs,
)
from mm_core.sessionfacts import read_session
from mm_core.sessionmetrics import SessionMetrics
from mm_core.sessionsetup import (
    _check_readable, _code_digest, _code_version, _journal_made, _open_journal, _refuse_stale_build,
    _refuse_used, _start_clock, _start_venue, _unmake_unused, _wait_for_clock, joined_group,
)
from mm_core.tagclaim import claim_tag

__all__ = ["Session", "Resumed", "run_session", "positions_by_name", "END_NOTE", "RESUME_NOTE"]

END_NOTE = "session-end"             # the METRICS note of the end-of-run summary journaled
RESUME_NOTE = "session-resume"       # the METRICS note where a resumed session goes on (Session.resume)


def positions_by_name(engine: Engine, names: dict[int, str]) -> dict[str, int]:
    """Symbol name -> position of every quoted symbol and every other symbol with a position (a
    hedge, an adopted order's fill), by symbol id: what the positions row and line show."""
    pos, quoted = engine.inventory.position, set(engine.quoted)
    return {names[i]: pos[i] for i in sorted(names) if i in quoted or pos[i]}


@dataclass(frozen=True)
class Resumed:
    """What a recovery of the journal's crashed session hands a session that trades on in it
    (`mmaudit run --resume`): the replayed and reconciled engine, the session id of the journal's
    last SESSION_START (its SESSION_STOP names it), and the UTC offset the journal last recorded."""

    engine: Engine
    session_id: int
    utc_offset_s: int | None
    utc_leap: int = 0
    start_seq: int = 0               # that SESSION_START's sequence (the summary reads commands from it)


def run_session(settings: SessionSettings, inputs: SessionInputs | None = None, **kw) -> SessionSummary:
    """Session(settings, inputs, **kw).run()"""
    return Session(settings, inputs, **kw).run()


class Session():
    """Build, run and tear down one session. `run()` returns a SessionSummary.

    Example:
        summary = Session(SessionSettings("/tmp/j", 10, clock=ClockSpec("lab"))).run()
    `stop` (a threading.Event) ends the session early and cleanly (Ctrl-C in the CLI);
    `progress` is called about once per progress_interval_s from a helper thread; `reconciler`
    carries out an operator's "reconcile" (recovery.midsession.LiveReconciler: mm_core may not
    import recovery, so the caller hands it in; without one the command is refused). `resume`
    trades on in a journal whose session crashed: called once the clock and venue are up, it
    recovers that session (replay, reconciliation) and returns the engine to go on with, or raises
    SessionError when trading may not resume; no SESSION_START is written, the session's own
    SESSION_STOP ends it. `metrics` gets the session's Prometheus text (mm_core.sessionmetrics)
    from the runner's thread once a clock period while it trades (`run --metrics-listen`: the
    caller's MetricsServer.publish, which the caller opens and closes).
    """

    def __init__(self, settings: SessionSettings, inputs: SessionInputs | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 stop: threading.Event | None = None,
                 on_started: Callable[["Session"], None] | None = None,
                 reconciler: Callable | None = None,
                 resume: Callable[["SessionInputs"], Resumed] | None = None,
                 metrics: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self.resume = resume
        self.inputs = inputs or load_inputs()
        self.profile = self.inputs.limits.clock_profile
        self.progress = progress
        self.stop = stop or threading.Event()
        self.on_started = on_started
        self.metrics = metrics
        self.engine: Engine | None = None
        self.runner: Runner | None = None
        self.monitor: ClockMonitor | None = None
        self.venue: dict = {}
        self.clock_source = self.clock_note = ""
        self._started = 0.0
        self.end_metrics: dict | None = None    # the engine summary journaled at the end (printed)
        self._commands_from: int | None = None   # resumed: where the session's operator commands start
        self._md_early = None                     # the market-data socket opened before the venue

    # -- progress ----------------------------------------------------------------------------
    def snapshot(self) -> Progress:
        """Plain reads of counters the runner thread updates (no engine method is called)."""
        engine, runner, monitor = self.engine, self.runner, self.monitor
        names = {s.id: s.name for s in self.inputs.symbols.symbols}
        sample = monitor.current()
        return Progress(
            elapsed_s=time.monotonic() - self._started, events=engine.counts["events"],
            orders_sent=runner.report.orders_sent, fills=sum(engine.metrics.fills),
            positions=positions_by_name(engine, names),
            pnl_price4=engine.risk.pnl, trading_state=engine.risk.state.name,
            clock_state=sample.state.name, clock_compliant=monitor.compliant(self.profile))

    def _progress_loop(self, done: threading.Event) -> None:
        while not done.wait(self.settings.progress_interval_s):
            try:
                self.progress(self.snapshot())
            except Exception:      # a display problem must never stop trading or teardown
                pass

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> SessionSummary:
        s = self.settings
        self._started = time.monotonic()
        with contextlib.ExitStack() as stack:
            # first: every thread and process the session starts (the clock lab, the venue, the
            # journal's helper, the monitor) stays off the trading loop's CPU, if it has one
            stack.enter_context(rest_elsewhere(s.trading_cpu))
            _refuse_stale_build()
            if self.resume is None:
                _refuse_used(s.journal_dir)
            session_id, resumed = 1, None
            # the clock and the venue before the journal: a start that fails there leaves nothing
            self.monitor, source, note = _start_clock(s.clock, stack)
            self.clock_source, self.clock_note = source, note
            warm_at_start = _wait_for_clock(self.monitor, self.profile, s.clock.warmup, self.stop)
            self._refuse_interrupted()
            venue_spec, self.venue = _start_venue(self._md_first(s, stack), self.inputs, s, stack)
            if self.resume is not None:
                resumed = self.resume(self.inputs)     # the journal is closed again when it returns
                self.engine, session_id = resumed.engine, resumed.session_id
                self._commands_from = resumed.start_seq or None
            else:
                self.engine = self.inputs.build_engine()
            # what the open makes is removed again if no record is written (a refused login, a
            # control path in use, Ctrl-C): the runner's sockets need the journal
            made = _journal_made(s.journal_dir)
            if made is not None:
                stack.callback(_unmake_unused, made, s.journal_dir)
            journal = _open_journal(s.journal_dir, s.durability)
            stack.callback(journal.close)
            _check_readable(s.journal_dir, resumed=resumed is not None)
            user = self.inputs.venue_config.users[0] if venue_spec.kind != "external" else None
            self.runner = Runner(self.engine, journal, RunnerSettings(
                host=venue_spec.host, itch_port=venue_spec.itch_port, ouch_port=venue_spec.ouch_port,
                rerequest_port=venue_spec.rerequest_port, md_bind=venue_spec.md_bind,
                md_interface=venue_spec.md_interface or "0.0.0.0",
                md_sources=venue_spec.md_sources, clock_profile=self.profile,
                busy_poll=s.busy_poll, trading_cpu=s.trading_cpu, close_out_ns=max(1, round(s.close_out_s * 1e9)), md_rcvbuf=s.md_rcvbuf,
                **({} if resumed is None else {"fresh_session": False, "utc_offset_s": resumed.utc_offset_s,
                                               "utc_leap": resumed.utc_leap}),
                **({} if s.warm_interval_ns is None else {"warm_interval_ns": s.warm_interval_ns}),
                **({"username": user.username, "password": user.password} if user else {})), self.monitor,
                reconciler=self.reconciler, md_socket=self._md_early)
            # the control socket before the session's first record: a path another session
            # answers on stops this one before it writes anything (commands sent meanwhile wait
            # in the runner's queue until it runs)
            control = self._start_control(stack)
            # the venue's sockets before the session's first record too: one it cannot reach
            # leaves the journal empty, free for the next attempt (a used journal is refused)
            stack.callback(self.runner.close)
            try:
                self.runner.connect()
            except RunnerError as exc:
                raise VenueUnavailable(str(exc)) from None
            self._refuse_interrupted()
            first_seq = (self._journal_start(journal, session_id, source, note) if resumed is None
                         else self._journal_resume(journal, session_id, source, note))
            if self.metrics is not None:
                self.runner.publish_metrics = self._session_metrics(journal, first_seq)
            # from here on every exit writes the session's closing records, a failure to start
            # the monitor, the progress thread or the caller's on_started included
            try:
                self.monitor.start()
                stack.callback(self.monitor.stop)
                done = threading.Event()
                if self.progress is not None:
                    thread = threading.Thread(target=self._progress_loop, args=(done,),
                                              name="session-progress", daemon=True)
                    thread.start()
                    stack.callback(thread.join, 5)
                stack.callback(done.set)
                if self.on_started is not None:
                    self.on_started(self)
                report = self.runner.run(s.duration_s, self.stop)
            except RunnerError as exc:
                raise VenueUnavailable(str(exc)) from None
            finally:
                if control is not None:
                    control.stop()           # nothing is taken once the runner stopped draining
                self._journal_stop(journal, session_id)
            end_sample = self.monitor.current()
            end_compliant = self.monitor.compliant(self.profile)
        return self._summary(session_id, first_seq, report, source, note, end_sample, end_compliant,
                             warm_at_start)

    def _session_metrics(self, journal: Journal, first_seq: int) -> SessionMetrics:
        """What the runner refreshes the `metrics` sink with: the session's Prometheus text."""
        engine, names = self.engine, {s.id: s.name for s in self.inputs.symbols.symbols}
        return SessionMetrics(engine, self.runner, journal, first_seq, lambda: positions_by_name(engine, names),
                              self.metrics, getattr(self.monitor, "labels", None))

    def _refuse_interrupted(self) -> None:
        """A stop (Ctrl-C) during start-up ends it before the session's first record."""
        if self.stop.is_set():
            raise SessionInterrupted("interrupted before trading: no session was journaled")

    def _md_first(self, s: "SessionSettings", stack: contextlib.ExitStack) -> VenueSpec:
        """The venue to start, its market data on a socket opened now (kept for the runner) when
        this session starts the venue: the venue's start of day then waits there for the runner,
        stamped by the kernel as it arrives, instead of being sent before anything listens and
        re-requested as a gap at every session's start (on the venue config's multicast group
        when it names one: joined_group). An external venue is already running."""
        spec = joined_group(s.venue, self.inputs.venue_config.venue)
        if spec.kind == "external":
            return spec
        try:
            md = open_market_data(RunnerSettings(host=spec.host, itch_port=spec.itch_port, md_bind=spec.md_bind,
                                                 md_interface=spec.md_interface or "0.0.0.0",
                                                 md_rcvbuf=s.md_rcvbuf))
        except RunnerError as exc:
            raise VenueUnavailable(str(exc)) from None
        stack.callback(md.close)
        self._md_early = md
        return dataclasses.replace(spec, itch_port=md.sock.getsockname()[1])

    def _start_control(self, stack: contextlib.ExitStack) -> ControlServer | None:
        """The operator's control socket, when the settings ask for one (`mmaudit operator`)."""
        if not self.settings.control_path:
            return None
        engine, runner = self.engine, self.runner
        symbols = {sym.name: sym.id for sym in self.inputs.symbols.symbols}
        cfg = engine.cfg                # the ids every order of the session carries

        def status() -> dict:       # plain reads of what the runner thread updates
            return {"trading_state": engine.risk.state.name, "faults": list(engine.risk.faults),
                    "orders_sent": runner.report.orders_sent}
        try:
            server = ControlServer(self.settings.control_path, runner.operator, status, symbols=symbols,
                                   ids={"algo": cfg.algo_id, "desk": cfg.desk_id, "client": cfg.client_id}).start()
        except ControlError as exc:
            raise SessionConfigError(f"{exc}{_CONTROL_HINT}") from None
        stack.callback(server.stop)
        return server

    def _journal_start(self, journal: Journal, session_id: int, source: str, note: str) -> int:
        """SESSION_START, the limits document in force, and a note saying where the clock
        evidence comes from (the lab's is not traceable: it says so in the journal too). The
        engine's tokens carry the session's tag (mm_core.sessiontag, claimed on this host by
        mm_core.tagclaim) from here on."""
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        tag = claim_tag(self.engine.oms.prefix, now)
        self.engine.oms.start_session(tag)
        first = journal.append(RecordType.SESSION_START, pack(
            RecordType.SESSION_START, session_id=session_id, config_sha256=self.inputs.config_sha256(),
            code_version=_code_version().encode()[:16], code_fingerprint=_code_digest(),
            limits_version=str(self.inputs.limits.version).encode(),
            venue_session=str(self.venue.get("session", "")).encode()[:10],
            profile=self.profile.encode()[:8], token_tag=tag.encode()),
            ts_ns=now, ts_source=int(TsSource.USER))
        journal.append(RecordType.LIMITS_LOADED, pack_json({
            "version": self.inputs.limits.version, "sha256": self.inputs.limits.digest,
            "source": self.inputs.sources["limits"], "document": self.inputs.limits_text}),
            ts_ns=now, ts_source=int(TsSource.USER))
        journal.append(RecordType.METRICS, pack_json({
            "note": "session-start", "session_id": session_id, "clock_profile": self.profile,
            "clock_source": source, "clock_evidence": note, "venue": self.venue,
            "inputs": self.inputs.sources, "md_socket": self.runner.md_drops.facts()}),
            ts_ns=now, ts_source=int(TsSource.USER))
        return first

    def _journal_resume(self, journal: Journal, session_id: int, source: str, note: str) -> int:
        """A METRICS "session-resume" note where a resumed session goes on (recovery's records
        before it), in place of SESSION_START: the session, its clock evidence and inputs."""
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        return journal.append(RecordType.METRICS, pack_json({
            "note": RESUME_NOTE, "session_id": session_id, "clock_profile": self.profile,
            "clock_source": source, "clock_evidence": note, "venue": self.venue,
            "inputs": self.inputs.sources, "config_sha256": self.inputs.config_sha256().hex(),
            "md_socket": self.runner.md_drops.facts()}), ts_ns=now, ts_source=int(TsSource.USER))

    def _journal_stop(self, journal: Journal, session_id: int) -> None:
        """The engine's end-of-run summary (a METRICS "session-end" document: the figures the
        summary table prints), then the records that end the session."""
        report = self.runner.report
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        stamp = {"ts_ns": now, "ts_source": int(TsSource.USER), "clock_state": self.runner.clock_state}
        self.end_metrics = self.engine.summary(session_end=True)
        try:
            journal.append(RecordType.METRICS, pack_json({"note": END_NOTE, "session_id": session_id,
                                                          **self.end_metrics}), **stamp)
        except JournalError:
            report.journal_failures += 1
        try:
            for rtype, payload in session_stop(session_id, report.inputs, report.orders_sent,
                                               report.stop_reason or "error"):
                journal.append(rtype, payload, **stamp)
        except JournalError:
            report.journal_failures += 1

    def _summary(self, session_id, first_seq, report, source, note, sample, compliant, warm) -> SessionSummary:
        engine = self.engine
        facts = read_session(self.settings.journal_dir, first_seq, self.profile, self._commands_from)
        names = {s.id: s.name for s in self.inputs.symbols.symbols}
        verdict = sample.verdicts.get(self.profile)
        reasons = tuple(str(r) for r in verdict.reasons) if verdict is not None else ("no verdict",)
        clock = ClockReport(source, note, self.profile, sample.state.name, compliant,
                            () if compliant else reasons, warm, self.settings.clock.warmup)
        summary = SessionSummary(
            session_id=session_id, journal_dir=self.settings.journal_dir, venue=self.venue, clock=clock,
            runner=report, engine=self.end_metrics or engine.summary(session_end=True),
            # as trading ended: the close-out's own kill latches HALTED after it
            trading_state=report.closing_state or engine.risk.state.name,
            faults=list(report.closing_faults if report.closing_state else engine.risk.faults),
            latch=dict(report.closing_latch if report.closing_state else engine.risk.latch_details),
            positions=positions_by_name(engine, names),
            journal=facts.journal,
            seconds=round(time.monotonic() - self._started, 3), inputs=dict(self.inputs.sources),
            symbol_names={str(i): name for i, name in names.items()},
            clock_compliant_seen=facts.clock_compliant_seen, operator_halt=facts.operator_halt)
        if report.orders_sent == 0:
            summary.not_trading_reason = self._why_idle(summary, warm, reasons)
        stages = self.runner.packet_stages() if self.runner is not None else []
        for stage, values in stage_latencies(stages).items():
            if values:
                values.sort()
                summary.latency[stage] = {"n": len(values), "p50_us": round(values[len(values) // 2] / 1e3, 1),
                                          "p99_us": round(values[int(0.99 * (len(values) - 1))] / 1e3, 1)}
        return summary

    def _why_idle(self, summary: SessionSummary, warm: bool, reasons: tuple[str, ...]) -> str:
        if not warm:
            return (f"the risk gateway refused to trade: the clock was not compliant for {self.profile} "
                    f"({summary.clock.source}: {'; '.join(reasons[:3])})")
        if summary.faults or summary.breaches():
            return f"the risk gateway is {summary.trading_state}: {', '.join(summary.faults or summary.breaches())}"
        return f"no order was needed (trading state {summary.trading_state}, stop: {summary.runner.stop_reason})"
