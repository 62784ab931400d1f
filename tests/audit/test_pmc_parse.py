"""pmc output parsing: real linuxptp 3.1.1 output, management errors, garbage and half answers."""
import pytest

from audit.errors import ParseError
from audit.pmc import (
    CORE_DATASETS, PORT_STATES, clock_identity_to_int, parse_pmc_output, snapshot_from_responses,
)

# Captured from `pmc -u -b 0 -s client.sock 'GET ...'` against ptp4l 3.1.1 (-S -2, free_running 1).
REAL = """\
sending: GET TIME_STATUS_NP
sending: GET CURRENT_DATA_SET
sending: GET PORT_DATA_SET
sending: GET PARENT_DATA_SET
sending: GET TIME_PROPERTIES_DATA_SET
sending: GET PORT_PROPERTIES_NP
\tcefca3.fffe.3f55e5-0 seq 0 RESPONSE MANAGEMENT TIME_STATUS_NP 
\t\tmaster_offset              -761
\t\tingress_time               1795276725255745228
\t\tcumulativeScaledRateOffset +0.000000000
\t\tscaledLastGmPhaseChange    0
\t\tgmTimeBaseIndicator        0
\t\tlastGmPhaseChange          0x0000'0000000000000000.0000
\t\tgmPresent                  true
\t\tgmIdentity                 c6a136.fffe.1e06ac
\tcefca3.fffe.3f55e5-0 seq 1 RESPONSE MANAGEMENT CURRENT_DATA_SET 
\t\tstepsRemoved     1
\t\toffsetFromMaster -1052.0
\t\tmeanPathDelay    2113.0
\tcefca3.fffe.3f55e5-1 seq 2 RESPONSE MANAGEMENT PORT_DATA_SET 
\t\tportIdentity            cefca3.fffe.3f55e5-1
\t\tportState               UNCALIBRATED
\t\tlogMinDelayReqInterval  -3
\t\tpeerMeanPathDelay       0
\t\tlogAnnounceInterval     -2
\t\tannounceReceiptTimeout  3
\t\tlogSyncInterval         -3
\t\tdelayMechanism          1
\t\tlogMinPdelayReqInterval 0
\t\tversionNumber           2
\tcefca3.fffe.3f55e5-0 seq 3 RESPONSE MANAGEMENT PARENT_DATA_SET 
\t\tparentPortIdentity                    c6a136.fffe.1e06ac-1
\t\tparentStats                           0
\t\tobservedParentOffsetScaledLogVariance 0xffff
\t\tobservedParentClockPhaseChangeRate    0x7fffffff
\t\tgrandmasterPriority1                  10
\t\tgm.ClockClass                         6
\t\tgm.ClockAccuracy                      0x21
\t\tgm.OffsetScaledLogVariance            0xffff
\t\tgrandmasterPriority2                  128
\t\tgrandmasterIdentity                   c6a136.fffe.1e06ac
\tcefca3.fffe.3f55e5-0 seq 4 RESPONSE MANAGEMENT TIME_PROPERTIES_DATA_SET 
\t\tcurrentUtcOffset      37
\t\tleap61                0
\t\tleap59                0
\t\tcurrentUtcOffsetValid 1
\t\tptpTimescale          0
\t\ttimeTraceable         1
\t\tfrequencyTraceable    1
\t\ttimeSource            0x20
\tcefca3.fffe.3f55e5-1 seq 5 RESPONSE MANAGEMENT PORT_PROPERTIES_NP 
\t\tportIdentity            cefca3.fffe.3f55e5-1
\t\tportState               UNCALIBRATED
\t\ttimestamping            SOFTWARE
\t\tinterface               h3b
"""


def test_real_output_becomes_a_complete_snapshot():
    snap = snapshot_from_responses(parse_pmc_output(REAL, CORE_DATASETS))
    assert snap.missing == () and snap.errors == ()
    assert snap.master_offset_ns == -761
    assert snap.ingress_time_ns == 1795276725255745228
    assert snap.gm_present is True and snap.gm_identity == "c6a136.fffe.1e06ac"
    assert snap.mean_path_delay_ns == 2113.0 and snap.steps_removed == 1
    assert snap.port_state == "UNCALIBRATED" and snap.log_sync_interval == -3
    assert (snap.gm_clock_class, snap.gm_clock_accuracy) == (6, 0x21)
    assert (snap.utc_offset, snap.utc_offset_valid, snap.ptp_timescale, snap.time_traceable) == (37, True, False, True)
    assert (snap.leap61, snap.leap59) == (False, False)
    assert (snap.timestamping, snap.interface) == ("SOFTWARE", "h3b")


def test_no_answer_at_all_is_an_empty_snapshot():
    snap = snapshot_from_responses(parse_pmc_output("sending: GET TIME_STATUS_NP\n", CORE_DATASETS))
    assert not snap.answered
    assert set(snap.missing) == set(CORE_DATASETS)


def test_zero_ingress_time_means_no_sync_yet():
    text = REAL.replace("1795276725255745228", "0")
    assert snapshot_from_responses(parse_pmc_output(text)).ingress_time_ns is None


def test_management_error_is_named_by_its_sequence_number():
    text = ("sending: GET TIME_STATUS_NP\nsending: GET CURRENT_DATA_SET\n"
            "\tcefca3.fffe.3f55e5-0 seq 1 RESPONSE MANAGEMENT_ERROR_STATUS \n")
    responses = parse_pmc_output(text, ("TIME_STATUS_NP", "CURRENT_DATA_SET"))
    assert [(r.dataset, r.error) for r in responses] == [("CURRENT_DATA_SET", "MANAGEMENT_ERROR_STATUS")]
    snap = snapshot_from_responses(responses)
    assert snap.errors == ("CURRENT_DATA_SET: MANAGEMENT_ERROR_STATUS",)


def test_optional_dataset_errors_do_not_spoil_the_snapshot():
    text = REAL + "\tcefca3.fffe.3f55e5-0 seq 6 RESPONSE MANAGEMENT_ERROR_STATUS \n"
    snap = snapshot_from_responses(parse_pmc_output(text, CORE_DATASETS + ("PORT_SERVICE_STATS_NP",)))
    assert snap.errors == ()


@pytest.mark.parametrize("garbage", [
    "Segmentation fault\n",
    "hello world\n\tmaster_offset 12\n",
    "\x00\x01\x02binary\n",
])
def test_garbage_raises_parse_error(garbage):
    with pytest.raises(ParseError):
        parse_pmc_output(garbage)


@pytest.mark.parametrize("old,new,field", [
    ("master_offset              -761", "master_offset              lots", "TIME_STATUS_NP.master_offset"),
    ("gmPresent                  true", "gmPresent                  maybe", "TIME_STATUS_NP.gmPresent"),
    ("gm.ClockClass                         6", "gm.ClockClass                         six", "PARENT_DATA_SET.gm.ClockClass"),
    ("gmIdentity                 c6a136.fffe.1e06ac", "gmIdentity                 nonsense", "gmIdentity"),
])
def test_unconvertible_field_is_reported_and_left_out(old, new, field):
    snap = snapshot_from_responses(parse_pmc_output(REAL.replace(old, new)))
    assert any(field in e for e in snap.errors)


def test_multi_port_clock_reports_the_port_that_follows_the_gm():
    port2 = ("\tcefca3.fffe.3f55e5-2 seq 2 RESPONSE MANAGEMENT PORT_DATA_SET \n"
             "\t\tportIdentity            cefca3.fffe.3f55e5-2\n"
             "\t\tportState               SLAVE\n"
             "\t\tlogSyncInterval         0\n")
    text = REAL.replace("\t\tportState               UNCALIBRATED\n", "\t\tportState               MASTER\n", 1)
    idx = text.index("\tcefca3.fffe.3f55e5-0 seq 3")
    snap = snapshot_from_responses(parse_pmc_output(text[:idx] + port2 + text[idx:]))
    assert snap.port_state == "SLAVE" and snap.log_sync_interval == 0


def test_clock_identity_conversion():
    assert clock_identity_to_int("c6a136.fffe.1e06ac") == 0xC6A136FFFE1E06AC
    with pytest.raises(ParseError):
        clock_identity_to_int("c6a136fffe1e06ac")
    assert PORT_STATES["SLAVE"] == 9 and PORT_STATES["UNCALIBRATED"] == 8


def test_port_service_stats_from_newer_linuxptp():
    text = REAL + ("\tcefca3.fffe.3f55e5-1 seq 6 RESPONSE MANAGEMENT PORT_SERVICE_STATS_NP \n"
                   "\t\tportIdentity              cefca3.fffe.3f55e5-1\n"
                   "\t\tannounce_timeout          3\n"
                   "\t\tsync_timeout              1\n"
                   "\t\tsync_mismatch             0\n"
                   "\t\tfollowup_mismatch         0\n")
    snap = snapshot_from_responses(parse_pmc_output(text))
    assert snap.service_stats == {"announce_timeout": 3, "sync_timeout": 1, "sync_mismatch": 0,
                                  "followup_mismatch": 0}
