"""Kernel SO_TIMESTAMPING constants and decoders for its control messages (pure, no sockets).

Owns the uapi numbers (include/uapi/linux/net_tstamp.h, errqueue.h, asm-generic/socket.h) and
the byte layouts of struct scm_timestamping(64) and struct sock_extended_err.
Must not know about sockets, journals or clock health: bytes in, integers out.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from audit.errors import TimestampingError

# asm-generic/socket.h (x86, arm64 and most others; not sparc/parisc/alpha/mips).
SO_TIMESTAMPING_OLD = 37
SO_TIMESTAMPING_NEW = 65   # struct scm_timestamping64: y2038-safe, kernel >= 5.1
SCM_TIMESTAMPING_TYPES = frozenset({SO_TIMESTAMPING_OLD, SO_TIMESTAMPING_NEW})

SOL_IP = 0
IP_RECVERR = 11
SOL_IPV6 = 41
IPV6_RECVERR = 25
RECVERR_TYPES = frozenset({(SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)})

ENOMSG = 42
SO_EE_ORIGIN_TIMESTAMPING = 4


class TsFlag(enum.IntFlag):
    """SOF_TIMESTAMPING_* bits: generation (TX_*/RX_*), reporting and option bits."""

    TX_HARDWARE = 1 << 0
    TX_SOFTWARE = 1 << 1
    RX_HARDWARE = 1 << 2
    RX_SOFTWARE = 1 << 3
    SOFTWARE = 1 << 4
    SYS_HARDWARE = 1 << 5
    RAW_HARDWARE = 1 << 6
    OPT_ID = 1 << 7
    TX_SCHED = 1 << 8
    TX_ACK = 1 << 9
    OPT_CMSG = 1 << 10
    OPT_TSONLY = 1 << 11
    OPT_STATS = 1 << 12
    OPT_PKTINFO = 1 << 13
    OPT_TX_SWHW = 1 << 14
    BIND_PHC = 1 << 15
    OPT_ID_TCP = 1 << 16


class TstampType(enum.IntEnum):
    """sock_extended_err.ee_info for timestamps: which point of the TX path was stamped."""

    SND = 0     # handed to the driver (software) or put on the wire (hardware)
    SCHED = 1   # entered the packet scheduler
    ACK = 2     # all bytes acknowledged by the peer (TCP)


# struct scm_timestamping64 { struct __kernel_timespec ts[3]; }: three (s64 sec, s64 nsec).
_SCM_TS64 = struct.Struct("=qqqqqq")
# struct scm_timestamping with a 32-bit time_t (old ABI on 32-bit machines).
_SCM_TS32 = struct.Struct("=iiiiii")
# struct sock_extended_err { u32 errno; u8 origin, type, code, pad; u32 info; u32 data; }
_EXT_ERR = struct.Struct("=IBBBBII")


@dataclass(frozen=True, slots=True)
class ScmTimestamping:
    """The three stamps of one SCM_TIMESTAMPING message, in ns; 0 means 'not present'."""

    software_ns: int       # ts[0]: kernel software stamp, CLOCK_REALTIME
    legacy_ns: int         # ts[1]: deprecated (was hardware converted to system time)
    hardware_ns: int       # ts[2]: raw NIC hardware stamp, PHC time (TAI if the PHC runs PTP time)


@dataclass(frozen=True, slots=True)
class ExtendedErr:
    """The fields of struct sock_extended_err that identify a TX timestamp."""

    errno: int
    origin: int
    info: int     # TstampType for timestamps
    data: int     # OPT_ID key: packet counter (datagram) or byte counter (stream)

    @property
    def is_timestamp(self) -> bool:
        return self.errno == ENOMSG and self.origin == SO_EE_ORIGIN_TIMESTAMPING


def _timespec_ns(sec: int, nsec: int) -> int:
    if nsec < 0 or nsec >= 1_000_000_000 or sec < 0:
        raise TimestampingError(f"timespec out of range: {sec}.{nsec:09d}")
    return sec * 1_000_000_000 + nsec


def parse_scm_timestamping(data: bytes) -> ScmTimestamping:
    """Decode the payload of an SCM_TIMESTAMPING(_NEW) control message."""
    if len(data) == _SCM_TS64.size:
        fields = _SCM_TS64.unpack(data)
    elif len(data) == _SCM_TS32.size:
        fields = _SCM_TS32.unpack(data)
    else:
        raise TimestampingError(
            f"SCM_TIMESTAMPING payload is {len(data)} bytes; expected {_SCM_TS64.size} or {_SCM_TS32.size}")
    return ScmTimestamping(
        _timespec_ns(fields[0], fields[1]),
        _timespec_ns(fields[2], fields[3]),
        _timespec_ns(fields[4], fields[5]),
    )


def parse_extended_err(data: bytes) -> ExtendedErr:
    """Decode the leading struct sock_extended_err of an IP(V6)_RECVERR control message."""
    if len(data) < _EXT_ERR.size:
        raise TimestampingError(f"sock_extended_err needs {_EXT_ERR.size} bytes, got {len(data)}")
    errno, origin, _type, _code, _pad, info, key = _EXT_ERR.unpack_from(data)
    return ExtendedErr(errno, origin, info, key)


def pack_scm_timestamping(software_ns: int = 0, hardware_ns: int = 0) -> bytes:
    """Build a 64-bit SCM_TIMESTAMPING payload as the kernel lays it out (used by tests and tools)."""
    return _SCM_TS64.pack(software_ns // 10**9, software_ns % 10**9, 0, 0,
                          hardware_ns // 10**9, hardware_ns % 10**9)


def pack_extended_err(key: int, info: int = TstampType.SND, errno: int = ENOMSG,
                      origin: int = SO_EE_ORIGIN_TIMESTAMPING) -> bytes:
    """Build a struct sock_extended_err followed by an empty sockaddr, as on the error queue."""
    return _EXT_ERR.pack(errno, origin, 0, 0, 0, info, key) + bytes(16)
