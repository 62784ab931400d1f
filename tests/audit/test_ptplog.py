"""ptp4l / phc2sys log lines as linuxptp prints them (stdout -m and syslog), and the file follower."""
import pytest

from audit.health import HealthConfig, HealthTracker, Observation
from audit.ptplog import Fault, GmSelected, LogFollower, PortTransition, ServoLine, SummaryLine, parse_line
from journal.catalogue import ClockState
from tests.audit.test_health import GOOD

TABLE = [
    ("ptp4l[5374.018]: master offset         -5 s2 freq  -2961 path delay       741",
     ServoLine("ptp4l", "master", -5, 2, -2961, 741, 5374.018)),
    ("Nov 21 10:00:00 host ptp4l[812]: [5374.018] master offset  1234567 s0 freq +0 path delay 741",
     ServoLine("ptp4l", "master", 1234567, 0, 0, 741, 5374.018)),
    ("phc2sys[5374.168]: CLOCK_REALTIME phc offset        -1 s2 freq      +2 delay    475",
     ServoLine("phc2sys", "CLOCK_REALTIME phc", -1, 2, 2, 475, 5374.168)),
    ("phc2sys[99.1]: eth0 sys offset    -220 s3 freq  -14 delay   812",
     ServoLine("phc2sys", "eth0 sys", -220, 3, -14, 812, 99.1)),
    ("ptp4l[214.208]: rms  906 max 1618 freq   +145 +/- 800 delay  1811 +/- 258",
     SummaryLine("ptp4l", 906, 1618, 145, 800, 1811, 258, 214.208)),
    ("ptp4l[214.208]: rms   12 max   30 freq   -5 +/-   3",
     SummaryLine("ptp4l", 12, 30, -5, 3, None, None, 214.208)),
    ("phc2sys[300.0]: CLOCK_REALTIME phc rms    8 max   19 freq  +10 +/-   6 delay   480 +/-   3",
     SummaryLine("phc2sys", 8, 19, 10, 6, 480, 3, 300.0)),
    ("ptp4l[198.068]: port 1: LISTENING to UNCALIBRATED on RS_SLAVE",
     PortTransition(1, "LISTENING", "UNCALIBRATED", "RS_SLAVE", 198.068)),
    ("ptp4l[10.0]: port 1 (eth0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
     PortTransition(1, "UNCALIBRATED", "SLAVE", "MASTER_CLOCK_SELECTED", 10.0)),
    ("ptp4l[198.068]: selected best master clock c6a136.fffe.1e06ac",
     GmSelected("c6a136.fffe.1e06ac", False, 198.068)),
    ("ptp4l[197.328]: selected local clock cefca3.fffe.3f55e5 as best master",
     GmSelected("cefca3.fffe.3f55e5", True, 197.328)),
    ("ptp4l[50.5]: timed out while polling for tx timestamp",
     Fault("timed out while polling for tx timestamp", 50.5)),
    ("ptp4l[50.6]: port 1: SLAVE to FAULTY on FAULT_DETECTED",
     PortTransition(1, "SLAVE", "FAULTY", "FAULT_DETECTED", 50.6)),
    # linuxptp's message_tag option: "%s[%lld.%03ld]: %s%s%s" (tag, space, message)
    ("ptp4l[5374.018]: [ptp4l.0.config] master offset 900000 s2 freq +1234 path delay 2100",
     ServoLine("ptp4l", "master", 900000, 2, 1234, 2100, 5374.018)),
    ("ptp4l[1.5]: [my clock] master offset -5 s2 freq -2961 path delay 741",
     ServoLine("ptp4l", "master", -5, 2, -2961, 741, 1.5)),
    ("phc2sys[5374.168]: [phc2sys.0] CLOCK_REALTIME phc offset -1 s2 freq +2 delay 475",
     ServoLine("phc2sys", "CLOCK_REALTIME phc", -1, 2, 2, 475, 5374.168)),
    ("ptp4l[84540.402]: [ptp4l.0.config] port 1: LISTENING to UNCALIBRATED on RS_SLAVE",
     PortTransition(1, "LISTENING", "UNCALIBRATED", "RS_SLAVE", 84540.402)),
    ("Nov 21 10:00:00 host ptp4l[812]: [5374.018] [ptp4l.0.config] selected best master clock c6a136.fffe.1e06ac",
     GmSelected("c6a136.fffe.1e06ac", False, 5374.018)),
    # a tagged ptp4l summary is ptp4l's (the tag is no phc2sys device), with or without the prefix
    ("ptp4l[214.208]: [ptp4l.0.config] rms 906 max 1618 freq +145 +/- 800 delay 1811 +/- 258",
     SummaryLine("ptp4l", 906, 1618, 145, 800, 1811, 258, 214.208)),
    ("[214.208] [ptp4l.0.config] rms 12 max 30 freq -5 +/- 3",
     SummaryLine("ptp4l", 12, 30, -5, 3, None, None, 214.208)),
    # phc2sys -u summaries name one clock; a PPS source gives servo lines without a delay
    ("phc2sys[300.0]: CLOCK_REALTIME rms 8 max 19 freq +10 +/- 6 delay 480 +/- 3",
     SummaryLine("phc2sys", 8, 19, 10, 6, 480, 3, 300.0)),
    ("phc2sys[300.5]: [phc2sys.0] CLOCK_REALTIME rms 8 max 19 freq +10 +/- 6",
     SummaryLine("phc2sys", 8, 19, 10, 6, None, None, 300.5)),
    ("phc2sys[301.0]: CLOCK_REALTIME pps offset 12 s2 freq -3",
     ServoLine("phc2sys", "CLOCK_REALTIME pps", 12, 2, -3, None, 301.0)),
    ("ptp4l[1.0]: foreign master not using PTP timescale", None),
    ("", None),
    ("master offset lots s2 freq x path delay y", None),
]


@pytest.mark.parametrize("line,expected", TABLE)
def test_parse_line(line, expected):
    assert parse_line(line) == expected


def test_follower_reads_incrementally_and_waits_for_whole_lines(tmp_path):
    log = tmp_path / "phc2sys.log"
    follower = LogFollower(str(log))
    assert follower.poll() == []                     # not there yet: nothing, no error
    log.write_text("phc2sys[1.0]: CLOCK_REALTIME phc offset   -10 s2 freq +1 delay 400\n"
                   "phc2sys[2.0]: CLOCK_REALTIME phc offset   -12 s2 fr")
    events = follower.poll()
    assert [e.offset_ns for e in events] == [-10]
    with open(log, "a") as fh:
        fh.write("eq +1 delay 400\nptp4l[2.5]: timed out while polling for tx timestamp\n")
    events = follower.poll()
    assert events[0].offset_ns == -12 and isinstance(events[1], Fault)
    assert follower.latest_servo("phc2sys").offset_ns == -12 and follower.faults == 1
    log.write_text("phc2sys[9.0]: CLOCK_REALTIME phc offset  7 s0 freq +1 delay 400\n")   # rotated
    follower.poll()
    assert follower.latest_servo("phc2sys").servo_state == 0


def test_phc2sys_offset_widens_the_bound_and_unlocked_phc2sys_blocks_lock():
    base = Observation(GOOD, 0, 0, 10)
    plain = HealthTracker(HealthConfig(asymmetry_budget_ns=0)).update(base)
    hop = HealthTracker(HealthConfig(asymmetry_budget_ns=0)).update(
        Observation(GOOD, 0, 0, 10, None, phc2sys_offset_ns=-300, phc2sys_locked=True))
    assert hop.error_bound_ns == plain.error_bound_ns + 300
    unlocked = HealthTracker().update(Observation(GOOD, 0, 0, 10, None, 5, False))
    assert unlocked.state == ClockState.FREERUN
    assert "phc2sys" in {r.code for r in unlocked.verdicts["eu-hft"].reasons}
