"""Turns one pmc run into an Observation: the snapshot plus the clock readings around it.

Owns which clock ptp4l's ingress_time is on (CLOCK_REALTIME for software timestamping, the
port's PHC for hardware) and therefore how old the last Sync is, and, with hardware timestamping,
how far CLOCK_REALTIME (which stamps our records) is from the PHC that ptp4l disciplines, and
what ptp4l's and phc2sys's logs, if followed, showed since the previous sample. Failures become
an Observation without a snapshot, which audit.health turns into UNKNOWN; so does a snapshot
without ptp4l's timestamping mode (never taken for software: the system clock's term would go).
Must not know about thresholds, journals or threads.
"""
from __future__ import annotations

import time

from audit.errors import AuditError, HealthConfigError
from audit.health import Observation
from audit.nic import ethtool_timestamping
from audit.phc import PhcClock, tai_to_utc_ns
from audit.pmc import PmcClient, PtpSnapshot
from audit.ptplog import LogFollower, ServoLine, SummaryLine

SOFTWARE_MODES = ("SOFTWARE", "LEGACY_HW")   # ptp4l's clock is CLOCK_REALTIME itself


class PmcSampler:
    """Callable: each call runs pmc once and returns an Observation (never raises AuditError,
    ValueError or OSError: those become an Observation without a snapshot)."""

    def __init__(self, client: PmcClient, phc_device: str | None = None,
                 phc2sys_log: str | None = None, phc2sys_max_age_s: float = 5.0,
                 ptp4l_log: str | None = None) -> None:
        if phc2sys_max_age_s <= 0:
            raise HealthConfigError("phc2sys_max_age_s must be positive")
        self.client = client
        self.phc_device = phc_device          # override; otherwise found via ethtool -T
        self._phc: PhcClock | None = None
        # phc2sys copies the PHC into CLOCK_REALTIME; its offset is one more term of the bound.
        self._phc2sys = LogFollower(phc2sys_log) if phc2sys_log else None
        # phc2sys prints a servo line every update (-R, default 1 Hz): older than this, it is dead
        self.phc2sys_max_age_s = phc2sys_max_age_s
        # ptp4l's servo lines show every Sync's offset (or each summary's max) between two pmc runs
        self._ptp4l = LogFollower(ptp4l_log) if ptp4l_log else None
        self._ptp4l_first = True

    def __call__(self) -> Observation:
        try:
            return self._observe()
        except (AuditError, ValueError, OSError) as exc:
            # pmc, a log or a clock gave something unusable (garbage, undecodable bytes, an I/O
            # error): this one sample is UNKNOWN, the next one is taken afresh
            return Observation(None, time.clock_gettime_ns(time.CLOCK_MONOTONIC),
                               time.clock_gettime_ns(time.CLOCK_REALTIME), None,
                               f"{type(exc).__name__}: {exc}")

    def _observe(self) -> Observation:
        snap = self.client.query()
        # Read the clocks after pmc returned: the Sync age is over- never under-estimated.
        mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        realtime = time.clock_gettime_ns(time.CLOCK_REALTIME)
        extra = self._phc2sys_state(mono) if self._phc2sys is not None else {}
        if self._ptp4l is not None:
            extra.update(self._servo_since_last(mono))
        if snap.timestamping is None:
            # which clock ptp4l disciplines, and which clock its ingress_time is on, is unknown:
            # neither the Sync's age nor the system clock's term can be had (never guessed)
            why = ("ptp4l did not report its timestamping mode (PORT_PROPERTIES_NP"
                   + (" did not answer)" if "PORT_PROPERTIES_NP" in snap.missing else ")"))
            extra.update(system_offset_needed=True, system_offset_error=why)
            return Observation(snap, mono, realtime, None, f"sync age unknown: {why}", **extra)
        if not self._software(snap):
            extra.update(self._system_offset(snap))
        try:
            age = self._sync_age(snap, realtime)
        except AuditError as exc:
            return Observation(snap, mono, realtime, None, f"sync age unknown: {exc}", **extra)
        return Observation(snap, mono, realtime, age, None, **extra)

    @staticmethod
    def _software(snap: PtpSnapshot) -> bool:
        """ptp4l disciplines CLOCK_REALTIME itself (its mode was reported: see __call__)."""
        return snap.timestamping.upper() in SOFTWARE_MODES

    def _system_offset(self, snap: PtpSnapshot) -> dict:
        """Hardware timestamping: ptp4l's offset describes the PHC, but every record is stamped
        with CLOCK_REALTIME, so measure CLOCK_REALTIME against the PHC's UTC time now."""
        out: dict = {"system_offset_needed": True}
        try:
            cmp = self._phc_clock(snap).compare_realtime()
            if snap.ptp_timescale:     # PHC on TAI: UTC with the offset and leap flags ptp4l reports
                phc_utc = tai_to_utc_ns(cmp.phc_ns, snap.utc_offset or 0, bool(snap.utc_offset_valid),
                                        bool(snap.leap61), bool(snap.leap59))
            else:                      # arbitrary timescale: the system clock copies the PHC as is
                phc_utc = cmp.phc_ns
        except AuditError as exc:
            out["system_offset_error"] = f"{type(exc).__name__}: {exc}"
            return out
        out.update(system_offset_ns=cmp.realtime_ns - phc_utc, system_offset_window_ns=cmp.window_ns)
        return out

    def _phc2sys_state(self, mono_ns: int) -> dict:
        """phc2sys's newest servo line, counted locked only while phc2sys is alive: its line (stamped
        with CLOCK_MONOTONIC, like ours) is at most phc2sys_max_age_s old. No line at all, or a
        line without its time, does not show that the system clock follows the PHC."""
        self._phc2sys.poll()
        line = self._phc2sys.latest_servo("phc2sys")
        if line is None:
            detail = "no phc2sys servo line yet"
            if self._phc2sys.latest.get((SummaryLine, "phc2sys")) is not None:
                detail += (": phc2sys prints only summaries (-u), which carry no servo state; "
                           "run it without -u")
            elif silence := self._phc2sys.silence("phc2sys"):
                detail += f": {silence}"
            return {"phc2sys_locked": False, "phc2sys_detail": detail}
        out = {"phc2sys_offset_ns": line.offset_ns, "phc2sys_locked": line.servo_state >= 2}
        if line.mono_s is None:
            out.update(phc2sys_locked=False, phc2sys_detail="phc2sys lines carry no time: cannot tell "
                                                            "whether phc2sys still runs")
        elif mono_ns / 1e9 - line.mono_s > self.phc2sys_max_age_s:
            out.update(phc2sys_locked=False, phc2sys_detail=f"last phc2sys servo line "
                       f"{mono_ns / 1e9 - line.mono_s:.1f} s old (> {self.phc2sys_max_age_s:g} s): "
                       "phc2sys is not running")
        return out

    def _servo_since_last(self, mono_ns: int) -> dict:
        """ptp4l's servo lines logged since the previous sample: the largest |offset| among them
        (a per-Sync line's offset, a summary's max) and whether any showed s0 or s1. At the
        first sample, lines stamped more than phc2sys_max_age_s ago are a long-running ptp4l's
        history, not news (a line without its time is taken); after that every new line counts."""
        since = mono_ns / 1e9 - self.phc2sys_max_age_s if self._ptp4l_first else None
        self._ptp4l_first = False
        lines = [e for e in self._ptp4l.poll()
                 if isinstance(e, (ServoLine, SummaryLine)) and e.program == "ptp4l"
                 and (since is None or e.mono_s is None or e.mono_s >= since)]
        if not lines:
            silence = self._ptp4l.silence("ptp4l")
            return {"servo_log_note": f"ptp4l log: {silence}"} if silence else {}
        return {"servo_excursion_ns": max(abs(e.offset_ns) if isinstance(e, ServoLine) else e.max_ns
                                          for e in lines),
                "servo_unlocked": any(isinstance(e, ServoLine) and e.servo_state < 2 for e in lines)}

    def _sync_age(self, snap: PtpSnapshot, realtime_ns: int) -> int | None:
        if snap.ingress_time_ns is None:
            return None
        if self._software(snap):
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
