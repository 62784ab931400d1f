"""A network interface's timestamping: capabilities (ethtool -T) and the NIC hardware stamping switch.

Owns parsing `ethtool -T` output (the PHC as "PTP Hardware Clock: N" or, with newer ethtool on
kernels >= 6.13, "Hardware timestamp provider index: N"; /sys/class/net/IF/device/ptp/ when the
output names neither), and the SIOCGHWTSTAMP / SIOCSHWTSTAMP ioctls (struct
hwtstamp_config behind ifreq.ifr_data), which is what linuxptp's hwstamp_ctl does.
Must not know about sockets' own SO_TIMESTAMPING flags, clock health or journals.
"""
from __future__ import annotations

import ctypes
import enum
import errno as errno_mod
import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field

from audit.childproc import run_in_own_session
from audit.errors import (
    HwTimestampingUnsupported, ParseError, TimestampingError, ToolMissing, ToolTimeout,
)

SIOCSHWTSTAMP = 0x89B0
SIOCGHWTSTAMP = 0x89B1
IFNAMSIZ = 16


class HwTxType(enum.IntEnum):
    OFF = 0
    ON = 1
    ONESTEP_SYNC = 2
    ONESTEP_P2P = 3


class HwRxFilter(enum.IntEnum):
    NONE = 0
    ALL = 1            # every packet: what market data and order acks need
    SOME = 2
    PTP_V1_L4_EVENT = 3
    PTP_V1_L4_SYNC = 4
    PTP_V1_L4_DELAY_REQ = 5
    PTP_V2_L4_EVENT = 6
    PTP_V2_L4_SYNC = 7
    PTP_V2_L4_DELAY_REQ = 8
    PTP_V2_L2_EVENT = 9
    PTP_V2_L2_SYNC = 10
    PTP_V2_L2_DELAY_REQ = 11
    PTP_V2_EVENT = 12
    PTP_V2_SYNC = 13
    PTP_V2_DELAY_REQ = 14
    NTP_ALL = 15


class _HwtstampConfig(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_int), ("tx_type", ctypes.c_int), ("rx_filter", ctypes.c_int)]


@dataclass(frozen=True)
class HwStampConfig:
    tx_type: int
    rx_filter: int

    @property
    def enabled(self) -> bool:
        return self.tx_type != HwTxType.OFF or self.rx_filter != HwRxFilter.NONE

    def describe(self) -> str:
        tx = HwTxType(self.tx_type).name if self.tx_type in HwTxType._value2member_map_ else str(self.tx_type)
        rx = HwRxFilter(self.rx_filter).name if self.rx_filter in HwRxFilter._value2member_map_ else str(self.rx_filter)
        return f"tx {tx}, rx filter {rx}"


@dataclass(frozen=True)
class NicTimestamping:
    """What `ethtool -T` says an interface can do."""

    interface: str
    capabilities: tuple[str, ...]         # e.g. hardware-transmit, software-receive
    phc_index: int | None                 # /dev/ptpN, None when the NIC has no PHC
    tx_modes: tuple[str, ...] = field(default=())
    rx_filters: tuple[str, ...] = field(default=())

    @property
    def hardware_capable(self) -> bool:
        return ("hardware-transmit" in self.capabilities and "hardware-receive" in self.capabilities
                and "hardware-raw-clock" in self.capabilities and self.phc_index is not None)

    @property
    def phc_device(self) -> str | None:
        return None if self.phc_index is None else f"/dev/ptp{self.phc_index}"


_SECTION_LISTS = {
    "capabilities": "capabilities",
    "hardware transmit timestamp modes": "tx_modes",
    "hardware receive filter modes": "rx_filters",
}


# the lines that name the PHC: ethtool's ioctl and older netlink layout, and its netlink layout
# when the kernel reports a hardware timestamp provider (ethtool netlink/tsinfo.c)
_PHC_KEYS = ("ptp hardware clock", "hardware timestamp provider index")


def sysfs_phc_index(interface: str, root: str = "/sys/class/net") -> int | None:
    """The lowest N of ROOT/IF/device/ptp/ptpN (the PHC the driver registered), None if none."""
    try:
        names = os.listdir(os.path.join(root, interface, "device", "ptp"))
    except OSError:
        return None
    found = [int(n[3:]) for n in names if n.startswith("ptp") and n[3:].isdigit()]
    return min(found) if found else None


def parse_ethtool_t(text: str, sysfs_root: str | None = None) -> NicTimestamping:
    """Parse `ethtool -T IFACE` output (ethtool 5.x-6.x layouts). Output naming no PHC line at
    all is an error, unless sysfs_root is given and ROOT/IF/device/ptp/ names the PHC."""
    match = re.search(r"Time stamping parameters for (\S+):", text)
    if not match:
        raise ParseError("not ethtool -T output: no 'Time stamping parameters for' line")
    lists: dict[str, list[str]] = {v: [] for v in _SECTION_LISTS.values()}
    phc_index: int | None = None
    phc_seen = False
    current: str | None = None
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        if line[0] in " \t":
            if current is not None:
                lists[current].append(line.split()[0])
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        current = _SECTION_LISTS.get(key)
        if current is not None and value and value.lower() != "none":
            lists[current].append(value.split()[0])
        if key in _PHC_KEYS:
            phc_seen = True
            if value.lower() not in ("none", ""):
                if not value.isdigit():
                    raise ParseError(f"bad {line.partition(':')[0].strip()} value {value!r}")
                phc_index = int(value)
    if not phc_seen:
        phc_index = None if sysfs_root is None else sysfs_phc_index(match.group(1), sysfs_root)
        if phc_index is None:
            raise ParseError("ethtool -T output has no 'PTP Hardware Clock' or 'Hardware timestamp "
                             "provider index' line"
                             + ("" if sysfs_root is None else
                                f", and {sysfs_root}/{match.group(1)}/device/ptp/ names no PHC"))
    return NicTimestamping(match.group(1), tuple(lists["capabilities"]), phc_index,
                           tuple(lists["tx_modes"]), tuple(lists["rx_filters"]))


def ethtool_timestamping(interface: str, timeout_s: float = 5.0, ethtool: str = "ethtool") -> NicTimestamping:
    """Run `ethtool -T` and parse it (sysfs names the PHC if the output does not)."""
    path = shutil.which(ethtool)
    if path is None:
        raise ToolMissing(f"{ethtool} is not installed (Debian package ethtool)")
    try:
        # a session of its own: a hang-up or Ctrl-C sent to the job must not kill it as it starts
        proc = run_in_own_session([path, "-T", interface], timeout_s, text=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeout(f"ethtool -T {interface} did not answer within {timeout_s} s") from exc
    if proc.returncode != 0:
        raise ParseError(f"ethtool -T {interface} failed: {proc.stderr.strip() or proc.returncode}")
    return parse_ethtool_t(proc.stdout, sysfs_root="/sys/class/net")


def _hwtstamp_ioctl(interface: str, request: int, config: _HwtstampConfig) -> _HwtstampConfig:
    name = interface.encode()
    if not name or len(name) >= IFNAMSIZ:
        raise TimestampingError(f"bad interface name {interface!r}")
    # struct ifreq: char ifr_name[16]; union { void *ifr_data; ... } padded to 40 bytes on LP64.
    ifreq = bytearray(struct.pack(f"{IFNAMSIZ}sP", name, ctypes.addressof(config)).ljust(40, b"\0"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), request, ifreq)
        except OSError as exc:
            if exc.errno in (errno_mod.EOPNOTSUPP, errno_mod.EINVAL, errno_mod.ERANGE):
                raise HwTimestampingUnsupported(
                    f"{interface}: hardware timestamping not supported ({errno_mod.errorcode.get(exc.errno)})") from exc
            if exc.errno == errno_mod.ENODEV:
                raise TimestampingError(f"{interface}: no such interface") from exc
            raise TimestampingError(f"{interface}: hwtstamp ioctl failed: {exc}") from exc
    return config


def get_hw_timestamping(interface: str) -> HwStampConfig:
    """The NIC's current hardware stamping config (SIOCGHWTSTAMP)."""
    cfg = _hwtstamp_ioctl(interface, SIOCGHWTSTAMP, _HwtstampConfig())
    return HwStampConfig(cfg.tx_type, cfg.rx_filter)


def enable_hw_timestamping(interface: str, tx_type: HwTxType = HwTxType.ON,
                           rx_filter: HwRxFilter = HwRxFilter.ALL) -> HwStampConfig:
    """Switch NIC hardware stamping on (root). Returns what the driver actually applied: it may
    upgrade the filter, and the caller must check it still covers what it needs."""
    cfg = _hwtstamp_ioctl(interface, SIOCSHWTSTAMP, _HwtstampConfig(0, int(tx_type), int(rx_filter)))
    return HwStampConfig(cfg.tx_type, cfg.rx_filter)
