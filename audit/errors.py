"""The audit package's one exception tree: every error raised by audit/ derives from AuditError.

Owns only the classes; callers at the edge (cli/) translate them into user-facing messages.
"""
from __future__ import annotations


class AuditError(Exception):
    """Base of every error raised by the audit package."""


class TimestampingError(AuditError):
    """SO_TIMESTAMPING could not be enabled or a control message could not be decoded."""


class HwTimestampingUnsupported(TimestampingError):
    """The interface or its driver cannot do NIC hardware timestamping (SIOCSHWTSTAMP refused)."""


class PhcError(AuditError):
    """A PTP hardware clock could not be opened, read or compared."""


class LinuxptpError(AuditError):
    """A linuxptp tool (pmc, phc_ctl) or ethtool is missing, timed out or printed garbage."""


class ToolMissing(LinuxptpError):
    """The executable is not installed (not on PATH)."""


class ToolTimeout(LinuxptpError):
    """The tool did not finish within its time budget."""


class ParseError(LinuxptpError):
    """The tool's output did not have the expected shape."""


class HealthConfigError(AuditError, ValueError):
    """A clock-health profile or configuration value is invalid."""
