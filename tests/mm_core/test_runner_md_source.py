"""The market-data port takes datagrams from anyone: the runner feeds the engine only those from
the venue's addresses (its host, or the md_sources named), counts the others and journals the
first from each sender in an alert, with its bytes; a source name that does not resolve is a
one-line RunnerError."""
from __future__ import annotations

import json
import socket
import time

import pytest

from audit.capture import TimestampedUdpSocket
from journal import Journal, Reader
from journal.catalogue import RecordType
from mm_core.protocol import moldudp64
from mm_core.mdsocket import market_data_socket, md_sources
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerSettings
from tests.mm_core.test_runner import LockedClock, free_udp_port
from tests.mm_core.wire import make_engine


def send_from(address: str, port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        s.sendto(data, ("127.0.0.1", port))


def test_market_data_from_another_address_is_refused_counted_and_journaled(tmp_path):
    settings = RunnerSettings(itch_port=free_udp_port())
    engine = make_engine()
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        runner = Runner(engine, journal, settings, LockedClock())
        runner._md_from = md_sources(settings)          # as connect() sets them up
        runner._md = TimestampedUdpSocket(market_data_socket(settings), False)
        try:
            stray = moldudp64.encode(moldudp64.Heartbeat("SESSION00X", 5))
            for _ in range(3):
                send_from("127.0.0.2", settings.itch_port, stray)
            send_from("127.0.0.1", settings.itch_port, moldudp64.encode(moldudp64.Heartbeat("SESSION001", 1)))
            deadline = time.monotonic() + 5
            while runner.report.inputs + runner.report.md_foreign < 4 and time.monotonic() < deadline:
                runner._on_md()
        finally:
            runner._md.close()
    assert runner.report.md_foreign == 3 and runner.report.inputs == 1
    # the venue's packet reached the engine; the stray one never did (it would have been followed)
    assert engine.tracker.session == "SESSION001" and engine.counts["md_packets"] == 1
    with Reader(path) as reader:
        records = list(reader.records())
    assert [r.payload for r in records if r.rtype == RecordType.MD_PACKET] == [
        moldudp64.encode(moldudp64.Heartbeat("SESSION001", 1))]
    alerts = [json.loads(r.payload) for r in records if r.rtype == RecordType.METRICS]
    refused = [a for a in alerts if a.get("alert") == "md-foreign-source"]
    assert len(refused) == 1 and "127.0.0.2" in refused[0]["detail"]
    assert stray.hex() in json.dumps(refused[0])


def test_the_sources_are_the_venue_host_or_the_ones_named():
    assert md_sources(RunnerSettings(host="localhost")) == {"127.0.0.1"}
    assert md_sources(RunnerSettings(host="10.1.2.3", md_sources=("10.9.9.9", "10.9.9.8"))) == \
        {"10.9.9.9", "10.9.9.8"}
    with pytest.raises(RunnerError, match="cannot resolve the market data's source no-such-host.invalid"):
        md_sources(RunnerSettings(host="no-such-host.invalid"))


def test_the_cli_names_the_sources_and_refuses_a_bad_one(tmp_path):
    from click.testing import CliRunner

    from cli.main import cli
    from mm_core.sessionconfig import VenueSpec
    spec = VenueSpec.parse("10.1.2.3:4000", None, 4001, "", ("10.9.9.9", "10.9.9.8"))
    assert spec.md_sources == ("10.9.9.9", "10.9.9.8")       # what Session hands RunnerSettings
    assert VenueSpec.parse("embedded", md_sources=("127.0.0.1",)).md_sources == ("127.0.0.1",)
    bad = CliRunner().invoke(cli, ["run", "--md-source", "feed.example", "--journal", str(tmp_path / "j")])
    assert bad.exit_code == 1 and "--md-source 'feed.example': expected an IPv4 address" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "j").exists()
