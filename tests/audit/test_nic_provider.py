"""Newer ethtool (netlink, kernels >= 6.13) names the PHC as "Hardware timestamp provider index: N"
instead of "PTP Hardware Clock: N" (ethtool netlink/tsinfo.c tsinfo_show_hwprov): both forms are
read, and /sys/class/net/IF/device/ptp/ names the PHC when the output has neither line. The
sampler, `mmaudit clock nic` and `mmaudit run --phc` take it from there."""
import contextlib
import os

import pytest
from click.testing import CliRunner

from audit.errors import ParseError
from audit.nic import parse_ethtool_t, sysfs_phc_index
from audit.pmc import PtpSnapshot
from audit.sampler import PmcSampler
from cli.clock_cmd import command as clock_command
from cli.run_cmd import command as run_command
from mm_core.sessionconfig import ClockSpec
from mm_core.sessionsetup import _start_clock
from tests.audit.test_nic import HARDWARE

PROVIDER = HARDWARE.replace("enp1s0", "eth1").replace(
    "PTP Hardware Clock: 2\n", "Hardware timestamp provider index: 0\n"
    "Hardware timestamp provider qualifier: Precise (IEEE 1588 quality)\n")
NO_PHC_LINE = HARDWARE.replace("PTP Hardware Clock: 2\n", "")


def test_the_provider_index_names_the_phc():
    caps = parse_ethtool_t(PROVIDER)
    assert (caps.interface, caps.phc_index, caps.phc_device) == ("eth1", 0, "/dev/ptp0")
    assert caps.hardware_capable and caps.tx_modes == ("off", "on") and caps.rx_filters == ("none", "all")


def test_a_bad_provider_index_is_a_parse_error():
    with pytest.raises(ParseError, match="provider index"):
        parse_ethtool_t(PROVIDER.replace("index: 0", "index: zero"))


def test_sysfs_names_the_phc_when_ethtool_does_not(tmp_path):
    (tmp_path / "enp1s0" / "device" / "ptp" / "ptp3").mkdir(parents=True)
    (tmp_path / "enp1s0" / "device" / "ptp" / "ptp11").mkdir()
    assert sysfs_phc_index("enp1s0", str(tmp_path)) == 3
    assert parse_ethtool_t(NO_PHC_LINE, sysfs_root=str(tmp_path)).phc_index == 3
    with pytest.raises(ParseError, match="names no PHC"):
        parse_ethtool_t(NO_PHC_LINE.replace("enp1s0", "enp2s0"), sysfs_root=str(tmp_path))
    with pytest.raises(ParseError):
        parse_ethtool_t(NO_PHC_LINE)              # without sysfs: no guess


def test_real_sysfs_loopback_has_no_phc():
    assert sysfs_phc_index("lo") is None


@pytest.fixture
def new_ethtool(tmp_path, monkeypatch):
    fake = tmp_path / "ethtool"
    fake.write_text(f"#!/bin/sh\ncat <<'OUT'\n{PROVIDER}OUT\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_clock_nic_reads_the_provider_form(new_ethtool):
    result = CliRunner().invoke(clock_command, ["nic", "eth1"])
    assert "PTP hardware clock: /dev/ptp0" in result.output


def test_the_sampler_finds_the_phc_from_the_provider_form(new_ethtool):
    """Before: ParseError (no 'PTP Hardware Clock' line) for every hardware sample; now it goes
    for /dev/ptp0, which this machine lacks: the error names the device."""
    snap = PtpSnapshot(timestamping="HARDWARE", interface="eth1", ptp_timescale=True,
                       utc_offset=37, utc_offset_valid=True)
    out = PmcSampler(client=None)._system_offset(snap)
    assert "/dev/ptp0" in out["system_offset_error"] and "ParseError" not in out["system_offset_error"]


def test_run_takes_phc_only_with_a_named_ptp4l(tmp_path):
    device = tmp_path / "ptp9"
    device.write_text("")
    result = CliRunner().invoke(run_command, ["--phc", str(device), "--duration", "1s"])
    assert result.exit_code == 2 and "--ptp-uds" in result.output
    result = CliRunner().invoke(run_command, ["--phc", str(tmp_path / "none"), "--ptp-uds", "/x"])
    assert result.exit_code == 2 and "does not exist" in result.output
    with pytest.raises(Exception, match="named ptp4l"):
        ClockSpec("uds", phc_device=str(device))


def test_the_sessions_sampler_uses_the_phc_given(tmp_path):
    spec = ClockSpec("uds", str(tmp_path / "uds"), explicit=True, phc_device="/dev/ptp7")
    with contextlib.ExitStack() as stack:
        monitor, _, note = _start_clock(spec, stack)
        assert monitor.sampler.phc_device == "/dev/ptp7" and "/dev/ptp7" in note
