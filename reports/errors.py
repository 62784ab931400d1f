"""The reports package's exception tree: one base class, a few precise kinds.

Callers (the CLI) catch ReportError at the edge; nothing here knows about click.
"""
from __future__ import annotations


class ReportError(Exception):
    """Base of every error raised by the reports package."""


class RefDataError(ReportError):
    """A reference-data file is missing, unparseable or inconsistent (names file and key)."""


class JournalRangeError(ReportError):
    """The requested journal range (date, session, sequence) is empty or cannot be read."""


class OutputExistsError(ReportError):
    """A report already exists where we would write; pass force to overwrite."""


class UnknownReportError(ReportError):
    """No report builder has the requested name."""
