"""Click parameter types several commands share: bounded integers, so that a value too large for
the journal's 64-bit fields is a usage error naming the option, not an OverflowError traceback."""
from __future__ import annotations

import click

# journal sequences start at 1; the C readers take them as 64-bit integers (numpy as int64)
SEQUENCE = click.IntRange(1, 2**63 - 1)
# engine session ids are u64 in SESSION_START
SESSION_ID = click.IntRange(0, 2**64 - 1)
