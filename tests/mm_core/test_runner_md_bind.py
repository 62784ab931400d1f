"""Where the runner receives market data: the venue's host only when it is loopback, every local
address for a remote venue, a chosen address or multicast group with --md-bind; a socket that
cannot be made is a one-line RunnerError (a CLI error), and no journal is left behind."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from mm_core.runner import RunnerError, RunnerSettings, market_data_socket, md_bind_address
from tests.mm_core.test_runner import free_udp_port


def test_a_remote_venue_is_received_on_every_local_address_not_its_own():
    remote = RunnerSettings(host="10.1.2.3", itch_port=free_udp_port())
    assert md_bind_address(remote) == "0.0.0.0"
    sock = market_data_socket(remote)          # used to fail: EADDRNOTAVAIL binding 10.1.2.3
    try:
        assert sock.getsockname() == ("0.0.0.0", remote.itch_port)
    finally:
        sock.close()
    assert md_bind_address(RunnerSettings(host="127.0.0.1")) == "127.0.0.1"
    assert md_bind_address(RunnerSettings(host="10.1.2.3", md_bind="127.0.0.1")) == "127.0.0.1"


def test_an_address_not_of_this_host_is_a_clear_error():
    with pytest.raises(RunnerError, match=r"cannot receive market data on 10\.255\.1\.2:\d+: EADDRNOTAVAIL"):
        market_data_socket(RunnerSettings(host="10.1.2.3", md_bind="10.255.1.2", itch_port=free_udp_port()))


def test_a_multicast_group_is_joined():
    settings = RunnerSettings(host="10.1.2.3", md_bind="239.255.77.1", md_interface="127.0.0.1",
                              itch_port=free_udp_port())
    try:
        sock = market_data_socket(settings)
    except RunnerError as exc:
        if "ENODEV" in str(exc):
            pytest.skip(f"this host has no multicast-capable interface: {exc}")
        raise
    try:
        assert sock.getsockname() == ("239.255.77.1", settings.itch_port)
    finally:
        sock.close()


def test_the_cli_says_so_in_one_line_and_writes_no_record(tmp_path):
    journal = tmp_path / "journal"
    result = CliRunner().invoke(cli, ["run", "--venue", "127.0.0.1:1", "--rerequest-port", "2",
                                      "--md-bind", "10.255.1.2", "--journal", str(journal),
                                      "--no-ptp-lab", "--control", "none", "--duration", "1s"])
    assert result.exit_code == 1 and "Error: cannot receive market data on 10.255.1.2" in result.output
    assert "Traceback" not in result.output
    assert not journal.exists()         # what the journal's open made is gone again
    bad = CliRunner().invoke(cli, ["run", "--md-bind", "nowhere", "--journal", str(tmp_path / "j2")])
    assert bad.exit_code == 1 and "--md-bind 'nowhere': expected an IPv4 address" in bad.output
