"""Write-ahead send for C callers (audit/fastsend.h: fsend_append_send): its address, which the
runner gives the engine's own-fill lane through its sink, so the engine's C reads no clock and
touches no socket or journal itself. Owns nothing else."""
from __future__ import annotations

from audit._fastcap_cffi import ffi, lib

# fsend_append_send's address, for a C caller's function pointer of the same signature
APPEND_SEND_ADDRESS = int(ffi.cast("uintptr_t", ffi.addressof(lib, "fsend_append_send")))
