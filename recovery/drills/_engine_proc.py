"""The engine process the recovery drills start and SIGKILL: runner + engine + journal on loopback.

Owns the process's side of the drill protocol: every acknowledged journal append, the first quote,
recovery's outcome and each reconnection are reported as one line each on an inherited pipe; kill
hooks (MMAUDIT_DRILL_HOOK=kind:n) block the process at an exact point so the parent can SIGKILL it
there: in this wrapper around the journal, or inside the journal's C writer (its test hook, armed
by symbol once MMJ_TEST_HOOKS=1 is set: it writes its line on the same pipe). Must not judge
anything (the drills do, from the venue's own records) nor decide trading.
Run: python3 -m recovery.drills._engine_proc --journal DIR --ouch P --itch P --rerequest P --report FIFO,
or started by a warm spare (`--spare`) that has imported everything and forks one per restart.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import zlib

from journal import Journal
from journal.catalogue import RecordType, TsSource, unpack
from mm_core.config import EngineConfig, Symbols, symbols_from_toml
from mm_core.engine import Engine
from mm_core.oms import TERMINAL
from mm_core.protocol import soupbintcp
from mm_core.risk import Limits, RiskGateway
from mm_core.risk.limits import EXAMPLE_TOML
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from mm_core.venue.config import DEFAULT_PATH
from recovery.codecheck import session_start

HOOK_ENV = "MMAUDIT_DRILL_HOOK"
# Kill points the hooks can hold the process at (the n-th occurrence after the runner started):
# inside the journal's C writer (journal/journal_testhook.c, enabled by MMJ_TEST_HOOKS=1):
IN_APPEND = "in-append"              # header, payload and CRC written, the length word not published
MID_ROLL = "mid-roll"                # the next segment created, the current one not yet sealed
# in this wrapper, after Journal.append returned (the record complete and published):
APPEND_RETURNED = "append-returned"  # an append returned, its ack not reported
AFTER_APPEND = "between-append-send"  # an ORDER_SENT was acknowledged, its bytes not yet sent
AFTER_ROLL = "after-roll"            # the append that rolled the journal returned (old segment
                                     # sealed, the new one in use), its ack not reported
C_HOOKS = {IN_APPEND: 1, MID_ROLL: 2}    # journal_testhook.h's MMJ_HOOK_* numbers
HOOKS = (IN_APPEND, APPEND_RETURNED, AFTER_APPEND, MID_ROLL, AFTER_ROLL)
USER = "MM01"
PASSWORD = "mmaudit"
PROFILE = "eu-hft"
QUOTED = ("ACME", "BOLT")
_ENTER = ord("O")
_LOGIN = ord("L")


def engine_inputs() -> tuple[EngineConfig, Symbols, str]:
    """The config, symbols and limits every drill engine (and its recovery) is built from."""
    return EngineConfig(quoted=QUOTED), symbols_from_toml(DEFAULT_PATH.read_text()), EXAMPLE_TOML


def new_engine() -> Engine:
    config, symbols, limits_text = engine_inputs()
    return Engine(config, symbols, RiskGateway(Limits.from_toml(limits_text)))


def engine_state(engine: Engine) -> dict:
    """Positions and every order's state, as plain values for the parent to judge."""
    return {"venue_seq": engine.venue_seq,
            "positions": {s.name: engine.inventory.position[s.id] for s in engine.symbols.symbols
                          if engine.inventory.position[s.id]},
            "orders": {t: [o.state.value, o.leaves, o.filled, o.state in TERMINAL]
                       for t, o in engine.oms.orders.items()},
            "trading_state": engine.risk.state.name}


class Reporter:
    """One line per os.write to the drill's FIFO (below PIPE_BUF: lines never interleave or tear)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY)

    def say(self, kind: str, text: str) -> None:
        os.write(self.fd, f"{kind} {text}\n".encode())

    def block(self, why: str) -> None:
        """Tell the parent where we are and wait for its SIGKILL (bounded: exit if it never comes)."""
        self.say("H", why)
        time.sleep(30.0)
        os._exit(4)


def _c_hook_arm(kind: int, nth: int, fd: int) -> int:
    """journal_testhook.c's mmj_test_hook_arm, by symbol: it is no part of the journal's API."""
    import ctypes
    from journal import _journal_cffi
    arm = ctypes.CDLL(_journal_cffi.__file__).mmj_test_hook_arm
    arm.argtypes = (ctypes.c_int, ctypes.c_uint64, ctypes.c_int)
    return arm(kind, nth, fd)


class AckingJournal:
    """The real journal; each append that returns is reported as `A seq rtype crc32`, and the
    configured hook blocks the process at its n-th occurrence once armed (after the first quote,
    so that every run has a recovery time to measure before its kill)."""

    def __init__(self, journal: Journal, reporter: Reporter, hook: str = "", nth: int = 0) -> None:
        self.journal = journal
        self.path = journal.path          # a mid-session reconciliation reads the journal's findings
        self.reporter = reporter
        self.hook, self.nth = hook, nth
        self.seen = 0
        self.armed = False

    def arm(self) -> None:
        """From now on the hook counts; a hook inside the C writer is armed there."""
        self.armed = True
        if self.hook in C_HOOKS and _c_hook_arm(C_HOOKS[self.hook], self.nth, self.reporter.fd) != 0:
            raise SystemExit(f"the journal's C test hook {self.hook} cannot be armed (MMJ_TEST_HOOKS=1?)")

    def _hit(self) -> bool:
        if not self.armed:
            return False
        self.seen += 1
        return self.seen == self.nth

    def append(self, rtype, payload, **kw) -> int:
        segment = self.journal.segment
        seq = self.journal.append(rtype, payload, **kw)
        if self.hook == APPEND_RETURNED and self._hit():
            self.reporter.block(f"{APPEND_RETURNED} seq {seq}")
        if self.hook == AFTER_ROLL and self.journal.segment != segment and self._hit():
            self.reporter.block(f"{AFTER_ROLL} to segment {self.journal.segment} at seq {seq}")
        self.reporter.say("A", f"{seq} {int(rtype)} {zlib.crc32(payload)}")
        if self.hook == AFTER_APPEND and rtype == RecordType.ORDER_SENT and self._hit():
            sent = unpack(RecordType.ORDER_SENT, payload)
            token = bytes(sent["token"]).rstrip(b"\0 ").decode()
            self.reporter.block(f"{AFTER_APPEND} seq {seq} token {token} type {chr(int(sent['msg_type']))}")
        return seq

    # the runner's disk-full handling asks the journal itself, so pass those through
    @property
    def space_low(self) -> bool:
        return self.journal.space_low

    def retry_space(self) -> bool:
        return self.journal.retry_space()

    def close(self) -> None:
        self.journal.close()


class ResumingRunner(Runner):
    """The runner (which logs in from the engine's last venue sequence + 1), reporting the login's
    requested sequence and its first quote to the drill. After a recovery nobody enables trading:
    a clean reconciliation releases the restart's latch and the engine quotes once market data is
    current again, so the drill's RTO is restart -> recovery -> reconciliation -> first quote."""

    def __init__(self, *args, reporter: Reporter, **kw) -> None:
        super().__init__(*args, **kw)
        self.reporter = reporter
        self.quoted = False

    def _send_tcp(self, data: bytes) -> int:
        if data[2] == _LOGIN:
            request = soupbintcp.decode(data, soupbintcp.Direction.FROM_CLIENT)
            self.reporter.say("L", str(request.requested_sequence))
        # a send the socket refuses (the venue dropped us) stops the run with its reason; the
        # order stays journaled with a TX_TS of status SEND_FAILED (Runner._send_orders)
        return super()._send_tcp(data)

    def _order_sent(self, action) -> None:
        if not self.quoted and action.packet[3] == _ENTER:
            self.quoted = True
            self.reporter.say("Q", f"{time.monotonic_ns()} {action.intent.token}")
            self.journal.arm()


def _recover(args, reporter: Reporter) -> tuple[Engine, int]:
    """The recovered engine and the UTC offset its journal last recorded (the runner's start)."""
    from recovery.recover import RecoverySettings, recover
    config, symbols, limits_text = engine_inputs()
    settings = RecoverySettings(journal=args.journal, config=config, symbols=symbols,
                                limits_text=limits_text, venue=("127.0.0.1", args.ouch),
                                username=USER, password=PASSWORD, timeout=args.timeout,
                                quiet=args.quiet, snapshots=args.snapshots)
    result = recover(settings)
    found = result.rounds[0].discrepancies if result.rounds else []
    left = result.rounds[-1].discrepancies if result.rounds else []
    doc = {"reconciled": result.reconciled, "reasons": result.reasons,
           "events_replayed": result.replay.events, "snapshot": result.replay.snapshot,
           "found": len(found), "resolved": len(found) - len(left),
           "kinds": sorted({d.kind for d in found}), "delivered": result.delivered,
           "cancels_sent": result.orders_sent, "tail": result.tail,
           "timings": {k: round(v, 6) for k, v in result.timings.items()},
           "state": engine_state(result.engine)}
    reporter.say("T", f"{time.monotonic_ns()} recovered")
    reporter.say("R", json.dumps(doc, sort_keys=True, default=str))
    if not result.reconciled:
        sys.exit(2)            # HALTED: nothing to resume; the parent reads the reasons
    return result.engine, (result.utc_offset_s, result.utc_leap)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--journal", required=True)
    p.add_argument("--ouch", type=int, required=True)
    p.add_argument("--itch", type=int, required=True)
    p.add_argument("--rerequest", type=int, required=True)
    p.add_argument("--report", required=True, help="FIFO the drill reads this process's lines from")
    p.add_argument("--recover", action="store_true", help="recover from the journal, then resume")
    p.add_argument("--segment-size", type=int, default=1 << 16)
    p.add_argument("--seconds", type=float, default=30.0, help="bound on the process's life")
    p.add_argument("--reconnects", type=int, default=0, help="reconnect after the venue drops us")
    p.add_argument("--stop-file", default=None, help="stop trading (and report the state) once it exists")
    p.add_argument("--snapshots", default=None, help="engine snapshots kept by a standby replayer")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--quiet", type=float, default=0.1)
    args = p.parse_args(argv)
    hook, _, nth = os.environ.get(HOOK_ENV, "").partition(":")
    if hook and hook not in HOOKS:
        raise SystemExit(f"{HOOK_ENV}: unknown hook {hook!r} (one of {', '.join(HOOKS)})")
    if hook in C_HOOKS:
        os.environ["MMJ_TEST_HOOKS"] = "1"      # what lets the C writer's test hook be armed
    reporter = Reporter(args.report)
    engine, (offset, leap) = _recover(args, reporter) if args.recover else (new_engine(), (None, 0))
    journal = AckingJournal(Journal(args.journal, segment_size=args.segment_size), reporter, hook,
                            int(nth or 0))
    if not args.recover:       # a new session: it names the code it runs (recovery checks it)
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)     # and its tokens' tag (replay reads it back)
        journal.append(RecordType.SESSION_START, session_start(engine=engine, now_ns=now, profile=PROFILE.encode()),
                       ts_ns=now, ts_source=int(TsSource.USER))
    deadline = time.monotonic() + args.seconds
    stop = threading.Event()
    if args.stop_file:
        threading.Thread(target=_watch, args=(args.stop_file, stop, deadline), daemon=True).start()
    fresh = not args.recover
    from mm_core.events import OperatorCommand
    from recovery.drills.risk import DrillClock
    from recovery.midsession import LiveReconciler
    reconciler = LiveReconciler(timeout=args.timeout, quiet=args.quiet)
    try:
        for attempt in range(args.reconnects + 1):
            settings = RunnerSettings(itch_port=args.itch, ouch_port=args.ouch,
                                      rerequest_port=args.rerequest, username=USER,
                                      password=PASSWORD, clock_profile=PROFILE, timer_ns=50_000_000,
                                      clock_period_ns=200_000_000, fresh_session=fresh and attempt == 0,
                                      utc_offset_s=offset, utc_leap=leap)
            runner = ResumingRunner(engine, journal, settings, DrillClock(PROFILE), reporter=reporter,
                                    reconciler=reconciler)
            if attempt:
                # the lost link latched the engine unreconciled: the re-login's replay brings the
                # venue's messages, not what became of orders whose bytes died with the link; a
                # reconciliation says, as an operator's would (run first thing, after the login)
                runner.operator(OperatorCommand(time.clock_gettime_ns(time.CLOCK_REALTIME), "reconcile",
                                                "drill", "order entry reconnected after a lost link"))
            report = runner.run(max(0.0, deadline - time.monotonic()), stop)
            offset, leap = runner.utc_offset_s, runner.utc_leap     # a reconnect goes on from what was in force
            reporter.say("C", json.dumps({"attempt": attempt, "stop": report.stop_reason,
                                          "venue_seq": engine.venue_seq, "orders": report.orders_sent}))
            if not report.venue_lost:        # closed, reset or refused: log in again
                break
        reporter.say("E", json.dumps(engine_state(engine), sort_keys=True))
    finally:
        journal.close()
    return 0


def _watch(path: str, stop: threading.Event, deadline: float) -> None:
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()


def _say(line: str) -> None:
    os.write(1, line.encode() + b"\n")


def spare() -> int:
    """The warm spare: everything imported once; for each `R <json>` line on stdin it forks an
    engine process (hook and log from the job) and says `P pid`; `K pid` SIGKILLs and reaps it and
    says `D pid status`. Only this process may kill its children: no race with pid reuse."""
    import recovery.recover  # noqa: F401  (imported before any fork: a restart starts warm)
    import recovery.drills.risk  # noqa: F401
    _say("Z")
    for line in sys.stdin:
        cmd, _, rest = line.strip().partition(" ")
        if cmd == "R":
            job = json.loads(rest)
            pid = os.fork()
            if pid == 0:
                _child(job)
            _say(f"P {pid}")
        elif cmd == "K":
            pid = int(rest)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _say(f"D {pid} {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}")
    return 0


def _child(job: dict) -> None:
    code = 1
    try:
        log = os.open(job["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.environ.pop(HOOK_ENV, None)
        if job.get("hook"):
            os.environ[HOOK_ENV] = job["hook"]
        code = main(job["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.exit(spare() if sys.argv[1:] == ["--spare"] else main())
