"""Recovery's blocking SoupBinTCP sessions with the venue: the full view from sequence 1, and a
resumed session (requested sequence = last journaled + 1) that carries recovery's cancels.

Owns sockets, framing and every wait's bound; frames are returned exactly as received so they can
be journaled as VENUE_MSG records. Must not decide anything about orders (reconcile.py does).
"""
from __future__ import annotations

import socket
import time

from mm_core.protocol import ProtocolError, soupbintcp
from recovery.errors import VenueUnavailable

__all__ = ["SoupSession", "full_view"]

_FROM_SERVER = soupbintcp.Direction.FROM_SERVER
_SEQUENCED, _ACCEPTED, _REJECTED, _END = ord("S"), ord("A"), ord("J"), ord("Z")


class SoupSession:
    """One logged-in SoupBinTCP connection. `next_sequence` is the sequence of the next 'S' frame."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.timeout = timeout
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise VenueUnavailable(f"cannot reach the venue at {host}:{port}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framer = soupbintcp.Framer()
        self.frames: list[bytes] = []
        self.next_sequence = 0
        self.ended = False
        self.login_frame = b""

    def login(self, username: str, password: str, sequence: int) -> soupbintcp.LoginAccepted:
        """Log in asking for messages from `sequence` (0: only new ones); returns LoginAccepted."""
        self.send(soupbintcp.encode(soupbintcp.LoginRequest(username, password, "", sequence)))
        frame = self.frame(self.timeout)
        if frame is None:
            raise VenueUnavailable("the venue did not answer the login in time")
        if frame[2] == _REJECTED:
            reason = frame[3:4].decode(errors="replace")
            why = {"A": "not authorised", "S": "session unavailable (is the engine still logged in?)"}
            raise VenueUnavailable(f"login rejected: {why.get(reason, reason)}")
        if frame[2] != _ACCEPTED:
            raise VenueUnavailable(f"expected LoginAccepted, got packet type {chr(frame[2])!r}")
        accepted = soupbintcp.decode(frame, _FROM_SERVER)
        self.next_sequence = accepted.sequence
        self.login_frame = frame
        return accepted

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise VenueUnavailable(f"cannot send to the venue: {exc}") from exc

    def frame(self, timeout: float) -> bytes | None:
        """The next frame of any type exactly as received; None when none came within timeout."""
        deadline = time.monotonic() + timeout
        while not self.frames:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as exc:
                raise VenueUnavailable(f"connection to the venue failed: {exc}") from exc
            if not data:
                raise VenueUnavailable("the venue closed the connection")
            try:
                self.frames += self.framer.feed(data)
            except ProtocolError as exc:
                raise VenueUnavailable(f"bad SoupBinTCP framing from the venue: {exc}") from exc
        return self.frames.pop(0)

    def next_sequenced(self, timeout: float) -> tuple[int, bytes] | None:
        """The next (sequence, 'S' frame) within timeout, heartbeats skipped; None when none came
        or the session ended ('Z')."""
        deadline = time.monotonic() + timeout
        while not self.ended:
            frame = self.frame(max(deadline - time.monotonic(), 0.0))
            if frame is None:
                return None
            if frame[2] == _SEQUENCED:
                self.next_sequence += 1
                return self.next_sequence - 1, frame
            if frame[2] == _END:
                self.ended = True
        return None

    def sequenced(self, until: int | None, quiet: float, limit_s: float) -> list[tuple[int, bytes]]:
        """(sequence, 'S' frame) pairs: through sequence `until` when given (then stop), else until
        the venue is quiet for `quiet` s; never longer than limit_s."""
        out: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + limit_s
        while until is None or self.next_sequence <= until:
            remaining = deadline - time.monotonic()
            got = self.next_sequenced(min(remaining, quiet) if until is None else remaining) \
                if remaining > 0 else None
            if got is None:
                if until is not None:
                    raise VenueUnavailable(f"venue replay stopped at {self.next_sequence - 1} of "
                                           f"{until} within {limit_s:g} s"
                                           + (" (end of session)" if self.ended else ""))
                break
            out.append(got)
        return out

    def logout(self) -> None:
        """Log out and wait (bounded) for the venue to close: the user is free to log in again."""
        try:
            self.sock.sendall(soupbintcp.encode(soupbintcp.LogoutRequest()))
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                if not self.sock.recv(65536):
                    break
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.sock.close()


def full_view(host: str, port: int, username: str, password: str,
              timeout: float = 5.0) -> list[tuple[int, bytes]]:
    """Every sequenced OUCH payload of the session, (sequence, payload) from 1 to the venue's head
    at the time of asking (a login with sequence 0 tells the head without a replay)."""
    probe = _login_when_free(host, port, username, password, timeout)
    try:
        head = probe.next_sequence - 1
    finally:
        probe.logout()
    session = SoupSession(host, port, timeout)
    try:
        session.login(username, password, 1)
        frames = session.sequenced(head, 0.0, timeout) if head else []
    finally:
        session.logout()
    return [(seq, frame[3:]) for seq, frame in frames]


def _login_when_free(host: str, port: int, username: str, password: str,
                     timeout: float) -> SoupSession:
    """A session logged in for new messages only. Right after a crash the venue may not yet have
    seen the dead engine's connection close: "session unavailable" is retried until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        session = SoupSession(host, port, timeout)
        try:
            session.login(username, password, 0)
            return session
        except VenueUnavailable as exc:
            session.close()
            if "session unavailable" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.05)
