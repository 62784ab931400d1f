"""Click parameter types and checks several commands share: bounded integers, so that a value too
large for the journal's 64-bit fields is a usage error naming the option, not an OverflowError
traceback; a --phc that must be a PTP hardware clock; a byte size such as --md-rcvbuf's."""
from __future__ import annotations

import re

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


_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def byte_size(text: str, option: str, least: int, most: int) -> int:
    """A size in bytes as typed: 262144, 256K, 4M (binary units), within least..most."""
    match = re.fullmatch(r"\s*([0-9]+)\s*([kKmMgG]?)i?[bB]?\s*", text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a size such as 262144, 256K or 4M", param_hint=option)
    n = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if not least <= n <= most:
        raise click.BadParameter(f"{text.strip()!r} is {n} bytes: must be {least}..{most}", param_hint=option)
    return n
