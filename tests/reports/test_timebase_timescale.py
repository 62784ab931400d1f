"""PHC stamps become UTC by the rule of the sample in force (audit.phc.phc_offset): minus the UTC
offset on the PTP timescale, with that sample's leap61/leap59 applied exactly as
audit.phc.tai_to_utc_ns applies them, and as is on the ARB timescale (ptpTimescale 0), where the
PHC carries the grandmaster's time (the PTP lab's GM announces ARB with a valid 37 s offset)."""
import datetime as dt

import numpy as np
from hypothesis import given, settings, strategies as st

from audit.phc import tai_to_utc_ns
from journal.catalogue import PAYLOAD_DTYPES, ClockState, RecordType, TsSource
from reports.timebase import BASIS_NAMES, to_utc

S = 1_000_000_000
DT = PAYLOAD_DTYPES[RecordType.CLOCK_SAMPLE]
SAMPLE_DTYPE = [("seq", "<u8"), ("ts_ns", "<i8"), ("ts_source", "u1")] + [(n, DT[n]) for n in DT.names]


def samples(*rows: dict) -> np.ndarray:
    out = np.zeros(len(rows), SAMPLE_DTYPE)
    for i, row in enumerate(rows):
        out[i]["seq"] = 10 * (i + 1)
        out[i]["state"] = int(ClockState.LOCKED)
        for k, v in row.items():
            out[i][k] = v
    return out


def phc(seqs, stamps, s):
    return to_utc(np.array(seqs, np.uint64), np.array(stamps, np.int64),
                  np.full(len(seqs), int(TsSource.HW_PHC)), s)


PTP = dict(ptp_timescale=1, utc_offset=37, utc_offset_valid=1)
ARB = dict(ptp_timescale=0, utc_offset=37, utc_offset_valid=1)


def test_arb_timescale_takes_the_phc_as_is():
    u = phc([11], [1_795_400_000 * S], samples(ARB))
    assert u.valid[0] and int(u.utc_ns[0]) == 1_795_400_000 * S
    assert BASIS_NAMES[u.basis[0]] == "PHC_ARB_AS_IS" and u.utc_offset_s[0] == 0


def test_the_sample_in_force_decides_and_an_unknown_sample_changes_nothing():
    unknown = dict(state=int(ClockState.UNKNOWN))          # ptp4l not read: its flags are defaults
    s = samples(PTP, ARB, unknown, dict(ptp_timescale=1, utc_offset_valid=0), PTP)
    t = 1_795_400_000 * S
    u = phc([5, 11, 21, 31, 41, 51], [t] * 6, s)
    assert not u.valid[0]                                   # before any sample: no offset
    assert [int(x) - t for x in u.utc_ns[1:]] == [-37 * S, 0, 0, 0, -37 * S]
    assert [BASIS_NAMES[b] for b in u.basis[1:]] == ["PHC_TAI_MINUS_UTC_OFFSET"] + ["PHC_ARB_AS_IS"] * 3 \
        + ["PHC_TAI_MINUS_UTC_OFFSET"]


def test_an_inserted_leap_second_is_applied_as_tai_to_utc_ns_does():
    """The review's case: leap61 announced by the last sample before 2027-01-01; a NIC stamp
    0.8 s after the leap."""
    midnight = int(dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * S
    s = samples(dict(PTP, leap61=1))
    tai = midnight + 1_800_000_000 + 37 * S
    u = phc([11], [tai], s)
    assert int(u.utc_ns[0]) == tai_to_utc_ns(tai, 37, True, True, False) == midnight + 800_000_000


MONTH_ENDS = [int(dt.datetime(y, m, 1, tzinfo=dt.timezone.utc).timestamp()) * S
              for y in (2026, 2027) for m in range(1, 13)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MONTH_ENDS), st.integers(-3 * 86_400 * S, 3 * 86_400 * S),
       st.sampled_from([(1, 0), (0, 1), (0, 0)]), st.integers(30, 40))
def test_leap_flags_follow_the_same_rule_as_audit_phc(midnight, delta, flags, offset):
    leap61, leap59 = flags
    tai = midnight + delta + offset * S
    u = phc([11], [tai], samples(dict(ptp_timescale=1, utc_offset=offset, utc_offset_valid=1,
                                      leap61=leap61, leap59=leap59)))
    assert int(u.utc_ns[0]) == tai_to_utc_ns(tai, offset, True, bool(leap61), bool(leap59))
