"""The control socket stays up whatever one request does: too deep a nesting is refused before
parsing, an unexpected error in one request is answered (typed, counted) and the next kill is
still carried out; a silent client is answered once its time is up and never holds up another
client's kill; a command the runner never reached is answered as not carried out; the receipt
of a command that failed on the runner's thread says so; a path it may not use is one clear
error; at stop it removes only the socket file it made."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from cli.operator_cmd import command as operator
from journal import Journal
from mm_core.control import MAX_CLIENTS, ControlError, ControlServer, send
from mm_core.engine import Engine
from mm_core.events import OperatorCommand
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerSettings
from tests.cli.test_operator import SYMBOLS
from tests.mm_core.wire import SYMBOLS as ENGINE_SYMBOLS, gateway
from tests.recovery.session import CONFIG, LockedClock

KILL = {"command": "kill", "actor": "ops", "reason": "runaway"}


class Receipt:
    """What Runner.operator returns, carried out at once."""

    def __init__(self, error: str = "") -> None:
        self.journaled, self.refusal, self.reconciliation, self.error = True, "", None, error

    def wait(self, _timeout):
        return True


def status():
    return {"trading_state": "ACTIVE", "faults": []}


def serve(tmp_path, submit=None, status_fn=status, **kw):
    submitted: list = []

    def default(command):
        submitted.append(command)
        return Receipt()
    server = ControlServer(str(tmp_path / "c.sock"), submit or default, status_fn, symbols=SYMBOLS, **kw)
    return server, submitted


def raw(path: str, data: bytes, timeout: float = 10) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        out = b""
        while not out.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    return out


def test_deep_nesting_is_refused_unparsed_and_the_server_stays_up(tmp_path):
    server, submitted = serve(tmp_path)
    with server:
        answer = raw(server.path, b"[" * 5000 + b"\n")
        assert b"nests deeper than" in answer
        assert b"not JSON" in raw(server.path, b'{"command": "[[[[[[", "x": [1, {"y": [2]}]\n')  # strings skipped
        assert send(server.path, KILL, 10)["ok"]
    assert [c.command for c in submitted] == ["kill"]


def test_an_unexpected_error_in_one_request_is_answered_and_counted_and_the_next_kill_served(tmp_path):
    calls = []

    def flaky_status():
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("engine state mid-update")
        return status()
    server, submitted = serve(tmp_path, status_fn=flaky_status)
    with server:
        first = send(server.path, KILL, 10)
        assert first["ok"] is False and "KeyError" in first["error"]
        assert server.failures == 1 and "KeyError" in server.last_failure
        second = send(server.path, KILL, 10)
        assert second["ok"] and second["trading_state"] == "ACTIVE"
    assert len(submitted) == 2


def test_a_silent_client_is_answered_in_time_and_never_holds_up_a_kill(tmp_path):
    server, submitted = serve(tmp_path)
    with server:
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(server.path)
        silent.sendall(b'{"command": "kill"')                # no newline, then nothing
        # the kill is served while the silent client still holds its connection (a server that
        # handles one client at a time answers it only after the silent one's 5 s)
        assert send(server.path, KILL, 3)["ok"]
        silent.settimeout(10)
        assert b"no whole request line within" in silent.recv(4096)
        silent.close()
    assert [c.command for c in submitted] == ["kill"]


def test_clients_over_the_cap_are_told_to_try_again(tmp_path):
    release = threading.Event()

    class Slow(Receipt):
        def wait(self, timeout):
            return release.wait(timeout)
    server, _ = serve(tmp_path, submit=lambda c: Slow())
    answers = []
    with server:
        threads = [threading.Thread(target=lambda: answers.append(send(server.path, KILL, 20)))
                   for _ in range(MAX_CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while server._slots._value and time.monotonic() < deadline:     # every slot taken
            time.sleep(0.01)
        busy = send(server.path, KILL, 10)
        assert busy["ok"] is False and "try again" in busy["error"]
        release.set()
        for t in threads:
            t.join(20)
    assert len(answers) == MAX_CLIENTS and all(a["ok"] for a in answers)


def test_a_client_may_ask_to_wait_longer_than_the_default(tmp_path):
    done = threading.Event()

    class Late(Receipt):
        def wait(self, timeout):
            return done.wait(timeout)
    server, _ = serve(tmp_path, submit=lambda c: Late(), wait_s=0.2)
    with server:
        threading.Timer(0.6, done.set).start()
        assert send(server.path, {**KILL, "wait_s": 10}, 15)["ok"]
        done.clear()
        assert send(server.path, KILL, 15)["pending"]          # the default: 0.2 s
        with pytest.raises(ControlError, match="wait_s must be"):
            from mm_core.control import _wait_s
            _wait_s({"wait_s": 0}, 1.0)


def test_a_scoped_kill_of_an_id_the_session_does_not_carry_is_refused_and_never_queued(tmp_path):
    """Desk 77 when the session's orders carry desk 1: refused, as an unknown symbol is (it
    would be journaled, cancel nothing and answer done). Its own desk is carried out, and the
    answer says how many orders the kill cancelled, as `mmaudit operator` prints it."""
    submitted = []

    def submit(command):
        submitted.append(command)
        receipt = Receipt()
        receipt.orders_cancelled = 3
        return receipt
    server, _ = serve(tmp_path, submit=submit, ids={"algo": 1, "desk": 1, "client": 1})
    with server:
        other = send(server.path, {**KILL, "scope": "desk", "scope_id": 77}, 10)
        assert other["ok"] is False
        assert other["error"] == "unknown desk id 77; this session's orders carry desk id 1"
        assert not submitted
        own = send(server.path, {**KILL, "scope": "desk", "scope_id": 1}, 10)
        assert own["ok"] and own["orders_cancelled"] == 3
        printed = CliRunner().invoke(operator, ["kill", "--control", server.path, "--actor", "ops", "--reason",
                                                "desk", "--scope", "desk", "--id", "1"])
        assert printed.exit_code == 0 and printed.output.startswith("kill: done, 3 orders cancelled")
        refused = CliRunner().invoke(operator, ["kill", "--control", server.path, "--actor", "ops", "--reason",
                                                "typo", "--scope", "client", "--id", "2"])
        assert refused.exit_code == 1 and "unknown client id 2" in refused.output
    assert [(c.scope, c.scope_id) for c in submitted] == [("desk", 1), ("desk", 1)]


def test_a_failure_on_the_runner_thread_is_reported_as_failed(tmp_path):
    server, _ = serve(tmp_path, submit=lambda c: Receipt("kill failed on the runner: BrokenPipeError"))
    with server:
        answer = send(server.path, KILL, 10)
    assert answer["ok"] is False and "BrokenPipeError" in answer["failed"]


def test_commands_the_runner_never_reached_are_answered_not_carried_out(tmp_path):
    """The run fails in connect() (nothing listens on the venue's port): the command queued for it
    is answered at once as not carried out, and later ones are refused."""
    with socket.socket() as s:                 # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    engine = Engine(CONFIG, ENGINE_SYMBOLS, gateway())
    with Journal(str(tmp_path / "j")) as journal:
        runner = Runner(engine, journal, RunnerSettings(itch_port=0, ouch_port=dead_port), LockedClock())
        with ControlServer(str(tmp_path / "c.sock"), runner.operator, status, symbols=SYMBOLS) as server:
            answers = []
            asker = threading.Thread(target=lambda: answers.append(send(server.path, KILL, 30)))
            asker.start()
            deadline = time.monotonic() + 10
            while runner._ops.empty() and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(RunnerError):
                runner.run(5.0, threading.Event())
            asker.join(10)
            late = send(server.path, KILL, 10)
    answer, = answers
    assert answer["ok"] is False and "not carried out" in answer["refused"]
    assert late["ok"] is False and "session has ended" in late["error"]
    with pytest.raises(RunnerError, match="session has ended"):
        runner.operator(OperatorCommand(1, "kill", "ops", "late"))


def test_a_command_waiting_when_the_session_stops_is_answered_not_carried_out(tmp_path):
    class Never(Receipt):                        # queued for a runner that never ran
        def wait(self, timeout):
            time.sleep(min(timeout, 0.05))
            return False
    server, _ = serve(tmp_path, submit=lambda c: Never())
    server.start()
    answers = []
    asker = threading.Thread(target=lambda: answers.append(send(server.path, KILL, 30)))
    asker.start()
    time.sleep(0.5)
    server.stop()
    asker.join(10)
    answer, = answers
    assert answer["ok"] is False and "not carried out" in answer["refused"]


def test_stop_leaves_a_socket_another_session_put_at_the_path(tmp_path):
    server, _ = serve(tmp_path)
    server.start()
    os.unlink(server.path)                       # e.g. removed by hand, and a new session started
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(server.path)
    other.listen(1)
    try:
        server.stop()
        assert os.path.exists(server.path)       # the other session's socket is left alone
    finally:
        other.close()
        os.unlink(server.path)


def _claim_as(uid: int | None, path: str) -> str:
    """ControlServer(path).start() in a forked child, as `uid` when given; what it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                 # the child: no exec, the modules are loaded
        try:
            if uid is not None:
                os.setgid(uid)
                os.setuid(uid)
            try:
                ControlServer(path, print, dict).start().stop()
                text = "started"
            except BaseException as exc:         # noqa: BLE001 (reported to the parent)
                text = f"{type(exc).__name__}: {exc}"
            os.write(write, text.encode()[:4000])
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as f:
        return f.read().decode()


def test_a_path_it_may_not_use_is_one_clear_error(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    path = str(private / "c.sock")
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind(path)     # a stale socket in there
    tmp_path.chmod(0o755)
    uid = None
    if os.geteuid() == 0:                        # root may use any path: ask as nobody instead
        uid = 65534
    else:
        private.chmod(0o000)
    try:
        said = _claim_as(uid, path)
    finally:
        private.chmod(0o700)
    assert said.startswith("ControlError: not allowed to use the control socket path"), said
