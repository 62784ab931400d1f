"""Turns one pmc run into an Observation: the snapshot plus the clock readings around it.

Owns which clock ptp4l's ingress_time is on (CLOCK_REALTIME for software timestamping, the
port's PHC for hardware) and therefore how old the last Sync is. Failures become an Observation
without a snapshot, which audit.health turns into UNKNOWN.
Must not know about thresholds, journals or threads.
"""
from __future__ import annotations

import time

from audit.errors import AuditError
from audit.health import Observation
from audit.nic import ethtool_timestamping
from audit.phc import PhcClock
from audit.pmc import PmcClient, PtpSnapshot
from audit.ptplog import LogFollower

SOFTWARE_MODES = ("SOFTWARE", "LEGACY_HW")   # ptp4l's clock is CLOCK_REALTIME itself


class PmcSampler:
    """Callable: each call runs pmc once and returns an Observation (never raises AuditError)."""

    def __init__(self, client: PmcClient, phc_device: str | None = None,
                 phc2sys_log: str | None = None) -> None:
        self.client = client
        self.phc_device = phc_device          # override; otherwise found via ethtool -T
        self._phc: PhcClock | None = None
        # phc2sys copies the PHC into CLOCK_REALTIME; its offset is one more term of the bound.
        self._phc2sys = LogFollower(phc2sys_log) if phc2sys_log else None

    def __call__(self) -> Observation:
        try:
            snap = self.client.query()
        except AuditError as exc:
            return Observation(None, time.clock_gettime_ns(time.CLOCK_MONOTONIC),
                               time.clock_gettime_ns(time.CLOCK_REALTIME), None,
                               f"{type(exc).__name__}: {exc}")
        # Read the clocks after pmc returned: the Sync age is over- never under-estimated.
        mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        realtime = time.clock_gettime_ns(time.CLOCK_REALTIME)
        phc2sys_offset = phc2sys_locked = None
        if self._phc2sys is not None:
            self._phc2sys.poll()
            line = self._phc2sys.latest_servo("phc2sys")
            # no line yet counts as not locked: the system clock is not shown to follow the PHC
            phc2sys_locked = line is not None and line.servo_state >= 2
            phc2sys_offset = line.offset_ns if line is not None else None
        try:
            age = self._sync_age(snap, realtime)
        except AuditError as exc:
            return Observation(snap, mono, realtime, None, f"sync age unknown: {exc}",
                               phc2sys_offset, phc2sys_locked)
        return Observation(snap, mono, realtime, age, None, phc2sys_offset, phc2sys_locked)

    def _sync_age(self, snap: PtpSnapshot, realtime_ns: int) -> int | None:
        if snap.ingress_time_ns is None:
            return None
        if snap.timestamping is None or snap.timestamping.upper() in SOFTWARE_MODES:
            return realtime_ns - snap.ingress_time_ns
        return self._phc_clock(snap).gettime_ns() - snap.ingress_time_ns

    def _phc_clock(self, snap: PtpSnapshot) -> PhcClock:
        if self._phc is None:
            device = self.phc_device
            if device is None:
                if not snap.interface:
                    raise AuditError("hardware timestamping but no interface reported")
                device = ethtool_timestamping(snap.interface).phc_device
                if device is None:
                    raise AuditError(f"{snap.interface} has no PHC")
            self._phc = PhcClock(device)
        return self._phc

    def close(self) -> None:
        if self._phc is not None:
            self._phc.close()
            self._phc = None
