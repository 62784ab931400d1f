"""ptp4l and phc2sys log lines: servo samples, summaries, port transitions, GM selection, faults.

Owns the text formats linuxptp prints (stdout with -m, or syslog; with or without its
message_tag) and a bounded incremental reader of a log file that keeps the newest event of each
kind and says when none of the lines it read was a servo line.
Must not know about pmc, thresholds or journals.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# stdout (-m): "ptp4l[5374.018]: ..." (monotonic seconds); syslog: "ptp4l[812]: [5374.018] ..." (pid)
_PREFIX = re.compile(r"^(?:.*?\b(?P<prog>ptp4l|phc2sys|ts2phc)\[(?P<tag>[^\]]*)\]:\s*)?"
                     r"(?:\[(?P<mono>\d+\.\d+)(?::[^\]]*)?\]\s*)?")
# The message itself may follow linuxptp's message_tag option ("%s[%lld.%03ld]: %s%s%s": the
# tag, a space, the message; the tag is free text, e.g. "[ptp4l.0.config]"), so each message is
# searched for at the start of a word after the prefix, not only right after it.
_AT_WORD = r"(?:^|(?<=\s))"
_SERVO_PTP4L = re.compile(_AT_WORD + r"master offset\s+(?P<offset>-?\d+)\s+s(?P<state>\d)\s+"
                          r"freq\s+(?P<freq>[+-]?\d+)\s+path delay\s+(?P<delay>-?\d+)")
# phc2sys prints "delay" only when it measured one (not from a PPS source)
_SERVO_PHC2SYS = re.compile(_AT_WORD + r"(?P<dst>\S+)\s+(?P<src>\S+)\s+offset\s+(?P<offset>-?\d+)\s+"
                            r"s(?P<state>\d)\s+freq\s+(?P<freq>[+-]?\d+)(?:\s+delay\s+(?P<delay>-?\d+))?")
# ptp4l: "rms ..."; phc2sys: "DEVICE rms ..." (older builds "DST SRC rms ...")
_SUMMARY = re.compile(_AT_WORD + r"(?:(?P<dst>\S+)\s+(?:\S+\s+)?)?rms\s+(?P<rms>\d+)\s+max\s+(?P<max>\d+)\s+"
                      r"freq\s+(?P<freq>[+-]?\d+)\s+\+/-\s+(?P<freq_sd>\d+)"
                      r"(?:\s+delay\s+(?P<delay>\d+)\s+\+/-\s+(?P<delay_sd>\d+))?")
_PORT = re.compile(_AT_WORD + r"port (?P<port>\d+)(?: \((?P<iface>[^)]*)\))?: (?P<old>[A-Z_]+) to "
                   r"(?P<new>[A-Z_]+) on (?P<event>[A-Z_]+)")
_GM = re.compile(_AT_WORD + r"selected (?:best master clock (?P<best>\S+)|local clock (?P<local>\S+) as best master)")
_FAULT = re.compile(_AT_WORD + r"(?P<text>timed out while polling for tx timestamp.*|.*FAULT_DETECTED.*|"
                    r"clock jumped backward.*|failed to (?:adjust|step).*)")

SERVO_STATES = {0: "unlocked", 1: "jump", 2: "locked", 3: "locked_stable"}


@dataclass(frozen=True)
class ServoLine:
    program: str            # ptp4l or phc2sys
    clocks: str             # "master" for ptp4l; "DST SRC" for phc2sys (e.g. "CLOCK_REALTIME phc")
    offset_ns: int
    servo_state: int        # 0 unlocked, 1 jump, 2 locked, 3 locked-stable
    freq_ppb: int
    delay_ns: int | None    # None: phc2sys measured none (a PPS source)
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


def _mono(prefix: re.Match) -> float | None:
    if prefix.group("mono"):
        return float(prefix.group("mono"))
    tag = prefix.group("tag") or ""
    return float(tag) if re.fullmatch(r"\d+\.\d+", tag) else None


def _summary_program(prog: str | None, device: str | None) -> str:
    """Whose summary: the program the prefix names; without one, a device before "rms" is
    phc2sys's, unless it is a bracketed message tag (ptp4l prints none)."""
    if prog:
        return prog
    return "phc2sys" if device and not (device.startswith("[") and device.endswith("]")) else "ptp4l"


def parse_line(line: str) -> Event | None:
    """One log line to an event; None for lines we do not track."""
    line = line.rstrip("\n")
    prefix = _PREFIX.match(line)
    prog, body, mono = prefix.group("prog"), line[prefix.end():], _mono(prefix)
    if m := _SERVO_PTP4L.search(body):
        return ServoLine(prog or "ptp4l", "master", int(m.group("offset")), int(m.group("state")),
                         int(m.group("freq")), int(m.group("delay")), mono)
    if m := _SUMMARY.search(body):
        delay = m.group("delay")
        return SummaryLine(_summary_program(prog, m.group("dst")), int(m.group("rms")),
                           int(m.group("max")), int(m.group("freq")), int(m.group("freq_sd")),
                           int(delay) if delay else None,
                           int(m.group("delay_sd")) if m.group("delay_sd") else None, mono)
    if m := _SERVO_PHC2SYS.search(body):
        delay = m.group("delay")
        return ServoLine(prog or "phc2sys", f"{m.group('dst')} {m.group('src')}",
                         int(m.group("offset")), int(m.group("state")), int(m.group("freq")),
                         int(delay) if delay else None, mono)
    if m := _PORT.search(body):
        return PortTransition(int(m.group("port")), m.group("old"), m.group("new"), m.group("event"), mono)
    if m := _GM.search(body):
        return GmSelected(m.group("best") or m.group("local"), m.group("local") is not None, mono)
    if m := _FAULT.search(body):
        return Fault(m.group("text"), mono)
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
        self.lines = 0                          # whole lines read
        self.servo_lines: dict[str, int] = {}   # servo and summary lines, per program
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
        self.lines += len(lines)
        events = [e for e in (parse_line(line) for line in lines) if e is not None]
        for event in events:
            self.latest[(type(event), getattr(event, "program", ""))] = event
            if isinstance(event, (ServoLine, SummaryLine)):
                self.servo_lines[event.program] = self.servo_lines.get(event.program, 0) + 1
            if isinstance(event, Fault):
                self.faults += 1
            elif isinstance(event, GmSelected):
                self.gm_selections += 1
            elif isinstance(event, PortTransition):
                self.transitions += 1
        return events

    def latest_servo(self, program: str) -> ServoLine | None:
        return self.latest.get((ServoLine, program))

    def silence(self, program: str) -> str | None:
        """What to say when lines were read but none was a servo line (or summary) of
        `program`: a log in a format not understood must not pass for a quiet servo."""
        if not self.lines or self.servo_lines.get(program):
            return None
        return (f"{self.lines} line(s) read from {self.path}, none parsed as a {program} servo "
                "line or summary")
