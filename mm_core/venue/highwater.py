"""Reserved order references and match numbers: a high-water mark written ahead, in blocks.

Owns `numbers.reserved` in the session directory: one "REF MATCH" line per reservation, each
the ceilings (one past the highest number reserved) of order references and match numbers. The
venue writes its session logs and ITCH store before it sends (page cache) and fsyncs them on a
time budget, so a power loss can take the last messages the wire already carried: a restart
that numbered on from what the logs show would hand out a reference or match number again.
Instead, a number is used only once its block is reserved here (appended and fsynced before any
event carrying it is written or sent, the way database sequence generators cache values), and a
restart starts past the last reservation: numbers jump by up to a block (they must be unique in
the day, not dense). A torn last line is not a reservation (record_line fsyncs each whole line
before the numbers are used); a damaged whole line is a SessionLogError. Must not know about
sockets, wire formats or clocks.
"""
from __future__ import annotations

from pathlib import Path

from mm_core.venue.errors import SessionLogError
from mm_core.venue.session_log import record_line

RECORD = "numbers.reserved"
BLOCK = 1 << 16        # numbers per reservation: one fsync per 65,536 orders (or trades)


class NumberReservation:
    """The reservation of one session; `ref_ceiling`/`match_ceiling`: every number below them
    is reserved (1, 1: none yet)."""

    def __init__(self, session_dir: Path) -> None:
        self.path = session_dir / RECORD
        self.ref_ceiling, self.match_ceiling = _read(self.path)

    def cover(self, next_ref: int, next_match: int) -> None:
        """Make sure every number below `next_ref` / `next_match` (what the engine handed out)
        is reserved, appending and fsyncing a new block first when one is not. Call it before
        writing or sending the events that carry them."""
        if next_ref <= self.ref_ceiling and next_match <= self.match_ceiling:
            return
        ref = self.ref_ceiling if next_ref <= self.ref_ceiling else next_ref + BLOCK
        match = self.match_ceiling if next_match <= self.match_ceiling else next_match + BLOCK
        record_line(self.path, f"{ref} {match}", "the reserved order references and match numbers")
        self.ref_ceiling, self.match_ceiling = ref, match


def _read(path: Path) -> tuple[int, int]:
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        return 1, 1
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionLogError(f"cannot read the reserved numbers {path}: {exc}") from exc
    ref = match = 1
    for number, line in enumerate(text.split("\n")[:-1], 1):   # an unterminated line: torn
        fields = line.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise SessionLogError(f"{path}:{number}: not 'REF MATCH': {line!r}")
        ref, match = max(ref, int(fields[0])), max(match, int(fields[1]))
    return ref, match
