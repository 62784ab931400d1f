"""The HTTP endpoint Prometheus scrapes: the latest exposition at GET /metrics (clock health for
`clock watch --listen`, a live session's trading and clock health for `run --metrics-listen`).

Owns the listening socket and its serving thread, and what a scrape is answered while no sample
has been taken yet (503, so an exporter that has not measured is never read as a healthy clock)
or once the samples have gone stale (503 again: a wedged sampler must not keep an old LOCKED
showing). Must not know how samples are produced or formatted: the caller publishes the text.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from audit.errors import AuditError

__all__ = ["CONTENT_TYPE", "MetricsServer", "parse_listen"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"     # the text exposition format 0.0.4


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """`[HOST:]PORT` (host 127.0.0.1 when left out; port 0 asks the kernel for one) as (host,
    port); AuditError naming the problem (and `option`, the option it was given to) otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AuditError(f"{option} {text!r}: the port must be a number from 0 to 65535")
    if sep and not host:
        raise AuditError(f"{option} {text!r}: give a host before the ':' or leave the ':' out")
    return host, int(port)


class MetricsServer:
    """Serves the text last given to publish() until close(). `stale_after_s`: how long a
    published text is served before a scrape gets 503 instead (the sampler stopped publishing).
    `what` and `who`: what is published and who publishes it, as the 503 answers name them."""

    def __init__(self, host: str, port: int, stale_after_s: float, what: str = "clock sample",
                 who: str = "the sampler") -> None:
        if stale_after_s <= 0:
            raise AuditError("stale_after_s must be > 0")
        self._lock = threading.Lock()
        self._text: bytes | None = None
        self._published = 0.0
        self._stale_after = stale_after_s
        self._what, self._who = what, who
        self.scrapes = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:                   # noqa: N802 (the stdlib's name)
                status, body = owner._answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:       # scrapes are not worth a line each
                pass

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except (OSError, OverflowError) as exc:
            raise AuditError(f"cannot listen for scrapes on {host}:{port}: {exc}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="metrics-http", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return host, port

    def publish(self, text: str) -> None:
        body = text.encode()
        with self._lock:
            self._text, self._published = body, time.monotonic()

    def _answer(self, path: str) -> tuple[int, bytes]:
        if path.split("?", 1)[0] != "/metrics":
            return 404, b"only /metrics is served here\n"
        with self._lock:
            text, age = self._text, time.monotonic() - self._published
            self.scrapes += 1
        if text is None:
            return 503, f"no {self._what} has been published yet\n".encode()
        if age > self._stale_after:
            return 503, f"the last {self._what} is {age:.1f} s old: {self._who} has stopped\n".encode()
        return 200, text

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
