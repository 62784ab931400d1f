"""linuxptp's `pmc` over a ptp4l UDS socket: run the management GETs and parse what it prints.

Owns the list of datasets we ask for, the text format pmc prints (one header line per response,
then `name value` lines), and turning that into a typed PtpSnapshot. A field pmc did not deliver
stays None; whether that is healthy is decided in audit.health (it is not).
Must not know about thresholds, profiles, journals or threads.
"""
from __future__ import annotations

import math
import os
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field

from audit.childproc import run_in_own_session, start_in_own_session
from audit.errors import ParseError, ToolMissing, ToolTimeout

DEFAULT_UDS = "/var/run/ptp4l"
SEQ_MODULO = 1 << 16        # PTP header sequenceId is UInteger16: pmc's numbering wraps here
CORE_DATASETS = (
    "TIME_STATUS_NP", "CURRENT_DATA_SET", "PORT_DATA_SET", "PARENT_DATA_SET",
    "TIME_PROPERTIES_DATA_SET", "PORT_PROPERTIES_NP",
)
OPTIONAL_DATASETS = ("PORT_SERVICE_STATS_NP",)   # linuxptp >= 3.1.1-ish builds only; probed once

# linuxptp enum port_state (fsm.h); the number goes into CLOCK_SAMPLE.port_state, 0 = unknown.
PORT_STATES = {
    "INITIALIZING": 1, "FAULTY": 2, "DISABLED": 3, "LISTENING": 4, "PRE_MASTER": 5,
    "MASTER": 6, "PASSIVE": 7, "UNCALIBRATED": 8, "SLAVE": 9, "GRAND_MASTER": 10,
}

_HEADER = re.compile(
    r"^\s*(?P<source>[0-9a-fA-F]{6}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{6}-\d+)\s+seq\s+(?P<seq>\d+)\s+"
    r"(?P<action>RESPONSE|ACKNOWLEDGE|GET|SET|COMMAND)\s+(?P<kind>MANAGEMENT_ERROR_STATUS|MANAGEMENT|unknown-tlv)\s*"
    r"(?P<rest>.*)$")
_CLOCK_ID = re.compile(r"^[0-9a-fA-F]{6}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{6}$")


@dataclass
class PmcResponse:
    dataset: str
    source: str
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None     # MANAGEMENT_ERROR_STATUS text (e.g. NOT_SUPPORTED)
    seq: int = -1                # pmc's sequence number of the request this answers


def parse_pmc_output(text: str, asked: tuple[str, ...] | dict[int, str] = ()) -> list[PmcResponse]:
    """Split pmc's stdout into responses. Lines pmc prints for itself ('sending: ...') are skipped;
    any other line outside a response is garbage and raises ParseError. pmc numbers its requests
    from seq 0 in command order, so `asked` names the dataset of an error response (pmc prints
    MANAGEMENT_ERROR_STATUS without the management id): a tuple in seq order, or {seq: name}."""
    names = asked if isinstance(asked, dict) else dict(enumerate(asked))
    responses: list[PmcResponse] = []
    current: PmcResponse | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("sending:"):
            continue
        if m := _HEADER.match(raw):
            rest = m.group("rest").split()
            seq = int(m.group("seq"))
            asked_name = names.get(seq, "?")
            if m.group("kind") != "MANAGEMENT" or (rest and rest[0] == "empty-tlv"):
                current = PmcResponse(asked_name, m.group("source"),
                                      error=f"{m.group('kind')} {' '.join(rest)}".strip(), seq=seq)
            else:
                if not rest:
                    raise ParseError(f"pmc response without a dataset name: {raw!r}")
                current = PmcResponse(rest[0], m.group("source"), seq=seq)
            responses.append(current)
            continue
        if current is None:
            raise ParseError(f"unexpected pmc output line: {raw[:120]!r}")
        key, _, value = line.partition(" ")
        if current.error is not None:
            current.error = f"{current.error} {line}".strip()
        else:
            current.fields[key] = value.strip()
    return responses


def clock_identity_to_int(identity: str) -> int:
    """'c6a136.fffe.1e06ac' -> 64-bit integer (as stored in CLOCK_SAMPLE.gm_identity)."""
    if not _CLOCK_ID.match(identity):
        raise ParseError(f"bad clock identity {identity!r}")
    return int(identity.replace(".", ""), 16)


@dataclass(frozen=True)
class PtpSnapshot:
    """What ptp4l said in one pmc run. None = not delivered (missing dataset or field)."""

    port_state: str | None = None
    timestamping: str | None = None           # PORT_PROPERTIES_NP: SOFTWARE / HARDWARE / ...
    interface: str | None = None
    master_offset_ns: int | None = None       # TIME_STATUS_NP: measured offset (also when free-running)
    ingress_time_ns: int | None = None        # PHC time of the last Sync ingress; None when 0
    gm_present: bool | None = None
    gm_identity: str | None = None
    mean_path_delay_ns: float | None = None
    steps_removed: int | None = None
    log_sync_interval: int | None = None
    gm_clock_class: int | None = None
    gm_clock_accuracy: int | None = None
    gm_offset_scaled_log_variance: int | None = None
    utc_offset: int | None = None
    utc_offset_valid: bool | None = None
    leap61: bool | None = None
    leap59: bool | None = None
    ptp_timescale: bool | None = None
    time_traceable: bool | None = None
    frequency_traceable: bool | None = None
    service_stats: dict[str, int] | None = None
    missing: tuple[str, ...] = ()             # datasets that did not answer
    errors: tuple[str, ...] = ()              # management errors and field parse errors

    @property
    def answered(self) -> bool:
        return self.port_state is not None or self.master_offset_ns is not None


def _int(value: str) -> int:
    return int(value, 16) if value.lower().startswith("0x") else int(value)


def _ranged(lo: int, hi: int, kind: str):
    """An integer converter that refuses values outside the field's PTP type: ptp4l cannot send
    them, so such a value is garbage, never a reading (and would not fit CLOCK_SAMPLE either)."""
    def convert(value: str) -> int:
        number = _int(value)
        if not lo <= number <= hi:
            raise ValueError(f"{number} is out of range for {kind} [{lo}, {hi}]")
        return number
    return convert


_U8, _I8 = _ranged(0, 0xFF, "UInteger8"), _ranged(-0x80, 0x7F, "Integer8")
_U16, _I16 = _ranged(0, 0xFFFF, "UInteger16"), _ranged(-0x8000, 0x7FFF, "Integer16")
_I64 = _ranged(-(1 << 63), (1 << 63) - 1, "Integer64")     # ptp4l's ns values (tmv_t, int64)
_U63 = _ranged(0, (1 << 63) - 1, "a non-negative Integer64")


def _finite(value: str) -> float:
    """A float that is a measurement: finite, and small enough to journal as int64 ns."""
    number = float(value)
    if not math.isfinite(number) or abs(number) >= 2.0 ** 63:
        raise ValueError(f"{value!r} is not a finite ns value")
    return number


def _bool(value: str) -> bool:
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


# (dataset, pmc field) -> (snapshot attribute, converter)
_FIELDS = {
    ("TIME_STATUS_NP", "master_offset"): ("master_offset_ns", _I64),
    ("TIME_STATUS_NP", "ingress_time"): ("ingress_time_ns", _U63),
    ("TIME_STATUS_NP", "gmPresent"): ("gm_present", _bool),
    ("TIME_STATUS_NP", "gmIdentity"): ("gm_identity", str),
    ("CURRENT_DATA_SET", "meanPathDelay"): ("mean_path_delay_ns", _finite),
    ("CURRENT_DATA_SET", "stepsRemoved"): ("steps_removed", _U16),
    ("PORT_DATA_SET", "portState"): ("port_state", str),
    ("PORT_DATA_SET", "logSyncInterval"): ("log_sync_interval", _I8),
    ("PORT_PROPERTIES_NP", "timestamping"): ("timestamping", str),
    ("PORT_PROPERTIES_NP", "interface"): ("interface", str),
    ("PARENT_DATA_SET", "gm.ClockClass"): ("gm_clock_class", _U8),
    ("PARENT_DATA_SET", "gm.ClockAccuracy"): ("gm_clock_accuracy", _U8),
    ("PARENT_DATA_SET", "gm.OffsetScaledLogVariance"): ("gm_offset_scaled_log_variance", _U16),
    ("TIME_PROPERTIES_DATA_SET", "currentUtcOffset"): ("utc_offset", _I16),
    ("TIME_PROPERTIES_DATA_SET", "currentUtcOffsetValid"): ("utc_offset_valid", _bool),
    ("TIME_PROPERTIES_DATA_SET", "leap61"): ("leap61", _bool),
    ("TIME_PROPERTIES_DATA_SET", "leap59"): ("leap59", _bool),
    ("TIME_PROPERTIES_DATA_SET", "ptpTimescale"): ("ptp_timescale", _bool),
    ("TIME_PROPERTIES_DATA_SET", "timeTraceable"): ("time_traceable", _bool),
    ("TIME_PROPERTIES_DATA_SET", "frequencyTraceable"): ("frequency_traceable", _bool),
}
_TRACKING_STATES = ("SLAVE", "UNCALIBRATED")


def _pick_port(responses: list[PmcResponse]) -> PmcResponse | None:
    """On a multi-port clock the port that follows the GM speaks for it; else the first port."""
    if not responses:
        return None
    for resp in responses:
        if resp.fields.get("portState") in _TRACKING_STATES:
            return resp
    return responses[0]


def snapshot_from_responses(responses: list[PmcResponse], asked: tuple[str, ...] = CORE_DATASETS) -> PtpSnapshot:
    """Build a PtpSnapshot; a field that fails to convert is reported in `errors`, left None."""
    by_set: dict[str, list[PmcResponse]] = {}
    errors: list[str] = []
    for resp in responses:
        if resp.error is not None:
            if resp.dataset not in OPTIONAL_DATASETS:   # an old ptp4l may lack the optional ones
                errors.append(f"{resp.dataset}: {resp.error}")
            continue
        by_set.setdefault(resp.dataset, []).append(resp)
    chosen: dict[str, PmcResponse] = {}
    for name, resps in by_set.items():
        picked = _pick_port(resps) if name in ("PORT_DATA_SET", "PORT_PROPERTIES_NP") else resps[0]
        if picked is not None:
            chosen[name] = picked
    values: dict[str, object] = {}
    for (dataset, key), (attr, conv) in _FIELDS.items():
        resp = chosen.get(dataset)
        if resp is None or key not in resp.fields:
            continue
        try:
            values[attr] = conv(resp.fields[key])
        except ValueError as exc:
            errors.append(f"{dataset}.{key}: {exc}")
    if values.get("ingress_time_ns") == 0:
        values["ingress_time_ns"] = None     # ptp4l reports 0 when no Sync has been taken
    if "gm_identity" in values and not _CLOCK_ID.match(str(values["gm_identity"])):
        errors.append(f"TIME_STATUS_NP.gmIdentity: bad clock identity {values.pop('gm_identity')!r}")
    stats = chosen.get("PORT_SERVICE_STATS_NP")
    if stats is not None:
        try:
            values["service_stats"] = {k: _int(v) for k, v in stats.fields.items() if k != "portIdentity"}
        except ValueError as exc:
            errors.append(f"PORT_SERVICE_STATS_NP: {exc}")
    missing = tuple(name for name in asked if name not in chosen)
    return PtpSnapshot(**values, missing=missing, errors=tuple(errors))


class PmcClient:
    """Runs `pmc -u -b 0 -s UDS 'GET ...'` once per query. One pmc run costs ~100 ms: pmc waits
    that long for late answers before it exits."""

    def __init__(self, uds: str = DEFAULT_UDS, timeout_s: float = 3.0, domain: int = 0,
                 binary: str = "pmc") -> None:
        self.uds = uds
        self.timeout_s = timeout_s
        self.domain = domain
        self.binary = binary
        self._optional = list(OPTIONAL_DATASETS)   # dropped once pmc says 'bad command'

    def _run(self, datasets: tuple[str, ...]) -> subprocess.CompletedProcess:
        path = shutil.which(self.binary)
        if path is None:
            raise ToolMissing(f"{self.binary} is not installed (Debian package linuxptp)")
        argv = [path, "-u", "-b", "0", "-d", str(self.domain), "-s", self.uds,
                *(f"GET {name}" for name in datasets)]
        try:
            # pmc prints what ptp4l sent (interface names, ...): bytes that are not UTF-8 become
            # U+FFFD, never an exception out of the sampler. A session of its own: a terminal's
            # Ctrl-C or hang-up, sent to the whole job, must not fail the sample the stop takes
            return run_in_own_session(argv, self.timeout_s, text=True, errors="replace", stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ToolTimeout(f"pmc on {self.uds} did not finish within {self.timeout_s} s") from exc

    def query(self) -> PtpSnapshot:
        """All core datasets (plus the optional ones this pmc knows) in one pmc run."""
        asked = CORE_DATASETS + tuple(self._optional)
        proc = self._run(asked)
        for name in list(self._optional):
            if f"bad command: GET {name}" in proc.stderr:
                self._optional.remove(name)
        if proc.returncode != 0:
            raise ParseError(f"pmc exited {proc.returncode}: {proc.stderr.strip()[:200]}")
        return snapshot_from_responses(parse_pmc_output(proc.stdout, asked), CORE_DATASETS)


class PmcSession:
    """One long-lived interactive pmc: a query costs a few UDS round trips instead of a fork and
    pmc's 100 ms linger. pmc reads one command per wakeup, so GETs go one at a time, each matched
    to its answer by sequence number (pmc numbers what it sends from 0); late answers to earlier
    requests are dropped. On a multi-port clock only the port answers already in are kept: use
    PmcClient there. The optional datasets are probed once with a one-shot PmcClient."""

    def __init__(self, uds: str = DEFAULT_UDS, timeout_s: float = 1.0, domain: int = 0,
                 binary: str = "pmc") -> None:
        self.uds = uds
        self.timeout_s = timeout_s
        self.domain = domain
        self.binary = binary
        self._proc: subprocess.Popen | None = None
        self._seq = 0
        self._buffer = ""
        self._datasets: tuple[str, ...] | None = None

    def _start(self) -> subprocess.Popen:
        path = shutil.which(self.binary)
        if path is None:
            raise ToolMissing(f"{self.binary} is not installed (Debian package linuxptp)")
        if self._datasets is None:
            probe = PmcClient(self.uds, timeout_s=max(self.timeout_s, 1.0), domain=self.domain, binary=self.binary)
            probe.query()
            self._datasets = CORE_DATASETS + tuple(probe._optional)
        self._proc = start_in_own_session(    # as PmcClient's: the terminal's signals are the owner's
            [path, "-u", "-b", "0", "-d", str(self.domain), "-s", self.uds],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=False)
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._seq, self._buffer = 0, ""
        return self._proc

    def _read_available(self, wait_s: float) -> bool:
        """Append what pmc printed within `wait_s` to the buffer; False when pmc has exited."""
        fd = self._proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(wait_s, 0.0))
        if not ready:
            return True
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self._buffer += chunk.decode(errors="replace")
        return True

    def _take_responses(self, seq: int, dataset: str) -> list[PmcResponse]:
        """Complete responses with this seq in the buffer; everything up to them is consumed.
        `seq` counts every request of this pmc; pmc prints it modulo 2^16 (UInteger16)."""
        cut = self._buffer.rfind("\n")
        if cut < 0:
            return []
        text, self._buffer = self._buffer[: cut + 1], self._buffer[cut + 1:]
        wire_seq = seq % SEQ_MODULO
        return [r for r in parse_pmc_output(text, {wire_seq: dataset})
                if r.seq == wire_seq and r.dataset == dataset]

    def query(self) -> PtpSnapshot:
        if self._proc is None or self._proc.poll() is not None:
            self.close()      # reap a dead pmc and its pipes before starting another
            self._start()
        deadline = time.monotonic() + self.timeout_s
        responses: list[PmcResponse] = []
        for dataset in self._datasets:
            seq = self._seq
            try:
                self._proc.stdin.write(f"GET {dataset}\n".encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                self.close()
                raise ParseError(f"pmc session ended: {exc}") from exc
            self._seq += 1
            got: list[PmcResponse] = []
            while not got:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if not self._read_available(remaining):
                    self.close()
                    raise ParseError("pmc session exited")
                got = self._take_responses(seq, dataset)
            responses.extend(got)
        return snapshot_from_responses(responses, CORE_DATASETS)

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=5)
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self._proc = None
