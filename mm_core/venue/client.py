"""Small blocking clients of the venue's protocols, for tests, drills and benchmarks.

Owns a SoupBinTCP/OUCH session client (login, send orders, read sequenced messages with their
sequence numbers) and a MoldUDP64/ITCH receiver with gap re-requests. Every wait is bounded by a
timeout. Not the trading engine's transport (the runner owns that); must not know venue internals.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from mm_core.protocol import itch, moldudp64, ouch, soupbintcp
from mm_core.venue.errors import VenueError


class ClientError(VenueError):
    """The venue refused the client, closed the connection, or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Sequenced:
    """One sequenced OUCH message as received, with its session sequence number."""

    sequence: int
    message: ouch.OutboundMessage
    raw: bytes


class SoupClient:
    """One SoupBinTCP connection. `next_sequence` tracks the sequence of the next 'S' message."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.framer = soupbintcp.Framer()
        self._frames: list[bytes] = []
        self.session = ""
        self.next_sequence = 0
        self.closed = False

    def login(self, username: str, password: str, sequence: int = 1, session: str = ""
              ) -> soupbintcp.LoginAccepted:
        """Log in asking for messages from `sequence` (1 = all, 0 = only new ones)."""
        self.send(soupbintcp.LoginRequest(username, password, session, sequence))
        packet = self.packet()
        if isinstance(packet, soupbintcp.LoginRejected):
            raise ClientError(f"login rejected: {packet.reason}")
        if not isinstance(packet, soupbintcp.LoginAccepted):
            raise ClientError(f"expected LoginAccepted, got {packet!r}")
        self.session = packet.session
        self.next_sequence = packet.sequence
        return packet

    def send(self, packet: soupbintcp.SoupPacket) -> None:
        self.sock.sendall(soupbintcp.encode(packet))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def order(self, msg: ouch.InboundMessage) -> None:
        """Send one OUCH inbound message as SoupBinTCP unsequenced data."""
        self.send(soupbintcp.UnsequencedData(ouch.encode(msg)))

    def enter(self, token: str, side: str, shares: int, stock: str, price: int,
              tif: int = ouch.TIF_SYSTEM_HOURS, firm: str = "", display: str = "Y") -> None:
        self.order(ouch.EnterOrder(token, side, shares, stock, price, tif, firm, display, "P", "N",
                                   0, "N", "R"))

    def packet(self, timeout: float | None = None) -> soupbintcp.SoupPacket:
        """The next packet of any type; ClientError on timeout or a closed connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._frames:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError("timed out waiting for the venue")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise ClientError("timed out waiting for the venue") from None
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                raise ClientError("connection closed by the venue")
            self._frames += self.framer.feed(data)
        return soupbintcp.decode(self._frames.pop(0), soupbintcp.Direction.FROM_SERVER)

    def sequenced(self, count: int, timeout: float | None = None) -> list[Sequenced]:
        """The next `count` sequenced messages (heartbeats and debug packets skipped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out: list[Sequenced] = []
        while len(out) < count:
            packet = self.packet(max(deadline - time.monotonic(), 0.0))
            if isinstance(packet, soupbintcp.SequencedData):
                out.append(Sequenced(self.next_sequence, ouch.decode_outbound(packet.payload),
                                     packet.payload))
                self.next_sequence += 1
            elif isinstance(packet, soupbintcp.EndOfSession):
                raise ClientError(f"end of session after {len(out)} of {count} messages")
        return out

    def drain(self, quiet: float = 0.3) -> list[Sequenced]:
        """Every sequenced message until the venue has been quiet (no 'S') for `quiet` s."""
        out: list[Sequenced] = []
        while True:
            try:
                out += self.sequenced(1, quiet)
            except ClientError as exc:
                if "timed out" in str(exc):
                    return out
                raise

    def close(self) -> None:
        self.sock.close()
        self.closed = True

    def __enter__(self) -> "SoupClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MoldReceiver:
    """A UDP socket on 127.0.0.1 receiving MoldUDP64, with in-order delivery and re-requests."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.tracker = moldudp64.SequenceTracker()
        self.messages: list[bytes] = []      # raw ITCH messages, in sequence order, no gaps
        self.gaps: list[moldudp64.Gap] = []
        self.packets = 0
        self.ended = False
        self._held: dict[int, list[bytes]] = {}  # packets beyond a gap, by first sequence

    def receive(self, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            return None

    def on_packet(self, data: bytes) -> moldudp64.Gap | None:
        """Apply one packet; returns the gap it revealed, if any (the packet is held back)."""
        self.packets += 1
        packet = moldudp64.decode(data)
        verdict = self.tracker.on_packet(packet)
        self.ended = self.ended or verdict.end_of_session
        if verdict.gap is not None:
            self.gaps.append(verdict.gap)
            if isinstance(packet, moldudp64.Packet):
                self._held[packet.sequence] = list(packet.messages)
            return verdict.gap
        if isinstance(packet, moldudp64.Packet):
            self.messages += verdict.select(packet.messages)
            self._release()
        return None

    def _release(self) -> None:
        """Apply held packets that are now in order."""
        progressed = True
        while progressed:
            progressed = False
            for first in sorted(self._held):
                messages = self._held[first]
                if first <= self.tracker.next_expected < first + len(messages):
                    del self._held[first]
                    skip = self.tracker.next_expected - first
                    self.messages += messages[skip:]
                    self.tracker.next_expected = first + len(messages)
                    progressed = True
                elif first + len(messages) <= self.tracker.next_expected:
                    del self._held[first]

    def request_gap(self, server: tuple[str, int]) -> moldudp64.RequestPacket | None:
        request = self.tracker.request()
        if request is not None:
            self.sock.sendto(moldudp64.encode_request(request), server)
        return request

    def run(self, server: tuple[str, int] | None, until, timeout: float) -> None:
        """Receive (re-requesting gaps from `server`) until `until(self)` or timeout."""
        deadline = time.monotonic() + timeout
        while not until(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError("timed out waiting for market data")
            data = self.receive(min(remaining, 0.2))
            if data is None:
                if server is not None:
                    self.request_gap(server)
                continue
            if self.on_packet(data) is not None and server is not None:
                self.request_gap(server)

    def decoded(self) -> list[itch.ItchMessage]:
        return [itch.decode(raw) for raw in self.messages]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "MoldReceiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
