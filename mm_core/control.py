"""The operator's control socket of a running session: kill, enable, safe mode and reconcile sent
from another process (`mmaudit operator`) to the runner's thread, journaled as every operator
command is (OPERATOR_CMD, with the peer's uid and pid as its origin: RTS 6 Art. 12 asks who).

Owns the wire format, both ends: a Unix stream socket, created mode 0600 (only its owner, or
root, may connect); the client sends one JSON object on one line, the server answers one JSON
line and closes. Requests are checked before anything is queued: a bad one is refused with its
reason and never reaches the engine.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import stat
import struct
import threading
import time
from typing import Callable

from journal.catalogue import PAYLOAD_DTYPES, RecordType
from mm_core.events import SYSTEM_ACTORS, OperatorCommand
from mm_core.risk.errors import RiskError
from mm_core.risk.kill import KillScope, parse_scope

_log = logging.getLogger(__name__)

COMMANDS = ("kill", "enable", "safe-mode-on", "safe-mode-off", "reconcile")
SCOPES = tuple(s.name.lower() for s in KillScope)
SCOPED = ("kill", "enable")         # a scoped enable lifts that scope's kill only
_ID_SCOPES = (KillScope.ALGO, KillScope.DESK, KillScope.CLIENT)    # the ids every order carries
MAX_REQUEST = 16 * 1024             # one request line; longer is refused unread
MAX_DEPTH = 4                       # a request is one flat object: deeper nesting is refused unparsed
MAX_CLIENTS = 4                     # requests handled at once; more are answered "busy" at once
_PATH_MAX = 107                     # sun_path holds 108 bytes with the terminating NUL
_ACCEPT_POLL_S = 0.2                # how soon stop() is noticed
_READ_TIMEOUT_S = 5.0               # a peer that sends no whole line in time is answered so
_MAX_WAIT_S = 600.0                 # the longest wait a request may ask for ("wait_s")


def _field_bytes(*fields: tuple[RecordType, str]) -> int:
    return min(PAYLOAD_DTYPES[rtype][name].itemsize for rtype, name in fields)


# an operator's text lands whole in these fixed-size journal fields (besides OPERATOR_CMD's JSON):
# refused when longer, never cut (the record is evidence)
TEXT_BYTES = {"actor": _field_bytes((RecordType.KILL, "requested_by"), (RecordType.STATE_CHANGE, "actor")),
              "reason": _field_bytes((RecordType.KILL, "reason"), (RecordType.STATE_CHANGE, "reason"))}


class ControlError(Exception):
    """The control socket cannot be set up, reached, or answered; one line for the operator."""


def check_path(path: str) -> str:
    """The socket path, or ControlError when a Unix socket cannot have it."""
    if len(os.fsencode(path)) > _PATH_MAX:
        raise ControlError(f"control socket path is {len(os.fsencode(path))} bytes, over the "
                           f"{_PATH_MAX} a Unix socket allows: {path}")
    return path


def parse_request(doc: object, symbols: dict[str, int],
                  ids: dict[str, int] | None = None) -> tuple[str, str, str, str, int]:
    """(command, actor, reason, scope, scope_id) from a request, or ControlError saying what is
    wrong. A symbol-scoped kill or enable names a symbol this session trades, by name or id;
    an algo, desk or client scope names the id this session's orders carry (`ids`, by scope
    name: none given, none is carried), as any other would be journaled and cancel nothing.
    Actor and reason must fit their journal fields whole (TEXT_BYTES, UTF-8 bytes)."""
    if not isinstance(doc, dict):
        raise ControlError("a request is a JSON object")
    command = doc.get("command")
    if command not in COMMANDS:
        raise ControlError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
    texts = {}
    for key, limit in TEXT_BYTES.items():
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise ControlError(f"{key} must be printable text of 1 to {limit} bytes (UTF-8)")
        size = len(value.strip().encode())
        if size > limit:
            raise ControlError(f"{key} is {size} bytes in UTF-8, over the {limit} its journal field "
                               "holds (the record is evidence: it is refused, not cut)")
        texts[key] = value.strip()
    if texts["actor"] in SYSTEM_ACTORS:
        # recovery releases the session's own close-out kill: an operator's must never pass for it
        raise ControlError(f"actor {texts['actor']!r} is the system's own (commands it journals itself): "
                           "an operator names themself")
    scope_text, scope_id = doc.get("scope", "all"), doc.get("scope_id", 0)
    if command not in SCOPED and (scope_text != "all" or scope_id != 0):
        raise ControlError(f"a scope applies to kill and enable only, not to {command}")
    try:
        scope = parse_scope(scope_text) if isinstance(scope_text, str) else None
    except RiskError as exc:
        raise ControlError(f"{exc}; one of {', '.join(SCOPES)}") from None
    if scope is None:
        raise ControlError(f"scope must be one of {', '.join(SCOPES)}")
    if scope is KillScope.SYMBOL and isinstance(scope_id, str):
        if scope_id not in symbols:
            raise ControlError(f"unknown symbol {scope_id!r}; this session trades {', '.join(sorted(symbols))}")
        scope_id = symbols[scope_id]
    if isinstance(scope_id, bool) or not isinstance(scope_id, int) or not 0 <= scope_id < 2**32:
        raise ControlError("scope_id must be an integer from 0 to 2^32-1 (or a symbol name for scope symbol)")
    if scope is KillScope.ALL and scope_id != 0:
        raise ControlError("scope all takes no scope_id")
    if scope is KillScope.SYMBOL and scope_id not in symbols.values():
        # a kill of a symbol the session does not trade would be journaled and cancel nothing
        raise ControlError(f"unknown symbol id {scope_id}; this session trades "
                           + ", ".join(f"{name} ({i})" for name, i in sorted(symbols.items())))
    scope_name = scope.name.lower()
    carried = (ids or {}).get(scope_name)
    if scope in _ID_SCOPES and carried != scope_id:
        raise ControlError(f"unknown {scope_name} id {scope_id}; this session's orders carry "
                           + (f"{scope_name} id {carried}" if carried is not None else f"no {scope_name} id"))
    return command, texts["actor"], texts["reason"], scope_name, scope_id


def _peer(conn: socket.socket) -> str:
    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
    return f"control socket uid {uid} pid {pid}"


def _read_line(conn: socket.socket, deadline: float) -> bytes:
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ControlError(f"no whole request line within {_READ_TIMEOUT_S:g} s")
        conn.settimeout(left)
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            raise ControlError(f"no whole request line within {_READ_TIMEOUT_S:g} s") from None
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ControlError(f"request over {MAX_REQUEST} bytes")
    return data.split(b"\n", 1)[0]


def check_depth(line: bytes) -> None:
    """ControlError when the JSON text nests arrays/objects deeper than MAX_DEPTH (strings
    skipped), so the parser never meets a depth that could exhaust its recursion."""
    depth, in_string, escaped = 0, False, False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:          # backslash
                escaped = True
            elif byte == 0x22:          # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x5B or byte == 0x7B:
            depth += 1
            if depth > MAX_DEPTH:
                raise ControlError(f"request nests deeper than {MAX_DEPTH} levels; a request is one flat "
                                   "JSON object")
        elif byte == 0x5D or byte == 0x7D:
            depth -= 1


def _wait_s(doc: dict, default: float) -> float:
    """How long the client will wait for the outcome ("wait_s", seconds), else the default."""
    value = doc.get("wait_s", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= _MAX_WAIT_S:
        raise ControlError(f"wait_s must be a number of seconds above 0, at most {_MAX_WAIT_S:g}")
    return float(value)


class ControlServer:
    """Serves one session's control socket until stop(): an accept thread, and one short-lived
    thread per request (at most MAX_CLIENTS at once), so a slow or silent client never holds up
    another's kill. `submit` queues an OperatorCommand for the runner and returns its receipt
    (Runner.operator); `status` gives the state to report back after each command (trading
    state, faults). `symbols` (name -> id) and `ids` (algo, desk, client -> id) are what a scoped
    command may name: other ids are refused before anything is queued. An unexpected error in one request is answered, counted in `failures`
    (the last in `last_failure`), logged, and the server stays up."""

    def __init__(self, path: str, submit: Callable, status: Callable[[], dict], *,
                 symbols: dict[str, int] | None = None, ids: dict[str, int] | None = None,
                 wait_s: float = 30.0, clock: Callable[[], int] = time.time_ns) -> None:
        self.path = check_path(path)
        self.submit, self.status, self.symbols = submit, status, dict(symbols or {})
        self.ids = dict(ids or {})      # "algo", "desk", "client" -> the id the session's orders carry
        self.wait_s, self.clock = wait_s, clock
        self.served = 0                 # requests answered (refused ones included)
        self.failures = 0               # requests that met an unexpected error (answered too)
        self.last_failure = ""
        self._sock: socket.socket | None = None
        self._ident: tuple[int, int] | None = None     # (st_dev, st_ino) of the socket we bound
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._lock = threading.Lock()
        self._handlers: set[threading.Thread] = set()

    def start(self) -> "ControlServer":
        self._claim_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)      # created 0600: no window in which others may connect
        try:
            sock.bind(self.path)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot create the control socket {self.path}: {exc.strerror}") from None
        finally:
            os.umask(old_mask)
        st = os.lstat(self.path)
        self._ident = (st.st_dev, st.st_ino)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control-socket", daemon=True)
        self._thread.start()
        return self

    def _claim_path(self) -> None:
        """A socket file another live session answers on is refused; one left by a killed
        session (nobody accepts) is removed; anything else at the path is refused."""
        try:
            try:
                mode = os.lstat(self.path).st_mode
            except FileNotFoundError:
                return
            if not stat.S_ISSOCK(mode):
                raise ControlError(f"{self.path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                return
            finally:
                probe.close()
        except PermissionError as exc:
            raise ControlError(f"not allowed to use the control socket path {self.path}: {exc.strerror}") from None
        raise ControlError(f"another session already answers on {self.path}")

    def stop(self) -> None:
        """Stop accepting, let the requests in hand answer (bounded), remove the socket file if
        it is still the one this server bound (another session may have replaced it)."""
        self._stop.set()
        deadline = time.monotonic() + 5.0
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._ident:
                    os.unlink(self.path)

    def __enter__(self) -> "ControlServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                if not select.select([sock], [], [], _ACCEPT_POLL_S)[0]:
                    continue
                conn, _ = sock.accept()
            except OSError:
                self._stop.wait(0.05)    # e.g. out of descriptors: not a busy loop
                continue
            try:
                self._dispatch(conn)
            except Exception as exc:     # noqa: BLE001 (e.g. no thread to be had: the server stays up)
                self._failed(exc)
                with conn:
                    self._answer(conn, {"ok": False, "error": f"the control socket could not take the "
                                        f"request ({type(exc).__name__}: {exc}); try again"})

    def _dispatch(self, conn: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            with conn:
                self._answer(conn, {"ok": False, "error": f"{MAX_CLIENTS} requests are already in "
                                    "hand; nothing was done, try again"})
            return
        thread = None
        try:
            thread = threading.Thread(target=self._serve_one, args=(conn,), name="control-request", daemon=True)
            with self._lock:
                self._handlers.add(thread)
            thread.start()
        except BaseException:
            with self._lock:
                self._handlers.discard(thread)
            self._slots.release()
            raise

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            with conn:
                try:
                    answer = self._handle(conn)
                except ControlError as exc:
                    answer = {"ok": False, "error": str(exc)}
                except OSError:
                    return                   # the peer went away: nothing to answer
                except Exception as exc:     # noqa: BLE001 (one bad request never stops the server)
                    self._failed(exc)
                    answer = {"ok": False, "error": f"the session could not handle the request "
                              f"({type(exc).__name__}: {exc}); nothing is known to be done"}
                with self._lock:
                    self.served += 1
                self._answer(conn, answer)
        finally:
            with self._lock:
                self._handlers.discard(threading.current_thread())
            self._slots.release()

    def _await(self, receipt, wait_s: float) -> bool:
        """receipt.wait(wait_s), cut short when the server stops (False then, if still unset)."""
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return receipt.wait(0)
            if receipt.wait(min(left, _ACCEPT_POLL_S)):
                return True

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_failure = f"{type(exc).__name__}: {exc}"[:200]
        _log.error("control socket %s: request failed", self.path, exc_info=exc)

    @staticmethod
    def _answer(conn: socket.socket, answer: dict) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(_READ_TIMEOUT_S)
            conn.sendall(json.dumps(answer, sort_keys=True, default=str).encode() + b"\n")

    def _handle(self, conn: socket.socket) -> dict:
        origin = _peer(conn)
        line = _read_line(conn, time.monotonic() + _READ_TIMEOUT_S)
        check_depth(line)
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ControlError(f"request is not JSON: {exc}") from None
        command, actor, reason, scope, scope_id = parse_request(doc, self.symbols, self.ids)
        wait_s = _wait_s(doc, self.wait_s)
        try:
            receipt = self.submit(OperatorCommand(self.clock(), command, actor, reason, scope, scope_id,
                                                  origin=origin))
        except Exception as exc:        # the runner's queue is full or the run is over
            raise ControlError(str(exc)) from None
        if not self._await(receipt, wait_s):
            if self._stop.is_set():      # the session is over and its runner never took it
                return {"ok": False, "command": command, "refused": f"{command} by {actor}: the session "
                        "ended before the runner reached it: not carried out"}
            # still queued: carried out when the runner reaches it, or refused if the run ends first
            return {"ok": None, "command": command, "pending": True,
                    "error": f"queued, not carried out within {wait_s:g} s (the runner is busy); it will be "
                             "when the runner reaches it, or not at all if the session ends first "
                             "(the journal says which)"}
        failed = getattr(receipt, "error", "") or None
        answer = {"command": command, "actor": actor, "origin": origin, "journaled": receipt.journaled,
                  "refused": receipt.refusal or None, "failed": failed,
                  "kills_in_force": getattr(receipt, "kills_in_force", ""),
                  "orders_cancelled": getattr(receipt, "orders_cancelled", None), **self.status()}
        if receipt.reconciliation is not None:
            answer["reconciliation"] = _plain(receipt.reconciliation)
        answer["ok"] = not failed and receipt.journaled is not False and not receipt.refusal and (
            receipt.reconciliation is None or bool(getattr(receipt.reconciliation, "reconciled", True)))
        return answer


def _plain(result) -> dict:
    fields = getattr(result, "__dataclass_fields__", None)
    return {k: getattr(result, k) for k in fields} if fields else {"result": str(result)}


def send(path: str, request: dict, timeout_s: float = 60.0) -> dict:
    """Send one request to a session's control socket and return its answer; ControlError when
    no session answers there or the answer is not understood."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        try:
            sock.connect(check_path(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"no session is listening on {path} (is `mmaudit run` running with "
                               "this journal?)") from None
        except PermissionError:
            raise ControlError(f"not allowed to connect to {path} (it is its owner's only)") from None
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                     # answered and closed before reading it all (busy): read that
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise ControlError(f"the session on {path} did not answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise ControlError(f"the control socket {path} failed: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError(f"the session on {path} answered something that is not JSON: {data[:80]!r}") from None
    if not isinstance(answer, dict):
        raise ControlError(f"the session on {path} answered {answer!r}")
    return answer
