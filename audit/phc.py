"""PTP hardware clocks: read /dev/ptpN as a dynamic POSIX clock, compare it with CLOCK_REALTIME,
turn PHC (TAI) time into UTC, and wrap linuxptp's phc_ctl for a second opinion.

Owns the FD_TO_CLOCKID rule ((~fd) << 3 | 3), what makes a path a PHC (its sysfs class), the
TAI->UTC conversion with the UTC offset and leap flags ptp4l reports (one rule for the runner,
replay and the reports), and parsing phc_ctl's `get`/`cmp` lines. Opens PHCs read-only.
Must not know about sockets, pmc or health verdicts.
"""
from __future__ import annotations

import datetime
import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass

import numpy as np

from audit.childproc import run_in_own_session
from audit.errors import ParseError, PhcError, ToolMissing, ToolTimeout
from journal.catalogue import ClockState

CLOCKFD = 3
NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
# A leap flag seen this soon after a midnight belongs to that midnight (the GM cleared it late),
# later it announces the coming one: linuxptp's leap_second_status splits at 6 h after midnight.
LEAP_SPLIT_NS = 6 * 3_600 * NS_PER_S
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def fd_to_clockid(fd: int) -> int:
    """linuxptp missing.h FD_TO_CLOCKID: a dynamic clock id from an open /dev/ptpN descriptor."""
    if fd < 0:
        raise PhcError(f"bad file descriptor {fd}")
    return ((~fd) << 3) | CLOCKFD


def clockid_to_fd(clockid: int) -> int:
    """The inverse, CLOCKID_TO_FD: ~(clockid >> 3)."""
    if clockid >= 0 or clockid & 7 != CLOCKFD:
        raise PhcError(f"{clockid} is not a dynamic (fd-based) clock id")
    return ~(clockid >> 3)


def check_phc_device(path: str, sysfs: str = "/sys") -> None:
    """PhcError unless `path` is a PTP hardware clock's character device (/dev/ptpN, or a link to
    one): the kernel's entry for its device number (sysfs/dev/char/MAJOR:MINOR) in the ptp class,
    or, where sysfs has no entry, a device whose dynamic clock answers clock_getres. What it is
    instead (a regular file, a directory, /dev/null of the mem class) is named. Opens nothing
    that sysfs names: opening some devices acts (a watchdog arms)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PhcError(f"{path}: {exc.strerror}") from None
    mode = st.st_mode
    if not stat.S_ISCHR(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode)
                else "a block device" if stat.S_ISBLK(mode) else "not a character device")
        raise PhcError(f"{path} is {kind}, not a PTP hardware clock (/dev/ptpN)")
    number = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    entry = os.path.join(sysfs, "dev", "char", number)
    if os.path.lexists(entry):
        subsystem = os.path.basename(os.path.realpath(os.path.join(entry, "subsystem")))
        if subsystem != "ptp":
            raise PhcError(f"{path} is character device {number} of the {subsystem} class, not a PTP "
                           "hardware clock (/sys/class/ptp)")
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise PhcError(f"cannot open {path}: {exc.strerror}") from None
    try:
        time.clock_getres(fd_to_clockid(fd))
    except OSError as exc:
        raise PhcError(f"{path} (character device {number}) is not a PTP hardware clock: "
                       f"clock_getres: {exc.strerror}") from None
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class PhcComparison:
    """One PHC-vs-CLOCK_REALTIME measurement: the tightest of several sandwiched reads."""

    phc_ns: int             # PHC reading
    realtime_ns: int        # CLOCK_REALTIME at the midpoint of the sandwich
    window_ns: int          # width of the tightest sandwich: the measurement's uncertainty

    @property
    def offset_ns(self) -> int:
        """PHC minus CLOCK_REALTIME. About +37 s when the PHC runs TAI and the system clock UTC."""
        return self.phc_ns - self.realtime_ns


class PhcClock:
    """An open PHC. Use as a context manager; read-only unless `writable` (we never adjust it)."""

    def __init__(self, device: str, writable: bool = False) -> None:
        try:
            self.fd = os.open(device, os.O_RDWR if writable else os.O_RDONLY)
        except OSError as exc:
            raise PhcError(f"cannot open {device}: {exc.strerror}") from exc
        self.device = device
        self.clockid = fd_to_clockid(self.fd)
        try:
            self.gettime_ns()
        except PhcError:
            self.close()
            raise

    def gettime_ns(self) -> int:
        try:
            return time.clock_gettime_ns(self.clockid)
        except OSError as exc:
            raise PhcError(f"{self.device}: clock_gettime failed: {exc.strerror}") from exc

    def compare_realtime(self, samples: int = 9) -> PhcComparison:
        """Sandwich each PHC read between two CLOCK_REALTIME reads; keep the tightest pair."""
        if samples <= 0:
            raise PhcError("samples must be positive")
        best: PhcComparison | None = None
        for _ in range(samples):
            before = time.clock_gettime_ns(time.CLOCK_REALTIME)
            phc = self.gettime_ns()
            after = time.clock_gettime_ns(time.CLOCK_REALTIME)
            cand = PhcComparison(phc, (before + after) // 2, after - before)
            if best is None or cand.window_ns < best.window_ns:
                best = cand
        return best

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "PhcClock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tai_to_utc_ns(tai_ns: int, utc_offset_s: int, utc_offset_valid: bool,
                  leap61: bool = False, leap59: bool = False) -> int:
    """PHC time on the PTP (TAI) timescale to UTC ns since the Unix epoch.

    Refuses when the GM has not marked its UTC offset valid: a guessed offset is an invented
    timestamp. leap61/leap59 announce an inserted or deleted second at a midnight UTC, and the
    GM clears them (and bumps currentUtcOffset) at the leap; instants after that midnight use
    the new offset. Which midnight a set flag means is _leap_midnight's rule.
    """
    if not utc_offset_valid:
        raise PhcError("UTC offset not marked valid by the grandmaster: TAI cannot become UTC")
    if leap61 and leap59:
        raise PhcError("leap61 and leap59 both set")
    if not 0 <= utc_offset_s <= 1000:
        raise PhcError(f"implausible TAI-UTC offset {utc_offset_s} s")
    return leap_utc_ns(tai_ns - utc_offset_s * NS_PER_S, LEAP61 if leap61 else LEAP59 if leap59 else 0)


LEAP61, LEAP59 = 61, 59      # the leap flag in force, as one code (0: none)


def leap_utc_ns(utc_ns: int, leap: int) -> int:
    """UTC ns by the offset of a sample whose leap flag is `leap` (LEAP61, LEAP59 or 0), moved by
    the leap second once _leap_midnight's midnight has passed: the inserted second makes the
    offset 1 s larger after it, the deleted 23:59:59 is skipped. tai_to_utc_ns's rule, and
    leap_corrected_ns's row by row."""
    if leap:
        midnight = _leap_midnight(utc_ns)
        if leap == LEAP61 and utc_ns >= midnight:
            return utc_ns - NS_PER_S
        if leap == LEAP59 and utc_ns >= midnight - NS_PER_S:
            return utc_ns + NS_PER_S
    return utc_ns


def _leap_midnight(utc_ns: int) -> int:
    """The midnight a leap flag seen at utc_ns (UTC by the GM's offset) announces. Leap seconds
    fall at the end of a month (ITU-R TF.460), and GMs raise the flags up to the whole day
    before (IEEE 1588: the current day's last minute) but may clear them a few announces late:
    on a month's last day the flag is for the coming midnight (the one just passed ended no
    month); on other days, as linuxptp splits it, within 6 h after midnight it is for the
    midnight just passed, later for the coming one."""
    start_of_day = utc_ns // DAY_NS * DAY_NS
    coming = start_of_day + DAY_NS
    if datetime.date.fromordinal(_EPOCH_ORDINAL + coming // DAY_NS).day == 1:
        return coming
    return start_of_day if utc_ns - start_of_day < LEAP_SPLIT_NS else coming


def phc_offset(sample):
    """(sets, seconds): whether a CLOCK_SAMPLE (a record, or a structured array of them) sets the
    offset taken off PHC stamps from it on, and that offset. On the PTP timescale the PHC is TAI:
    the sample's currentUtcOffset, when valid. On the ARB timescale (ptpTimescale 0) the PHC
    carries the GM's time as is (audit.sampler compares it with the system clock so): 0. A sample
    whose timescale was not read (UNKNOWN, without a valid offset: its flags are defaults) or a
    PTP one without a valid offset sets nothing: the offset in force stays. One rule for the
    runner, replay and the reports (engine time and report time agree)."""
    ptp = np.asarray(sample["ptp_timescale"]) != 0
    valid = np.asarray(sample["utc_offset_valid"]) != 0
    read = valid | (np.asarray(sample["state"]) != int(ClockState.UNKNOWN))
    sets = (ptp & valid) | (~ptp & read)
    return sets, np.where(ptp, np.asarray(sample["utc_offset"]).astype(np.int64), 0)


def phc_leap(sample):
    """The leap flag that comes in force with the offset a CLOCK_SAMPLE sets (phc_offset; a record
    or an array of them): LEAP61, LEAP59 (leap61 first, as leap_corrected_ns takes it) or 0, and
    0 on the ARB timescale, whose PHC is taken as is. The runner and replay keep it with the
    offset and convert each PHC stamp with leap_utc_ns, as the reports convert theirs."""
    ptp = np.asarray(sample["ptp_timescale"]) != 0
    leap61 = ptp & (np.asarray(sample["leap61"]) != 0)
    leap59 = ptp & (np.asarray(sample["leap59"]) != 0)
    return np.where(leap61, LEAP61, np.where(leap59, LEAP59, 0))


def leap_corrected_ns(utc_ns, leap61, leap59):
    """tai_to_utc_ns's leap rule over numpy arrays (reports convert PHC stamps in bulk): UTC ns
    by the flagged sample's offset, moved by the leap second once `_leap_midnight`'s midnight has
    passed. Same rule, row by row; rows without a flag are returned unchanged."""
    utc = np.asarray(utc_ns, np.int64)
    leap61, leap59 = np.asarray(leap61, bool), np.asarray(leap59, bool)
    start = utc // DAY_NS * DAY_NS
    coming = start + DAY_NS
    day = (coming // DAY_NS).astype("datetime64[D]")
    ends_month = day.astype("datetime64[M]").astype("datetime64[D]") == day
    midnight = np.where(ends_month | (utc - start >= LEAP_SPLIT_NS), coming, start)
    out = utc.copy()
    out[leap61 & (utc >= midnight)] -= NS_PER_S
    out[leap59 & ~leap61 & (utc >= midnight - NS_PER_S)] += NS_PER_S
    return out


_PHC_CTL_GET = re.compile(r"clock time is (\d+)\.(\d{9})")
_PHC_CTL_CMP = re.compile(r"offset from CLOCK_REALTIME is (-?\d+)ns")


def parse_phc_ctl(text: str) -> dict[str, int]:
    """Pull `get` (time_ns) and `cmp` (offset_ns) results out of phc_ctl's output."""
    out: dict[str, int] = {}
    if m := _PHC_CTL_GET.search(text):
        out["time_ns"] = int(m.group(1)) * NS_PER_S + int(m.group(2))
    if m := _PHC_CTL_CMP.search(text):
        out["offset_ns"] = int(m.group(1))
    if not out:
        raise ParseError(f"phc_ctl printed no result: {text.strip()[:200]!r}")
    return out


def phc_ctl(device: str, *commands: str, timeout_s: float = 5.0, binary: str = "phc_ctl") -> dict[str, int]:
    """Run linuxptp's phc_ctl read-only (`get`, `cmp`); anything that adjusts the clock is refused."""
    allowed = {"get", "cmp", "caps"}
    if not commands or not set(commands) <= allowed:
        raise PhcError(f"phc_ctl commands must be among {sorted(allowed)} (read-only)")
    path = shutil.which(binary)
    if path is None:
        raise ToolMissing(f"{binary} is not installed (Debian package linuxptp)")
    try:
        # a session of its own: a hang-up or Ctrl-C sent to the job must not kill it as it starts
        proc = run_in_own_session([path, device, *commands], timeout_s, text=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeout(f"phc_ctl {device} did not answer within {timeout_s} s") from exc
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise PhcError(f"phc_ctl {device}: {text.strip() or f'exit {proc.returncode}'}")
    return parse_phc_ctl(text)
