"""A scripted SoupBinTCP order entry on loopback for recovery tests: it holds a fixed log of
sequenced OUCH payloads and answers a resumed login at a sequence the test chooses, so a venue
that starts elsewhere than asked (a gap, a replay from earlier) can be shown. A login from 1 (the
full view) or 0 (new messages only) is answered as a real venue would. Every CancelOrder for a
live order gets a Canceled of its leaves, appended to the log."""
from __future__ import annotations

import socket
import threading
from typing import Callable

from mm_core.protocol import ouch, soupbintcp
from recovery.reconcile import venue_view

_FROM_CLIENT = soupbintcp.Direction.FROM_CLIENT


class ScriptedVenue:
    def __init__(self, log: list[bytes], start_for: Callable[[int], int]) -> None:
        self.log = list(log)                 # payloads; sequence i + 1
        self.start_for = start_for           # requested sequence -> where the login starts
        self.logins: list[int] = []
        self.cancels: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                try:
                    self._session(conn)
                except OSError:
                    pass

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(15)
        framer = soupbintcp.Framer()
        frames: list[bytes] = []
        while not frames:
            data = conn.recv(4096)
            if not data:
                return
            frames += framer.feed(data)
        asked = soupbintcp.decode(frames.pop(0), _FROM_CLIENT).requested_sequence
        self.logins.append(asked)
        start = {0: len(self.log) + 1, 1: 1}.get(asked) or self.start_for(asked)
        out = soupbintcp.encode(soupbintcp.LoginAccepted("S1", start))
        for payload in self.log[start - 1:]:
            out += soupbintcp.encode(soupbintcp.SequencedData(payload))
        conn.sendall(out)
        while True:
            for frame in frames:
                packet = soupbintcp.decode(frame, _FROM_CLIENT)
                if isinstance(packet, soupbintcp.LogoutRequest):
                    return
                if isinstance(packet, soupbintcp.UnsequencedData):
                    self._order(conn, ouch.decode_inbound(packet.payload))
            data = conn.recv(4096)
            if not data:
                return
            frames = framer.feed(data)

    def _order(self, conn: socket.socket, msg) -> None:
        if not isinstance(msg, ouch.CancelOrder):
            return
        self.cancels.append(msg.token)
        order = venue_view(enumerate(self.log, 1)).orders.get(msg.token)
        if order is not None and order.status == "live":
            payload = ouch.encode(ouch.Canceled(1, msg.token, order.leaves, "U"))
            self.log.append(payload)
            conn.sendall(soupbintcp.encode(soupbintcp.SequencedData(payload)))

    def close(self) -> None:
        self.server.close()
        self.thread.join(10)
