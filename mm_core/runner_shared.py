"""Names the runner's parts share (mm_core.runner and its runner_* mixins): record types and
stamp sources as ints, frame and read-turn bounds, and the OS-error and wall-clock helpers.
Owns no state.
"""
from __future__ import annotations

import errno
import time

from journal.catalogue import RecordType, TsSource
from mm_core.protocol import soupbintcp

_USER = int(TsSource.USER)
_ORDER_SENT = int(RecordType.ORDER_SENT)
_MAX_FRAME = soupbintcp.MAX_LENGTH_FIELD  # any legal SoupBinTCP frame (a long Debug packet too)
_MD_TURN = 256            # market-data packets read in one turn of the loop, at most


def _oserror(exc: OSError) -> str:
    """ConnectionResetError ECONNRESET (Connection reset by peer), EADDRNOTAVAIL (...)"""
    kind = "" if type(exc) is OSError else f"{type(exc).__name__} "
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{kind}{name} ({exc.strerror})" if name else f"{type(exc).__name__}: {exc}"


def _realtime() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)
