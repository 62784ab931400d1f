"""ptp4l and phc2sys log lines: servo samples, summaries, port transitions, GM selection, faults.

Owns the text formats linuxptp prints (stdout with -m, or syslog) and a bounded incremental
reader of a log file that keeps the newest event of each kind.
Must not know about pmc, thresholds or journals.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# stdout (-m): "ptp4l[5374.018]: ..." (monotonic seconds); syslog: "ptp4l[812]: [5374.018] ..." (pid)
_PREFIX = r"^(?:.*?\b(?P<prog>ptp4l|phc2sys|ts2phc)\[(?P<tag>[^\]]*)\]:\s*)?(?:\[(?P<mono>\d+\.\d+)(?::[^\]]*)?\]\s*)?"
_SERVO_PTP4L = re.compile(_PREFIX + r"master offset\s+(?P<offset>-?\d+)\s+s(?P<state>\d)\s+freq\s+(?P<freq>[+-]?\d+)"
                          r"\s+path delay\s+(?P<delay>-?\d+)")
_SERVO_PHC2SYS = re.compile(_PREFIX + r"(?P<dst>\S+)\s+(?P<src>\S+)\s+offset\s+(?P<offset>-?\d+)\s+s(?P<state>\d)"
                            r"\s+freq\s+(?P<freq>[+-]?\d+)\s+delay\s+(?P<delay>-?\d+)")
_SUMMARY = re.compile(_PREFIX + r"(?:(?P<dst>\S+)\s+(?P<src>\S+)\s+)?rms\s+(?P<rms>\d+)\s+max\s+(?P<max>\d+)\s+"
                      r"freq\s+(?P<freq>[+-]?\d+)\s+\+/-\s+(?P<freq_sd>\d+)"
                      r"(?:\s+delay\s+(?P<delay>\d+)\s+\+/-\s+(?P<delay_sd>\d+))?")
_PORT = re.compile(_PREFIX + r"port (?P<port>\d+)(?: \((?P<iface>[^)]*)\))?: (?P<old>[A-Z_]+) to (?P<new>[A-Z_]+)"
                   r" on (?P<event>[A-Z_]+)")
_GM = re.compile(_PREFIX + r"selected (?:best master clock (?P<best>\S+)|local clock (?P<local>\S+) as best master)")
_FAULT = re.compile(_PREFIX + r"(?P<text>timed out while polling for tx timestamp.*|.*FAULT_DETECTED.*|"
                    r"clock jumped backward.*|.*failed to (?:adjust|step).*)")

SERVO_STATES = {0: "unlocked", 1: "jump", 2: "locked", 3: "locked_stable"}


@dataclass(frozen=True)
class ServoLine:
    program: str            # ptp4l or phc2sys
    clocks: str             # "master" for ptp4l; "DST SRC" for phc2sys (e.g. "CLOCK_REALTIME phc")
    offset_ns: int
    servo_state: int        # 0 unlocked, 1 jump, 2 locked, 3 locked-stable
    freq_ppb: int
    delay_ns: int
    mono_s: float | None    # the [seconds] ptp4l prints (CLOCK_MONOTONIC), None if absent


@dataclass(frozen=True)
class SummaryLine:
    program: str
    rms_ns: int
    max_ns: int
    freq_ppb: int
    freq_sd_ppb: int
    delay_ns: int | None
    delay_sd_ns: int | None
    mono_s: float | None


@dataclass(frozen=True)
class PortTransition:
    port: int
    old: str
    new: str
    event: str
    mono_s: float | None


@dataclass(frozen=True)
class GmSelected:
    identity: str
    local: bool             # True: ptp4l chose itself (no better master heard)
    mono_s: float | None


@dataclass(frozen=True)
class Fault:
    text: str
    mono_s: float | None


Event = ServoLine | SummaryLine | PortTransition | GmSelected | Fault


def _mono(m: re.Match) -> float | None:
    if m.group("mono"):
        return float(m.group("mono"))
    tag = m.group("tag") or ""
    return float(tag) if re.fullmatch(r"\d+\.\d+", tag) else None


def parse_line(line: str) -> Event | None:
    """One log line to an event; None for lines we do not track."""
    line = line.rstrip("\n")
    if m := _SERVO_PTP4L.match(line):
        return ServoLine(m.group("prog") or "ptp4l", "master", int(m.group("offset")), int(m.group("state")),
                         int(m.group("freq")), int(m.group("delay")), _mono(m))
    if m := _SUMMARY.match(line):
        delay = m.group("delay")
        return SummaryLine(m.group("prog") or ("phc2sys" if m.group("dst") else "ptp4l"), int(m.group("rms")),
                           int(m.group("max")), int(m.group("freq")), int(m.group("freq_sd")),
                           int(delay) if delay else None,
                           int(m.group("delay_sd")) if m.group("delay_sd") else None, _mono(m))
    if m := _SERVO_PHC2SYS.match(line):
        return ServoLine(m.group("prog") or "phc2sys", f"{m.group('dst')} {m.group('src')}",
                         int(m.group("offset")), int(m.group("state")), int(m.group("freq")),
                         int(m.group("delay")), _mono(m))
    if m := _PORT.match(line):
        return PortTransition(int(m.group("port")), m.group("old"), m.group("new"), m.group("event"), _mono(m))
    if m := _GM.match(line):
        return GmSelected(m.group("best") or m.group("local"), m.group("local") is not None, _mono(m))
    if m := _FAULT.match(line):
        return Fault(m.group("text"), _mono(m))
    return None


class LogFollower:
    """Reads a growing log file from where it left off (at most `max_bytes` per poll) and keeps
    the newest event of each kind plus counts of transitions, GM selections and faults."""

    def __init__(self, path: str, max_bytes: int = 1 << 20) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._pos = 0
        self._partial = ""
        self.latest: dict[tuple[type, str], Event] = {}
        self.faults = 0
        self.gm_selections = 0
        self.transitions = 0

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "r", errors="replace") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._pos:           # truncated or rotated: start again
                    self._pos, self._partial = 0, ""
                fh.seek(self._pos)
                chunk = fh.read(self.max_bytes)
                self._pos = fh.tell()
        except FileNotFoundError:
            return []
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()            # an unfinished last line waits for its newline
        events = [e for e in (parse_line(line) for line in lines) if e is not None]
        for event in events:
            self.latest[(type(event), getattr(event, "program", ""))] = event
            if isinstance(event, Fault):
                self.faults += 1
            elif isinstance(event, GmSelected):
                self.gm_selections += 1
            elif isinstance(event, PortTransition):
                self.transitions += 1
        return events

    def latest_servo(self, program: str) -> ServoLine | None:
        return self.latest.get((ServoLine, program))
