"""Decoders for SO_TIMESTAMPING control messages, fed bytes laid out as the kernel's structs."""
import struct

import pytest

from audit.errors import TimestampingError
from audit.sotimestamping import (
    ENOMSG, SO_EE_ORIGIN_TIMESTAMPING, TstampType, pack_extended_err, pack_scm_timestamping,
    parse_extended_err, parse_scm_timestamping,
)

# struct scm_timestamping64 { struct __kernel_timespec ts[3]; } -- built here independently.
CASES = [
    # (ts0 sec, nsec), (ts1), (ts2) -> (software_ns, legacy_ns, hardware_ns)
    (((1_700_000_000, 123_456_789), (0, 0), (0, 0)), (1_700_000_000_123_456_789, 0, 0)),
    (((0, 0), (0, 0), (1_700_000_037, 5)), (0, 0, 1_700_000_037_000_000_005)),
    (((1, 999_999_999), (2, 0), (3, 1)), (1_999_999_999, 2_000_000_000, 3_000_000_001)),
]


@pytest.mark.parametrize("specs,expected", CASES)
def test_scm_timestamping64_layout(specs, expected):
    raw = struct.pack("<6q", *(v for ts in specs for v in ts))
    got = parse_scm_timestamping(raw)
    assert (got.software_ns, got.legacy_ns, got.hardware_ns) == expected


@pytest.mark.parametrize("specs,expected", CASES)
def test_scm_timestamping_32bit_time_t_layout(specs, expected):
    raw = struct.pack("<6i", *(v for ts in specs for v in ts))
    got = parse_scm_timestamping(raw)
    assert (got.software_ns, got.legacy_ns, got.hardware_ns) == expected


def test_pack_round_trips_through_parse():
    raw = pack_scm_timestamping(software_ns=1_234_567_890_123, hardware_ns=9_876_543_210_987)
    assert len(raw) == 48
    got = parse_scm_timestamping(raw)
    assert (got.software_ns, got.hardware_ns) == (1_234_567_890_123, 9_876_543_210_987)


@pytest.mark.parametrize("raw", [b"", bytes(47), bytes(49), bytes(16)])
def test_wrong_length_is_a_typed_error(raw):
    with pytest.raises(TimestampingError, match="bytes"):
        parse_scm_timestamping(raw)


def test_nanoseconds_out_of_range_is_rejected():
    with pytest.raises(TimestampingError, match="out of range"):
        parse_scm_timestamping(struct.pack("<6q", 1, 1_000_000_000, 0, 0, 0, 0))


def test_extended_err_layout():
    # u32 ee_errno, u8 origin, u8 type, u8 code, u8 pad, u32 info, u32 data, then sockaddr
    raw = struct.pack("<IBBBBII", ENOMSG, SO_EE_ORIGIN_TIMESTAMPING, 0, 0, 0, TstampType.SND, 4_000_000_000)
    err = parse_extended_err(raw + bytes(16))
    assert err.is_timestamp and err.data == 4_000_000_000 and err.info == TstampType.SND


def test_extended_err_that_is_not_a_timestamp():
    err = parse_extended_err(pack_extended_err(7, errno=111, origin=2))   # ECONNREFUSED, ICMP origin
    assert not err.is_timestamp and err.data == 7


def test_short_extended_err_is_rejected():
    with pytest.raises(TimestampingError):
        parse_extended_err(bytes(15))
