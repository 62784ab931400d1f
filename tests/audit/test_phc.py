"""PHC access: the dynamic clock id rule, TAI->UTC with leap flags, phc_ctl parsing, real errors."""
import glob
import os
import time

import pytest

from audit.errors import ParseError, PhcError
from audit.phc import PhcClock, clockid_to_fd, fd_to_clockid, parse_phc_ctl, phc_ctl, tai_to_utc_ns
from tests.audit.standin import write_session_checking_tool

S = 1_000_000_000
DAY = 86_400 * S
MIDNIGHT = 1_483_228_800 * S     # 2017-01-01T00:00:00Z, the last real leap second (offset 36 -> 37)


@pytest.mark.parametrize("fd,clockid", [(3, -29), (5, -45), (0, -5), (1023, -8189)])
def test_fd_to_clockid_matches_linuxptp_rule(fd, clockid):
    # ((~fd) << 3) | 3 computed here by hand: ~3 = -4, -4 << 3 = -32, | 3 = -29
    assert fd_to_clockid(fd) == clockid
    assert clockid_to_fd(clockid) == fd


def test_static_clock_ids_are_not_fd_clocks():
    with pytest.raises(PhcError):
        clockid_to_fd(time.CLOCK_REALTIME)
    with pytest.raises(PhcError):
        fd_to_clockid(-1)


def test_tai_to_utc_without_leap():
    tai = 1_700_000_037 * S + 123
    assert tai_to_utc_ns(tai, 37, True) == 1_700_000_000 * S + 123


def test_tai_to_utc_refuses_an_invalid_offset():
    with pytest.raises(PhcError, match="not marked valid"):
        tai_to_utc_ns(1_700_000_037 * S, 37, False)
    with pytest.raises(PhcError):
        tai_to_utc_ns(1_700_000_037 * S, 37, True, leap61=True, leap59=True)
    with pytest.raises(PhcError):
        tai_to_utc_ns(1_700_000_037 * S, -5, True)


def test_tai_to_utc_across_an_inserted_leap_second():
    # Before the leap the GM announces offset 36 with leap61 set.
    before = MIDNIGHT - S // 2 + 36 * S                     # TAI of 23:59:59.5
    assert tai_to_utc_ns(before, 36, True, leap61=True) == MIDNIGHT - S // 2
    during = MIDNIGHT + S // 2 + 36 * S                     # TAI of 23:59:60.5
    assert tai_to_utc_ns(during, 36, True, leap61=True) == MIDNIGHT - S // 2   # POSIX repeats :59
    after = MIDNIGHT + 3 * S + 36 * S                        # 00:00:02 UTC (new offset 37)
    assert tai_to_utc_ns(after, 36, True, leap61=True) == MIDNIGHT + 2 * S
    assert tai_to_utc_ns(after, 37, True) == MIDNIGHT + 2 * S   # same instant once updated


def test_tai_to_utc_across_a_deleted_leap_second():
    before = MIDNIGHT - 2 * S + 37 * S + 1                   # 23:59:58.000000001
    assert tai_to_utc_ns(before, 37, True, leap59=True) == MIDNIGHT - 2 * S + 1
    skipped = MIDNIGHT - S + 37 * S                          # 23:59:59 does not exist -> 00:00:00
    assert tai_to_utc_ns(skipped, 37, True, leap59=True) == MIDNIGHT


def test_leap_flags_apply_at_the_end_of_the_current_day_only():
    noon = MIDNIGHT + DAY // 2 + 37 * S                     # flags set early in the day of the leap
    assert tai_to_utc_ns(noon, 37, True, leap61=True) == MIDNIGHT + DAY // 2
    assert tai_to_utc_ns(noon, 37, True, leap59=True) == MIDNIGHT + DAY // 2


@pytest.mark.parametrize("text,expected", [
    ("phc_ctl[1.2]: clock time is 1700000037.000000123 or Tue Nov 14 22:14:20 2023\n",
     {"time_ns": 1_700_000_037_000_000_123}),
    ("phc_ctl[9.9]: offset from CLOCK_REALTIME is 37000000412ns\n", {"offset_ns": 37_000_000_412}),
    ("phc_ctl[9.9]: offset from CLOCK_REALTIME is -15ns\n", {"offset_ns": -15}),
])
def test_parse_phc_ctl(text, expected):
    assert parse_phc_ctl(text) == expected


def test_parse_phc_ctl_garbage():
    with pytest.raises(ParseError):
        parse_phc_ctl("phc_ctl[1.0]: interface lo does not have a PHC\n")


def test_phc_ctl_on_an_interface_without_phc_is_a_typed_error():
    with pytest.raises(PhcError, match="does not have a PHC"):
        phc_ctl("lo", "cmp")


def test_phc_ctl_runs_in_a_session_of_its_own_holding_the_job_signals(tmp_path):
    # a hang-up or Ctrl-C sent to the job while it starts must not kill it (audit.childproc)
    fake = write_session_checking_tool(tmp_path / "phc_ctl", "phc_ctl[1.0]: offset from CLOCK_REALTIME is -42ns\n")
    assert phc_ctl("/dev/ptp0", "cmp", binary=fake) == {"offset_ns": -42}


def test_phc_ctl_refuses_commands_that_adjust_the_clock():
    for cmd in ("set", "adj", "freq"):
        with pytest.raises(PhcError, match="read-only"):
            phc_ctl("/dev/ptp0", cmd)


def test_opening_a_missing_phc_is_a_typed_error(tmp_path):
    with pytest.raises(PhcError, match="cannot open"):
        PhcClock(str(tmp_path / "ptp99"))


def test_a_regular_file_is_not_a_clock(tmp_path):
    path = tmp_path / "not-a-clock"
    path.write_bytes(b"x")
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(PhcError, match="clock_gettime failed"):
        PhcClock(str(path))
    assert len(os.listdir("/proc/self/fd")) == fds_before     # the descriptor was closed


@pytest.mark.skipif(not glob.glob("/dev/ptp[0-9]*"), reason="this machine has no PTP hardware clock (/dev/ptp*)")
def test_read_a_real_phc_and_compare_with_realtime():
    device = sorted(glob.glob("/dev/ptp[0-9]*"))[0]
    with PhcClock(device) as phc:
        a = phc.gettime_ns()
        b = phc.gettime_ns()
        assert b >= a > 0
        cmp = phc.compare_realtime()
        assert 0 <= cmp.window_ns < S
        assert abs(cmp.offset_ns) < 10**6 * S      # same century, whatever the timescale


LEAP_DAY = MIDNIGHT - DAY          # 2016-12-31, whose last minute had 61 seconds


def test_a_flag_raised_for_the_whole_leap_day_is_for_its_end():
    """A GM raising leap61 from the start of the leap day: at 00:00:05 that day nothing has
    happened yet (it read 1 s early: the flag was taken for the midnight just passed)."""
    for t in (5 * S, 9 * S, 3_600 * S, 7 * 3_600 * S):
        assert tai_to_utc_ns(LEAP_DAY + t + 36 * S, 36, True, leap61=True) == LEAP_DAY + t
        assert tai_to_utc_ns(LEAP_DAY + t + 37 * S, 37, True, leap59=True) == LEAP_DAY + t


def test_a_flag_cleared_late_belongs_to_the_midnight_just_passed():
    """A GM still announcing leap61 and the old offset after the leap (cleared minutes late):
    the second was inserted, so UTC is TAI - 37 (it read 1 s late from 10 s after midnight);
    linuxptp takes a flag seen within 6 h after a midnight for that midnight."""
    for t in (2 * S, 30 * S, 600 * S, 5 * 3_600 * S):
        assert tai_to_utc_ns(MIDNIGHT + t + 37 * S, 36, True, leap61=True) == MIDNIGHT + t
        assert tai_to_utc_ns(MIDNIGHT + t + 36 * S, 37, True, leap59=True) == MIDNIGHT + t


@pytest.mark.parametrize("midnight", [MIDNIGHT, MIDNIGHT + 14 * DAY, 1_909_094_400 * S])
def test_one_stamps_leap_rule_is_the_reports_row_by_row(midnight):
    """leap_utc_ns (the runner's and replay's engine time) equals leap_corrected_ns (the reports')
    on every stamp around a month's end, a mid-month midnight, and the 6 h split after each."""
    import numpy as np
    from audit.phc import LEAP59, LEAP61, leap_corrected_ns, leap_utc_ns
    around = [midnight + d for d in (-DAY, -6 * 3_600 * S, -S - 1, -S, -1, 0, 1, S,
                                     6 * 3_600 * S - 1, 6 * 3_600 * S, DAY - 1)]
    for leap, flags in ((LEAP61, (True, False)), (LEAP59, (False, True)), (0, (False, False))):
        rows = leap_corrected_ns(np.array(around), np.full(len(around), flags[0]), np.full(len(around), flags[1]))
        assert [leap_utc_ns(t, leap) for t in around] == [int(t) for t in rows]


def test_a_phc_device_must_be_a_ptp_clocks_character_device(tmp_path):
    """A path that merely exists is no PHC: each is refused saying what it is instead."""
    from audit.phc import check_phc_device
    regular = tmp_path / "ptp0"
    regular.write_text("")
    link = tmp_path / "ptp1"
    link.symlink_to("/dev/null")
    for path, said in ((regular, "is a regular file"), (tmp_path, "is a directory"),
                       ("/dev/null", "is character device 1:3 of the mem class"),
                       (link, "is character device 1:3 of the mem class"),
                       (tmp_path / "missing", "No such file")):
        with pytest.raises(PhcError, match=said):
            check_phc_device(str(path))


def test_a_phc_device_is_judged_by_its_sysfs_class_or_else_by_clock_getres(tmp_path):
    """The kernel's sysfs entry for the device number decides (here a made-up sysfs whose 1:3
    is in the ptp class: accepted); with no entry, the dynamic clock must answer clock_getres."""
    from audit.phc import check_phc_device
    sysfs = tmp_path / "sys"
    (sysfs / "class" / "ptp").mkdir(parents=True)
    (sysfs / "dev" / "char" / "1:3").mkdir(parents=True)
    (sysfs / "dev" / "char" / "1:3" / "subsystem").symlink_to(sysfs / "class" / "ptp")
    check_phc_device("/dev/null", sysfs=str(sysfs))
    with pytest.raises(PhcError, match=r"/dev/full \(character device 1:7\) is not a PTP hardware clock: "
                                       r"clock_getres: Invalid argument"):
        check_phc_device("/dev/full", sysfs=str(sysfs))
