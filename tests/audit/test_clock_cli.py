"""`mmaudit clock`: every command has help; nic on a real interface; check fails closed."""
import json

import pytest

from click.testing import CliRunner

from cli.clock_cmd import command


def test_group_is_named_clock_and_every_command_has_help():
    assert command.name == "clock" and command.help
    assert set(command.commands) == {"check", "watch", "nic"}
    runner = CliRunner()
    for name, cmd in command.commands.items():
        assert cmd.help and "Example:" in cmd.help, name
        result = runner.invoke(command, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_nic_on_loopback_reports_software_only_and_hardware_off():
    result = CliRunner().invoke(command, ["nic", "lo"])
    assert result.exit_code == 0, result.output
    assert "software-receive" in result.output and "PTP hardware clock: none" in result.output
    assert "hardware timestamping capable: no" in result.output
    assert "hardware timestamping: off" in result.output


def test_nic_on_missing_interface_is_a_clean_error():
    result = CliRunner().invoke(command, ["nic", "nosuchif0"])
    assert result.exit_code == 1 and "Error:" in result.output


def test_check_without_ptp4l_is_unknown_in_json(tmp_path):
    result = CliRunner().invoke(command, ["check", "--uds", str(tmp_path / "none"), "--samples", "1", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["state"] == "UNKNOWN" and doc["compliant"] is False
    assert doc["reasons"][0]["code"] == "state" and any(r["code"] == "no_data" for r in doc["reasons"])


def test_check_with_pmc_missing_from_path_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(command, ["check", "--samples", "1"])
    assert result.exit_code == 1 and "UNKNOWN" in result.output and "not installed" in result.output


@pytest.mark.parametrize("script,extra_args,expected", [
    ("echo 'this is not pmc output'", [], "unexpected pmc output"),          # garbage
    ("exec sleep 30", ["--pmc-timeout", "0.3"], "did not finish"),            # hangs
])
def test_check_with_a_misbehaving_pmc_is_unknown(tmp_path, monkeypatch, script, extra_args, expected):
    fake = tmp_path / "pmc"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    result = CliRunner().invoke(command, ["check", "--samples", "1", *extra_args])
    assert result.exit_code == 1 and "UNKNOWN" in result.output and expected in result.output


def test_watch_is_bounded_by_count(tmp_path):
    result = CliRunner().invoke(command, ["watch", "--uds", str(tmp_path / "none"), "--count", "2",
                                          "--interval", "0"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("UNKNOWN") and "eu-hft=FAIL" in line for line in lines)


def test_watch_prometheus_output(tmp_path):
    result = CliRunner().invoke(command, ["watch", "--uds", str(tmp_path / "none"), "--count", "1",
                                          "--prometheus"])
    assert result.exit_code == 0
    assert f'mmaudit_clock_state{{uds="{tmp_path / "none"}"}} 0' in result.output


def test_bad_profile_is_a_usage_error():
    result = CliRunner().invoke(command, ["check", "--profile", "eu-fast"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("option", ["--ptp4l-log", "--phc2sys-log"])
@pytest.mark.parametrize("sub", ["check", "watch"])
def test_a_log_to_follow_that_does_not_exist_is_a_usage_error(tmp_path, option, sub):
    """A mistyped log path would silently follow nothing (no jump or unlock ever seen): refused."""
    bound = ["--samples", "1", "--interval", "0"] if sub == "check" else ["--count", "1", "--interval", "0"]
    result = CliRunner().invoke(command, [sub, "--uds", str(tmp_path / "none"), *bound, option,
                                          str(tmp_path / "no-such.log")])
    assert result.exit_code == 2 and "does not exist" in result.output
