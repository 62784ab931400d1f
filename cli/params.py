"""Click parameter types and checks several commands share: bounded integers, so that a value too
large for the journal's 64-bit fields is a usage error naming the option, not an OverflowError
traceback; a --phc that must be a PTP hardware clock."""
from __future__ import annotations

import click

from audit.errors import PhcError
from audit.phc import check_phc_device

# journal sequences start at 1; the C readers take them as 64-bit integers (numpy as int64)
SEQUENCE = click.IntRange(1, 2**63 - 1)
# engine session ids are u64 in SESSION_START
SESSION_ID = click.IntRange(0, 2**64 - 1)


def phc_device(value: str | None) -> str | None:
    """--phc's device, a usage error unless it is a PTP hardware clock (audit.phc.check_phc_device):
    a path that merely exists (a file, /dev/null) would only fail at the first clock sample."""
    if value is not None:
        try:
            check_phc_device(value)
        except PhcError as exc:
            raise click.BadParameter(str(exc), param_hint="--phc") from None
    return value
