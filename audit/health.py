"""Clock health: LOCKED / DEGRADED / HOLDOVER / FREERUN / UNKNOWN, an error bound, and a verdict
per profile.

Owns the regulatory profiles (RTS 25 HFT and other-algo rows, CAT/FINRA 4590), the error-bound
rule (|offset| + asymmetry budget + GM accuracy, widened in holdover by drift x time since the
Sync of the last LOCKED/DEGRADED sample, as fbclock does; a verifier not steady yet, or a plain
client not re-settled after an offset jump, is DEGRADED, bounded by what it measured: |offset| +
the jump + the path delay + GM accuracy; so is a plain client whose port is UNCALIBRATED while
Syncs keep coming: ptp4l measures, its servo holds nothing) and the per-sample state machine
over PtpSnapshot observations. Only a measurement locks: a positive path delay (without one
ptp4l computes no offset), and a steady run counts samples that read a new Sync (for a
verifier, whose offset was measured again).
Sans-io: times arrive in the Observation; nothing here runs pmc or reads a clock.
Must not know about threads, journals or how snapshots were obtained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from audit.errors import HealthConfigError
from audit.pmc import PORT_STATES, PtpSnapshot, clock_identity_to_int
from journal.catalogue import ClockState, RecordType, pack

UNBOUNDED = -1   # error_bound_ns when no bound can be given (FREERUN, UNKNOWN)
# The states whose samples carry a bound from a measurement and are judged by it; FREERUN and
# UNKNOWN never comply.
BOUNDED_STATES = frozenset({ClockState.LOCKED, ClockState.DEGRADED, ClockState.HOLDOVER})
MIN_TAI_UTC_S = 37   # TAI - UTC since 2017-01-01; a smaller offset on the PTP timescale is implausible


@dataclass(frozen=True)
class Profile:
    name: str
    max_divergence_ns: int   # maximum divergence from UTC
    granularity_ns: int      # coarsest timestamp granularity allowed
    bit: int                 # bit in CLOCK_SAMPLE.compliant_mask


PROFILES: dict[str, Profile] = {
    # RTS 25 Table 2: high-frequency algorithmic trading technique.
    "eu-hft": Profile("eu-hft", 100_000, 1_000, 0),
    # RTS 25 Table 2: any other trading activity, including non-HFT algorithmic trading.
    "eu-algo": Profile("eu-algo", 1_000_000, 1_000_000, 1),
    # FINRA 4590 / CAT NMS Plan 6.8 industry members: 50 ms of NIST; CAT wants ms or finer stamps.
    "us-cat": Profile("us-cat", 50_000_000, 1_000_000, 2),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise HealthConfigError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


# IEEE 1588 clockAccuracy enumeration -> worst-case accuracy in ns (sub-ns codes round up to 1).
CLOCK_ACCURACY_NS: dict[int, int] = {
    0x17: 1, 0x18: 1, 0x19: 1, 0x1A: 1, 0x1B: 1, 0x1C: 1, 0x1D: 1, 0x1E: 3, 0x1F: 10,
    0x20: 25, 0x21: 100, 0x22: 250, 0x23: 1_000, 0x24: 2_500, 0x25: 10_000, 0x26: 25_000,
    0x27: 100_000, 0x28: 250_000, 0x29: 1_000_000, 0x2A: 2_500_000, 0x2B: 10_000_000,
    0x2C: 25_000_000, 0x2D: 100_000_000, 0x2E: 250_000_000, 0x2F: 1_000_000_000,
    0x30: 10_000_000_000,
}   # 0x31 (> 10 s) and 0xFE (unknown) give no bound


@dataclass(frozen=True)
class HealthConfig:
    asymmetry_budget_ns: int = 1_000          # un-observable path asymmetry we allow for
    holdover_drift_ppb: float = 1_000.0       # worst-case oscillator drift once Syncs stop
    max_holdover_ns: int = 30_000_000_000     # after this long without Sync: FREERUN
    max_sync_age_ns: int = 2_000_000_000      # a Sync older than this is stale
    free_running: bool = False                # ptp4l is a verifier (free_running 1): it measures
                                              # but never leaves UNCALIBRATED, so judge by stability
    stable_samples: int = 3                   # verifier: consecutive steady samples to lock; plain
                                              # client: settled samples to lock again after a jump
    max_offset_step_ns: int = 50_000          # |offset change| per sample that counts as steady
                                              # (more is a jump); plain client: |offset| settled
    allowed_clock_classes: frozenset[int] = frozenset({6, 7})   # locked to primary ref / in-spec holdover
    timestamp_granularity_ns: int = 1         # our records carry ns

    def __post_init__(self) -> None:
        for name in ("asymmetry_budget_ns", "max_holdover_ns", "max_sync_age_ns",
                     "max_offset_step_ns", "timestamp_granularity_ns"):
            if getattr(self, name) < 0:
                raise HealthConfigError(f"{name} must not be negative")
        if self.holdover_drift_ppb < 0:
            raise HealthConfigError("holdover_drift_ppb must not be negative")
        if self.stable_samples < 1:
            raise HealthConfigError("stable_samples must be at least 1")


@dataclass(frozen=True)
class Observation:
    """One look at ptp4l: its snapshot plus the times the sampler measured around it."""

    snapshot: PtpSnapshot | None      # None when pmc could not be run at all
    mono_ns: int                      # CLOCK_MONOTONIC when the snapshot was complete
    realtime_ns: int                  # CLOCK_REALTIME at the same moment (for records)
    sync_age_ns: int | None = None    # ptp4l clock time now - ingress_time; None if unknown
    error: str | None = None          # why there is no snapshot (pmc missing, timeout, garbage)
    phc2sys_offset_ns: int | None = None   # newest phc2sys offset (system clock vs PHC), if followed
    phc2sys_locked: bool | None = None     # its servo state was s2/s3, in a recent line
    phc2sys_detail: str | None = None      # why it does not count as locked, when known
    # Hardware timestamping: ptp4l disciplines the NIC's PHC, while records are stamped with
    # CLOCK_REALTIME. system_offset_ns is CLOCK_REALTIME minus the PHC's UTC time, measured with
    # this sample (window: that measurement's uncertainty); None with needed set: not measured.
    system_offset_needed: bool = False
    system_offset_ns: int | None = None
    system_offset_window_ns: int = 0
    system_offset_error: str | None = None
    # ptp4l's own servo lines since the previous observation (its -m output or syslog, if
    # followed): pmc shows one offset per sample, these every Sync (or each summary's max).
    servo_excursion_ns: int | None = None  # the largest |offset| ptp4l logged; None: no line
    servo_unlocked: bool = False           # a logged servo state was s0 (unlocked) or s1 (jump)
    servo_log_note: str | None = None      # the followed log shows no servo line at all (why)


@dataclass(frozen=True)
class Reason:
    code: str     # offset, error_bound, state, sync_age, clock_class, accuracy, time_traceable,
                  # utc_offset, granularity, no_data
    text: str

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


@dataclass(frozen=True)
class Verdict:
    profile: str
    compliant: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ClockSample:
    """The health of the clock at one instant: what goes into a CLOCK_SAMPLE record."""

    state: ClockState
    realtime_ns: int
    mono_ns: int
    offset_ns: int
    path_delay_ns: int
    error_bound_ns: int
    last_sync_age_ns: int
    gm_identity: str | None
    port_state: str | None
    gm_clock_class: int
    gm_clock_accuracy: int
    utc_offset: int
    utc_offset_valid: bool
    leap61: bool
    leap59: bool
    time_traceable: bool
    ptp_timescale: bool
    steps_removed: int
    state_reasons: tuple[Reason, ...]
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def compliant_mask(self) -> int:
        return sum(1 << PROFILES[v.profile].bit for v in self.verdicts.values()
                   if v.compliant and v.profile in PROFILES)

    def compliant(self, profile_name: str) -> bool:
        verdict = self.verdicts.get(profile_name)
        return verdict is not None and verdict.compliant

    def payload(self) -> bytes:
        """The CLOCK_SAMPLE record payload (journal.catalogue layout)."""
        return pack(
            RecordType.CLOCK_SAMPLE,
            offset_ns=self.offset_ns, path_delay_ns=self.path_delay_ns,
            error_bound_ns=self.error_bound_ns, last_sync_age_ns=self.last_sync_age_ns,
            gm_identity=clock_identity_to_int(self.gm_identity) if self.gm_identity else 0,
            state=int(self.state), port_state=PORT_STATES.get(self.port_state or "", 0),
            gm_clock_class=self.gm_clock_class, gm_clock_accuracy=self.gm_clock_accuracy,
            utc_offset=self.utc_offset, utc_offset_valid=int(self.utc_offset_valid),
            leap61=int(self.leap61), leap59=int(self.leap59),
            time_traceable=int(self.time_traceable), ptp_timescale=int(self.ptp_timescale),
            compliant_mask=self.compliant_mask, steps_removed=self.steps_removed,
        )


def _plus(bound: int, *terms: int) -> int:
    """An error bound widened by terms; no bound stays no bound."""
    return UNBOUNDED if bound == UNBOUNDED else bound + sum(terms)


def _us(ns: float) -> str:
    return f"{ns / 1000:.3f} us"


_REQUIRED = ("port_state", "timestamping", "master_offset_ns", "gm_identity", "gm_present", "gm_clock_class",
             "gm_clock_accuracy", "time_traceable", "ptp_timescale", "utc_offset_valid", "utc_offset")


_WATCHED_TIMEOUTS = ("announce_timeout", "sync_timeout", "delay_timeout", "sync_mismatch",
                     "followup_mismatch")


class HealthTracker:
    """Feeds observations through the state machine; keeps what holdover needs from the past."""

    def __init__(self, config: HealthConfig | None = None, profiles: tuple[str, ...] = tuple(PROFILES)) -> None:
        self.config = config or HealthConfig()
        self.profiles = tuple(profile(p) for p in profiles)
        self._streak = 0
        self._last_offset: int | None = None
        self._last_gm: str | None = None
        self._anchor_mono: int | None = None       # monotonic time of the Sync read by the last
                                                   # LOCKED or DEGRADED sample: holdover runs from
                                                   # the last bound measured, not the last Sync seen
        self._locked_bound: int | None = None      # the PHC's error bound at the last LOCKED or
                                                   # DEGRADED sample, without the system clock's
                                                   # term (measured per sample)
        self._jump: int | None = None              # largest |offset change| per sample since the
                                                   # clock was last steady; None: none measured
        self._last_stats: dict[str, int] | None = None   # PORT_SERVICE_STATS_NP counters
        self._last_ingress: int | None = None      # ingress_time of the newest Sync a sample read
        self.gm_changes = 0

    # -- the state machine ---------------------------------------------------------------------

    def update(self, obs: Observation) -> ClockSample:
        snap = obs.snapshot
        problems = self._missing(obs)
        if problems:
            self._forget()
            return self._sample(obs, ClockState.UNKNOWN, UNBOUNDED, -1, problems)
        cfg = self.config
        reasons: list[Reason] = []
        age = obs.sync_age_ns
        following = snap.port_state == "SLAVE" or (cfg.free_running and snap.port_state == "UNCALIBRATED")
        fresh = age is not None and 0 <= age <= cfg.max_sync_age_ns
        if not following:
            if self._servo_unlocked_after_jump(snap, age):
                return self._track(obs, age, [Reason("state", "port is UNCALIBRATED: ptp4l's servo is unlocked "
                                                              "(s0) or has just stepped the clock (s1)")])
            if snap.port_state == "UNCALIBRATED" and snap.gm_present and fresh:
                # Syncs keep coming and ptp4l measures: the offset is news, not a holdover
                return self._track(obs, age, [Reason("state", "port is UNCALIBRATED: ptp4l measures the "
                                                              "grandmaster but its servo is not locked")])
            reasons.append(Reason("state", f"port is {snap.port_state}, not following a grandmaster"))
        elif not snap.gm_present:
            reasons.append(Reason("state", "no grandmaster present (ptp4l is its own GM)"))
        elif not fresh:
            if age is None:
                reasons.append(Reason("sync_age", obs.error or "no Sync ingress time"))
            elif age < 0:
                reasons.append(Reason("sync_age", f"the last Sync was stamped {_us(-age)} after the "
                                                  "clock's time now: the clock moved back since"))
            else:
                reasons.append(Reason("sync_age", f"last Sync {age / 1e9:.3f} s ago > "
                                                  f"{cfg.max_sync_age_ns / 1e9:.3f} s"))
        if not reasons:
            return self._track(obs, age, reasons)
        jumped = self._jump_seen_untracked(obs, age)
        self._forget()
        if jumped is not None:
            # the bound of the last lock held before the jump, not after it: no holdover from it
            self._locked_bound = None
            return self._sample(obs, ClockState.FREERUN, UNBOUNDED, age if age is not None and age >= 0 else None,
                                tuple(reasons) + (jumped, Reason(
                                    "state", "a jump is owed: no bound until the clock has re-settled")))
        return self._holdover_or_freerun(obs, tuple(reasons))

    # A plain client (ptp4l's servo steers the clock) after an offset jump. ptp4l itself is no
    # judge of it: with its default step_threshold 0 the PI servo never steps after the first
    # lock, it slews the jump out while staying in s2, so the port stays SLAVE with the offset
    # far off for seconds; with a step_threshold the servo goes s0 (port UNCALIBRATED through
    # EV_SYNCHRONIZATION_FAULT), steps the clock (s1) and only then locks again (s2, SLAVE). The
    # pmc `offset` samples, 1 a second, say nothing about the clock between them while it moves.
    # RTS 25 (Art. 4) wants the divergence within its limit at every event's timestamp and CAT /
    # FINRA 4590 wants out-of-tolerance time documented, so from the first sample whose offset
    # moved more than max_offset_step_ns until the clock has re-settled, the sample is DEGRADED
    # with the jump in its bound (the verifier's measured bound), never LOCKED. Re-settled:
    # stable_samples consecutive samples in SLAVE (servo s2/s3) whose |offset| and change are both
    # within max_offset_step_ns, i.e. the servo has absorbed the jump and holds the clock there
    # (linuxptp's own s3 rule is the same shape: |offset| under servo_offset_threshold for
    # servo_num_offset_values updates). The jump owed is kept across holdover, UNKNOWN samples
    # and a GM change: only re-settling pays it off. A jump ptp4l slews or steps out between two
    # pmc samples is invisible to pmc; when ptp4l's log is followed, the largest |offset| it
    # logged in between counts as a step from the last sample, and a logged s0/s1 is not settled.

    def _jumped(self) -> bool:
        """A jump over the steady step was measured since the clock was last steady/settled."""
        return self._jump is not None and self._jump > self.config.max_offset_step_ns

    def _servo_unlocked_after_jump(self, snap: PtpSnapshot, age: int | None) -> bool:
        """A plain client's port is UNCALIBRATED (servo s0/s1) while ptp4l still measures the same
        GM, and a jump is owed or shows now: the offset is a measurement, so the sample is
        tracked (DEGRADED), not taken for a holdover from the bound before the jump. The Sync
        may be fresh or of unknown age (ptp4l reports no ingress time once its servo has
        unlocked), not stale: a stale Sync's offset is old news, and that is holdover."""
        if self.config.free_running or snap.port_state != "UNCALIBRATED" or not snap.gm_present \
                or (age is not None and not 0 <= age <= self.config.max_sync_age_ns) \
                or snap.gm_identity != self._last_gm:
            return False
        return self._jumped() or (self._last_offset is not None and abs(
            snap.master_offset_ns - self._last_offset) > self.config.max_offset_step_ns)

    def _jump_seen_untracked(self, obs: Observation, age: int | None) -> Reason | None:
        """A plain client's sample that cannot be tracked (stale or future Sync, port not
        following) may still show that the clock jumped: ptp4l logged an |offset| far from the
        last sample's, or the Sync was stamped after the clock's time now (the clock moved back
        at least that far). Such a jump is owed like a measured one, and the reason returned;
        None when none is seen. (Before, the sample was a holdover from the pre-jump bound, the
        log lines showing the jump were spent on it, and the next sample came back LOCKED.)"""
        if self.config.free_running:      # a verifier is judged by pmc's offsets alone
            return None
        limit, seen = self.config.max_offset_step_ns, []
        if obs.servo_excursion_ns is not None:
            ref = self._last_offset if self._last_offset is not None else \
                obs.snapshot.master_offset_ns
            seen.append((obs.servo_excursion_ns - abs(ref),
                         f"ptp4l logged |offset| {_us(obs.servo_excursion_ns)} since the last sample"))
        if age is not None and age < 0:
            seen.append((-age, f"the clock moved back at least {_us(-age)} since the last Sync"))
        step, text = max(seen, default=(0, ""))
        if step <= limit:
            return None
        self._jump = max(self._jump or 0, step)
        return Reason("offset", f"{text} (> {_us(limit)}): a jump, in a sample that cannot be tracked")

    def _forget(self) -> None:
        """The run of samples is broken (no data, not following, stale Sync, new GM): offsets are
        compared again from the next sample. A plain client keeps a jump it still owes."""
        self._streak = 0
        self._last_offset = None
        if self.config.free_running or not self._jumped():
            self._jump = None

    def _track(self, obs: Observation, age: int | None, reasons: list[Reason]) -> ClockSample:
        """A sample while ptp4l measures the GM (fresh Syncs; for a plain client's UNCALIBRATED
        port after a jump, not stale ones): LOCKED, DEGRADED or (rejected without a measured
        bound) FREERUN."""
        snap, cfg = obs.snapshot, self.config
        if self._last_gm is not None and snap.gm_identity != self._last_gm:
            self.gm_changes += 1
            self._forget()
            reasons.append(Reason("gm_change", f"grandmaster changed {self._last_gm} -> {snap.gm_identity}"))
        self._last_gm = snap.gm_identity
        offset, step_limit = snap.master_offset_ns, cfg.max_offset_step_ns
        step = None if self._last_offset is None else abs(offset - self._last_offset)
        if step is not None and step > step_limit:
            reasons.append(Reason("offset", f"offset moved {_us(offset - self._last_offset)} in "
                                            f"one sample (> {_us(step_limit)})"))
        logged = obs.servo_excursion_ns
        if not cfg.free_running and logged is not None:
            # ptp4l logged an offset since the last sample: how far it was from that sample's
            # (from this one's when the run was broken: after a gap, a new GM, at start)
            ref = offset if self._last_offset is None else self._last_offset
            between = logged - abs(ref)
            if between > step_limit:
                reasons.append(Reason("offset", f"ptp4l logged |offset| {_us(logged)} since the last "
                                                f"sample ({_us(between)} from it, > {_us(step_limit)})"))
            step = between if step is None else max(step, between)
        if step is not None and (self._jump is None or step > self._jump):
            self._jump = step
        measured, not_new = self._measured_again(snap)
        self._last_offset = offset
        steady = step is None or step <= step_limit
        if cfg.free_running:     # a verifier: steady samples, wherever the offset sits
            counts = measured
            self._streak = 0 if not measured else self._streak if not_new else \
                self._streak + 1 if steady else 1
            needed = cfg.stable_samples
            settling = f"settling: {self._streak}/{needed} steady samples"
        else:                    # a plain client: settled samples, needed only after a jump
            counts = measured and steady and snap.port_state == "SLAVE" \
                and abs(offset) <= step_limit and not obs.servo_unlocked
            self._streak = 0 if not counts else self._streak if not_new else self._streak + 1
            needed = cfg.stable_samples if self._jumped() else 0
            settling = (f"re-settling after a jump: {self._streak}/{needed} samples in SLAVE with "
                        f"|offset| and its change within {_us(step_limit)}")
            if snap.port_state != "SLAVE":   # UNCALIBRATED: measured, but the servo holds nothing
                needed = max(needed, 1)
                settling = settling if self._jumped() else "the servo is not locked: never LOCKED"
        if counts and not_new:
            settling += f"; this sample does not count: {not_new}"
        timeouts = self._new_timeouts(snap.service_stats)
        if timeouts:
            reasons.append(Reason("service_stats", f"timeouts increasing: {timeouts}"))
        elif obs.phc2sys_locked is False:
            reasons.append(Reason("phc2sys", "phc2sys servo is not locked: the system clock "
                                             "does not follow the PHC"
                                  + (f" ({obs.phc2sys_detail})" if obs.phc2sys_detail else "")))
        elif not measured:
            reasons.append(Reason("path_delay", f"mean path delay {snap.mean_path_delay_ns} ns: ptp4l "
                                                "has measured no path delay to this grandmaster, so "
                                                "it computes no offset (the one shown is not a "
                                                "measurement)"))
        elif self._streak >= needed:
            self._locked_bound = self._locked_bound_now(snap)
            self._jump = None
            bound = _plus(self._locked_bound, self._system_hop(obs))
            return self._bounded(obs, ClockState.LOCKED, bound, age, tuple(reasons))
        else:
            reasons.append(Reason("state", settling))
            measured = self._measured_bound(snap, unlocked=not cfg.free_running and snap.port_state != "SLAVE")
            hop = self._system_hop(obs)
            if measured is not None and hop is not None:
                self._locked_bound = measured
                return self._bounded(obs, ClockState.DEGRADED, measured + hop, age, tuple(reasons) + (
                    Reason("state", f"not steady: bound from this measurement (|offset| + jump "
                                    f"{_us(self._jump or 0)} + max(asymmetry, path delay) + GM "
                                    "accuracy)"),))
        return self._not_locked(obs, age, tuple(reasons))

    def _bounded(self, obs: Observation, state: ClockState, bound: int, age: int | None,
                 reasons: tuple[Reason, ...]) -> ClockSample:
        """A LOCKED or DEGRADED sample: its bound holds as of the Sync it read, so a holdover
        widens from there (a later Sync that yields no bounded sample renews nothing)."""
        self._anchor_mono = obs.mono_ns - age if age is not None and age >= 0 else obs.mono_ns
        return self._sample(obs, state, bound, age, reasons)

    def _measured_again(self, snap: PtpSnapshot) -> tuple[bool, str]:
        """Whether ptp4l measures the offset at all, and if so why this sample is no new
        measurement ("" when it is one). Without a positive path delay ptp4l computes no
        offset: master_offset keeps its start value 0, or the previous GM's last one, while
        Syncs still arrive (no Delay_Resp or Pdelay_Resp yet, or never: a delay mechanism the
        GM does not answer). A sample that read the same Sync as the previous one (pmc asked
        faster than Syncs come) is no new measurement; nor, for a verifier, is an offset exactly
        the previous sample's: its clock runs free, so a measured offset moves from Sync to
        Sync, and one that stays to the ns is carried, not measured."""
        delay, ingress = snap.mean_path_delay_ns, snap.ingress_time_ns
        previous = self._last_ingress
        if ingress is not None:
            self._last_ingress = ingress
        if delay is None or not delay > 0:
            return False, ""
        if ingress is None:
            return True, "ptp4l reports no Sync ingress time"
        if ingress == previous:
            return True, "it read the same Sync as the previous sample"
        if self.config.free_running and snap.master_offset_ns == self._last_offset:
            return True, "its offset is exactly the previous sample's: not measured again"
        return True, ""

    def _not_locked(self, obs: Observation, age: int, reasons: tuple[Reason, ...]) -> ClockSample:
        """ptp4l follows a GM with fresh Syncs, but this sample is rejected (GM change, rising
        timeouts, phc2sys unlocked, or settling without what DEGRADED needs to bound it from
        the measurement: a jump that caused it, path delay and GM accuracy). That is not holdover: the
        clock is being steered now, so an error bound from the last lock says nothing about it (a
        GM step that ptp4l slews out would read as a 2 us bound for seconds). No bound, and
        holdover may only start again from a new LOCKED or DEGRADED sample."""
        self._locked_bound = None
        return self._sample(obs, ClockState.FREERUN, UNBOUNDED, age, reasons + (
            Reason("state", "following the grandmaster but not locked: no error bound"),))

    def _new_timeouts(self, stats: dict[str, int] | None) -> str:
        """Announce/Sync timeouts that grew since the last sample (ptp4l with PORT_SERVICE_STATS_NP)."""
        previous, self._last_stats = self._last_stats, stats
        if stats is None or previous is None:
            return ""
        grown = [f"{k} +{stats[k] - previous.get(k, 0)}" for k in _WATCHED_TIMEOUTS
                 if k in stats and stats[k] > previous.get(k, 0)]
        return ", ".join(grown)

    def _holdover_or_freerun(self, obs: Observation, reasons: tuple[Reason, ...]) -> ClockSample:
        cfg = self.config
        if self._locked_bound is None or self._anchor_mono is None:
            return self._sample(obs, ClockState.FREERUN, UNBOUNDED, obs.sync_age_ns, reasons)
        since = obs.mono_ns - self._anchor_mono
        if since > cfg.max_holdover_ns:
            self._locked_bound = None     # holdover is over; only a fresh lock gives a bound again
            return self._sample(obs, ClockState.FREERUN, UNBOUNDED, since, reasons + (
                Reason("sync_age", f"holdover expired: {since / 1e9:.3f} s since the last bounded "
                                   "sample's Sync"),))
        hop = self._system_hop(obs)
        if hop is None:      # the PHC's bound still holds, but the system clock's term is unmeasured
            return self._sample(obs, ClockState.FREERUN, UNBOUNDED, since, reasons + (
                Reason("phc2sys", "holdover, but the system clock that stamps our records was not "
                                  "measured against the PHC: phc2sys is not locked"
                       + (f" ({obs.phc2sys_detail})" if obs.phc2sys_detail else "") + "; no bound"),))
        drift = int(cfg.holdover_drift_ppb * since / 1e9)
        bound = _plus(self._locked_bound, drift, hop)
        return self._sample(obs, ClockState.HOLDOVER, bound, since, reasons + (
            Reason("state", f"holdover {since / 1e9:.3f} s: bound widened by {_us(drift)}, system "
                            f"clock vs PHC {_us(hop)} as measured now"),))

    def _measured_bound(self, snap: PtpSnapshot, unlocked: bool = False) -> int | None:
        """DEGRADED's bound on the clock ptp4l measures, from this sample alone: a verifier that
        is not steady cannot tell which of two offsets a jump lies between is right (software
        timestamps jitter under load), nor can a plain client whose servo is slewing or stepping
        a jump out tell where the clock was between two samples, so |offset now| + the largest
        jump since it was last steady (settled) covers both; the path delay covers any asymmetry
        of the two-way exchange (its error cannot exceed the one-way delay; chrony's bound adds
        ½ root delay, the same quantity), at least the configured asymmetry budget; plus the
        GM's own accuracy. None when one of them was not measured (no or non-positive path
        delay, unknown GM accuracy): no bound is claimed then. None too when no jump caused the
        settling: a verifier that is only starting, or has just met a new GM, has shown nothing
        yet to bound its jitter by, and waits for its steady samples. A plain client whose port is
        UNCALIBRATED (unlocked) is bounded by what it measures, jump or not: its servo holds
        nothing, so only this offset says where the clock is."""
        accuracy = CLOCK_ACCURACY_NS.get(snap.gm_clock_accuracy)
        delay = snap.mean_path_delay_ns
        if not (self._jumped() or unlocked) or accuracy is None or delay is None or not delay > 0:
            return None
        return abs(snap.master_offset_ns) + (self._jump or 0) + max(self.config.asymmetry_budget_ns,
                                                              math.ceil(delay)) + accuracy

    def _locked_bound_now(self, snap: PtpSnapshot) -> int:
        """The error bound of the clock ptp4l disciplines (the PHC with hardware timestamping)."""
        accuracy = CLOCK_ACCURACY_NS.get(snap.gm_clock_accuracy)
        if accuracy is None:
            return UNBOUNDED
        return abs(snap.master_offset_ns) + self.config.asymmetry_budget_ns + accuracy

    @staticmethod
    def _system_hop(obs: Observation) -> int | None:
        """How far the system clock, which stamps our records, may be from the clock ptp4l
        disciplines, as measured with this sample: phc2sys copies the PHC into it, one more hop
        from the GM. Measured directly where we can (hardware timestamping), else as phc2sys
        reports it while it is locked; 0 when ptp4l disciplines the system clock itself. None:
        the term exists but was not measured now, so no bound may be claimed (a locked sample
        never gets here then: an unlocked phc2sys or a missing comparison blocks LOCKED)."""
        if obs.system_offset_ns is not None:
            return abs(obs.system_offset_ns) + obs.system_offset_window_ns
        if obs.system_offset_needed or obs.phc2sys_locked is False:
            return None
        return abs(obs.phc2sys_offset_ns) if obs.phc2sys_offset_ns is not None else 0

    @staticmethod
    def _missing(obs: Observation) -> tuple[Reason, ...]:
        snap = obs.snapshot
        if snap is None:
            return (Reason("no_data", obs.error or "no snapshot"),)
        if not snap.answered:
            why = "; ".join(snap.errors) or "no answer from ptp4l (not running, or wrong UDS path)"
            return (Reason("no_data", why),)
        absent = [name for name in _REQUIRED if getattr(snap, name) is None]
        out = []
        if obs.system_offset_needed and obs.system_offset_ns is None:
            out.append(Reason("no_data", "ptp4l disciplines the NIC's PHC, but the system clock that "
                              "stamps our records was not compared with it"
                              + (f": {obs.system_offset_error}" if obs.system_offset_error else "")))
        if absent:
            out.append(Reason("no_data", f"ptp4l did not report {', '.join(absent)}"
                              + (f" (missing {', '.join(snap.missing)})" if snap.missing else "")))
        out.extend(Reason("no_data", e) for e in snap.errors)
        return tuple(out)

    # -- the verdicts --------------------------------------------------------------------------

    def _sample(self, obs: Observation, state: ClockState, bound: int, age: int | None,
                state_reasons: tuple[Reason, ...]) -> ClockSample:
        snap = obs.snapshot or PtpSnapshot()
        if obs.servo_log_note:
            state_reasons += (Reason("ptp4l_log", obs.servo_log_note),)
        sample = ClockSample(
            state=state, realtime_ns=obs.realtime_ns, mono_ns=obs.mono_ns,
            offset_ns=snap.master_offset_ns or 0, path_delay_ns=int(snap.mean_path_delay_ns or 0),
            error_bound_ns=bound, last_sync_age_ns=-1 if age is None else int(age),
            gm_identity=snap.gm_identity, port_state=snap.port_state,
            gm_clock_class=snap.gm_clock_class or 0,
            gm_clock_accuracy=0xFE if snap.gm_clock_accuracy is None else snap.gm_clock_accuracy,
            utc_offset=snap.utc_offset or 0, utc_offset_valid=bool(snap.utc_offset_valid),
            leap61=bool(snap.leap61), leap59=bool(snap.leap59),
            time_traceable=bool(snap.time_traceable), ptp_timescale=bool(snap.ptp_timescale),
            steps_removed=snap.steps_removed or 0, state_reasons=state_reasons,
        )
        verdicts = {p.name: judge(sample, p, self.config) for p in self.profiles}
        return replace(sample, verdicts=verdicts)


def judge(sample: ClockSample, prof: Profile, config: HealthConfig) -> Verdict:
    """A profile's verdict on one sample, with every reason it fails (empty when compliant)."""
    reasons: list[Reason] = []
    bounded = sample.state in BOUNDED_STATES
    if not bounded:
        reasons.append(Reason("state", f"clock is {sample.state.name}"))
        reasons.extend(sample.state_reasons)
    if sample.state != ClockState.UNKNOWN:
        limit = prof.max_divergence_ns
        if abs(sample.offset_ns) > limit and bounded:
            reasons.append(Reason("offset", f"offset {_us(sample.offset_ns)} exceeds {_us(limit)}"))
        if sample.error_bound_ns == UNBOUNDED:
            if bounded:
                reasons.append(Reason("accuracy", f"GM clockAccuracy 0x{sample.gm_clock_accuracy:02x} "
                                                  "gives no bound"))
        elif sample.error_bound_ns > limit:
            terms = ("jump + max(asymmetry, path delay) + GM accuracy)" if sample.state == ClockState.DEGRADED
                     else f"asymmetry {_us(config.asymmetry_budget_ns)} + GM accuracy"
                     + (" + holdover drift)" if sample.state == ClockState.HOLDOVER else ")"))
            reasons.append(Reason("error_bound", f"error bound {_us(sample.error_bound_ns)} > {_us(limit)} "
                                                 f"(|offset| {_us(abs(sample.offset_ns))} + {terms}"))
        if sample.gm_clock_class not in config.allowed_clock_classes:
            reasons.append(Reason("clock_class", f"GM clockClass {sample.gm_clock_class} not in "
                                                 f"{sorted(config.allowed_clock_classes)}"))
        if not sample.time_traceable:
            reasons.append(Reason("time_traceable", "GM time is not traceable to a primary reference"))
        if sample.ptp_timescale and not sample.utc_offset_valid:
            reasons.append(Reason("utc_offset", "PTP (TAI) timescale without a valid UTC offset"))
        if sample.ptp_timescale and sample.utc_offset_valid and sample.utc_offset < MIN_TAI_UTC_S:
            reasons.append(Reason("utc_offset", f"implausible TAI-UTC offset {sample.utc_offset} s"))
    if config.timestamp_granularity_ns > prof.granularity_ns:
        reasons.append(Reason("granularity", f"timestamps at {config.timestamp_granularity_ns} ns granularity; "
                                             f"{prof.name} needs {prof.granularity_ns} ns or finer"))
    return Verdict(prof.name, not reasons, tuple(reasons))
