"""The clock monitor: samples clock health at a fixed rate in its own thread, journals every sample
as a CLOCK_SAMPLE record, and offers the latest one to the engine as a cheap read (and each one,
in order, to a runner that journals them: samples_since).

Owns the sampling thread, the hand-off of the newest sample (one reference swap: readers never
take a lock) and the fail-closed rules for a monitor that stopped, stalled or cannot journal.
Must not know how samples are judged (audit.health) or obtained (audit.sampler); the journal is
any object with append(rtype, payload, ts_ns=, ts_source=, clock_state=).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

from audit.errors import HealthConfigError
from audit.health import ClockSample, HealthTracker, Observation
from audit.prometheus import exposition
from journal.catalogue import ClockState, RecordType, TsSource


HISTORY = 64     # samples kept for samples_since(): a minute at 1 Hz


class Appender(Protocol):
    def append(self, rtype, payload, ts_ns: int = 0, ts_source: int = 0, clock_state: int = 0) -> int: ...


def _unknown_sample(reason: str) -> ClockSample:
    tracker = HealthTracker()
    return tracker.update(Observation(None, time.clock_gettime_ns(time.CLOCK_MONOTONIC),
                                      time.clock_gettime_ns(time.CLOCK_REALTIME), None, reason))


class ClockMonitor:
    """Use as a context manager, or start()/stop(). current() and compliant() are safe from any
    thread at any time; before the first sample they report UNKNOWN / False."""

    def __init__(self, sampler: Callable[[], Observation], tracker: HealthTracker | None = None,
                 journal: Appender | None = None, rate_hz: float = 1.0,
                 stale_after_s: float | None = None, labels: dict[str, str] | None = None) -> None:
        if rate_hz <= 0:
            raise HealthConfigError("rate_hz must be positive")
        self.sampler = sampler
        self.tracker = tracker or HealthTracker()
        self.journal = journal
        self.period_s = 1.0 / rate_hz
        # A sample older than this means the monitor stalled: treat the clock as non-compliant.
        self.stale_after_ns = int((stale_after_s if stale_after_s is not None else 3 * self.period_s + 5) * 1e9)
        self.labels = labels or {}
        self._latest: ClockSample = _unknown_sample("monitor has not sampled yet")
        # (samples published so far, the newest HISTORY of them): one reference swap per sample,
        # so a journaling reader takes each sample exactly once without a lock
        self._feed: tuple[int, tuple[ClockSample, ...]] = (0, ())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_taken = 0
        self.journal_error: BaseException | None = None   # latched: evidence can no longer be kept
        # the newest sampler failure (a bug, or input the sampler did not turn into an UNKNOWN
        # observation): that tick publishes UNKNOWN and the monitor reads non-compliant until a
        # sample is taken again; sampler_failures counts them all
        self.sampler_error: BaseException | None = None
        self.sampler_failures = 0

    # -- engine side: cheap reads ---------------------------------------------------------------

    def current(self) -> ClockSample:
        """The newest sample (a single attribute read; no lock)."""
        return self._latest

    def compliant(self, profile: str, now_mono_ns: int | None = None) -> bool:
        """True only if the newest sample is compliant, fresh, and the monitor is healthy."""
        sample = self._latest
        if self.journal_error is not None or self.sampler_error is not None:
            return False
        now = time.monotonic_ns() if now_mono_ns is None else now_mono_ns   # CLOCK_MONOTONIC
        if now - sample.mono_ns > self.stale_after_ns:
            return False
        verdict = sample.verdicts.get(profile)
        return verdict is not None and verdict.compliant

    def samples_since(self, seen: int) -> tuple[int, tuple[ClockSample, ...], int]:
        """(samples published so far, those published after the first `seen` that are still kept,
        how many of those were already dropped from the history): for a reader that journals
        every sample exactly once, at its own measurement time."""
        count, history = self._feed
        new = count - seen
        if new <= 0:
            return count, (), 0
        kept = history[-new:]
        return count, kept, new - len(kept)

    def _publish(self, sample: ClockSample) -> None:
        count, history = self._feed
        self._latest = sample
        self._feed = (count + 1, (history + (sample,))[-HISTORY:])

    def prometheus(self) -> str:
        return exposition(self._latest, self.labels)

    # -- sampling side --------------------------------------------------------------------------

    def sample_once(self) -> ClockSample:
        """Take one sample, publish it, journal it. Used by the thread and by one-shot callers."""
        sample = self.tracker.update(self.sampler())
        self._publish(sample)
        self.samples_taken += 1
        self.sampler_error = None      # sampling works again: one bad tick does not latch the session
        if self.journal is not None and self.journal_error is None:
            try:
                self.journal.append(RecordType.CLOCK_SAMPLE, sample.payload(), ts_ns=sample.realtime_ns,
                                    ts_source=int(TsSource.USER), clock_state=int(sample.state))
            except Exception as exc:   # any journal failure is latched; the clock then reads non-compliant
                self.journal_error = exc
        return sample

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as exc:   # never die silently: publish UNKNOWN, keep the thread alive
                self.sampler_error = exc
                self.sampler_failures += 1
                self._publish(_unknown_sample(f"sampler failed: {type(exc).__name__}: {exc}"))
            next_at += self.period_s
            delay = next_at - time.monotonic()
            if delay < 0:                      # overran: skip the missed ticks rather than burst
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def start(self) -> "ClockMonitor":
        if self._thread is not None:
            raise HealthConfigError("monitor already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="clock-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> "ClockMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def state(self) -> ClockState:
        return self._latest.state
