"""Where the runner receives market data: the venue's host only when it is loopback, every local
address for a remote venue, a chosen address or multicast group with --md-bind (joined on
--md-interface); a socket that
cannot be made is a one-line RunnerError (a CLI error), and no journal is left behind."""
from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from audit.rxbuffer import MIN_RCVBUF
from cli.main import cli
from mm_core.mdsocket import market_data_socket, md_bind_address
from mm_core.runnertypes import RunnerError, RunnerSettings
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
        # bound to every local address, the group joined: the unicast answers to the re-requests
        # sent from this socket come back to it (tests/venue/test_multicast.py shows them)
        assert sock.getsockname() == ("0.0.0.0", settings.itch_port)
    finally:
        sock.close()


def test_a_group_that_cannot_be_joined_on_the_interface_says_so():
    settings = RunnerSettings(md_bind="239.255.77.1", md_interface="10.255.1.2", itch_port=free_udp_port())
    with pytest.raises(RunnerError, match=r"cannot join the multicast group 239\.255\.77\.1 on the "
                                          r"interface 10\.255\.1\.2: ENODEV .*--md-interface"):
        market_data_socket(settings)


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


def test_a_socket_asked_for_any_port_never_shares_one_another_socket_holds():
    """Port 0 (a session that starts its own venue opens its market-data socket so) gets a port of
    its own: the kernel hands a port already held by another SO_REUSEADDR socket to one that asks
    with SO_REUSEADDR too, and that other socket would then take the session's datagrams."""
    held, ours = [], []
    try:
        for _ in range(2_000):            # other sessions' (or processes') market-data sockets
            other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(other)
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("127.0.0.1", 0))
        taken = {s.getsockname()[1] for s in held}
        for _ in range(300):
            ours.append(market_data_socket(RunnerSettings(host="127.0.0.1", itch_port=0, md_rcvbuf=MIN_RCVBUF)))
        shared = [s.getsockname()[1] for s in ours if s.getsockname()[1] in taken]
        assert not shared
        assert len({s.getsockname()[1] for s in ours}) == len(ours)
    finally:
        for s in held + ours:
            s.close()
