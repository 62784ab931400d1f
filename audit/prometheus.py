"""Prometheus text exposition (format 0.0.4) of a clock-health sample.

Owns metric names, help texts and the state -> number mapping (HOLDOVER is its own value, never
folded into FREERUN), and the writing of one metric family (HELP, TYPE, escaped labels) that other
expositions (mm_core.sessionmetrics) share. Must not know how samples are produced.
"""
from __future__ import annotations

from audit.health import ClockSample
from journal.catalogue import ClockState

PREFIX = "mmaudit_clock"


__all__ = ["PREFIX", "exposition", "family"]


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def family(name: str, kind: str, help_text: str, series, labels: dict[str, str] | None = None) -> list[str]:
    """One metric family's lines: HELP, TYPE (`kind`: gauge or counter) and a sample per
    (extra labels, value) of `series`, each with `labels` and its extras, values escaped."""
    labels = labels or {}
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{_labels({**labels, **extra})} {value}" for extra, value in series)
    return lines


def exposition(sample: ClockSample, labels: dict[str, str] | None = None) -> str:
    """Gauges for one sample. `labels` (e.g. {'uds': '/var/run/ptp4l'}) go on every series."""
    labels = dict(labels or {})
    lines: list[str] = []

    def gauge(name: str, help_text: str, series: list[tuple[dict[str, str], float | int]]) -> None:
        lines.extend(family(f"{PREFIX}_{name}", "gauge", help_text, series, labels))

    gauge("offset_ns", "Measured offset from the grandmaster (ptp4l master_offset), ns.",
          [({}, sample.offset_ns)])
    gauge("path_delay_ns", "Mean path delay to the master, ns.", [({}, sample.path_delay_ns)])
    gauge("error_bound_ns", "Bound on the divergence from the reference, ns; -1 when unbounded.",
          [({}, sample.error_bound_ns)])
    gauge("last_sync_age_ns", "Time since the last Sync ingress, ns; -1 when unknown.",
          [({}, sample.last_sync_age_ns)])
    gauge("state", "Clock state: " + ", ".join(f"{int(s)} {s.name}" for s in ClockState) + ".",
          [({}, int(sample.state))])
    gauge("state_info", "1 for the current clock state.",
          [({"state": s.name}, int(sample.state == s)) for s in ClockState])
    gauge("gm_clock_class", "Grandmaster clockClass; 0 when unknown.", [({}, sample.gm_clock_class)])
    gauge("compliant", "1 when the clock meets the profile's requirement.",
          [({"profile": name}, int(v.compliant)) for name, v in sorted(sample.verdicts.items())])
    return "\n".join(lines) + "\n"
