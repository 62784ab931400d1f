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


class JournalIncompleteError(JournalRangeError):
    """Records inside the range failed their check when they were read (a sealed segment opened
    from its summary is checked on first read), so a report built from it would miss them."""


class OutputExistsError(ReportError):
    """A report already exists where we would write; pass force to overwrite."""


class OutputError(ReportError):
    """The output directory cannot be made or written (names it and the system's reason)."""


class KernelInputError(ReportError, ValueError):
    """Arrays handed to a compiled report kernel are not what it reads (dtype, shape, order, range):
    refused before the C runs, which trusts them."""


class UnknownReportError(ReportError):
    """No report builder has the requested name."""
