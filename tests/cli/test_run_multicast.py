"""`mmaudit run` on a venue whose config names a multicast group (itch_group): the session's
market-data socket joins it on the venue's itch_interface by itself and takes the venue's packets,
which come from that interface's address, as the venue's. End to end inside a network namespace
the test makes (a veth end's address, so the source is not the venue's host); an --md-bind
elsewhere would receive nothing and is refused before anything is made."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.run_cmd import command as run
from journal import Reader
from journal.catalogue import RecordType
from mm_core.sessionconfig import VenueSpec, lab_available
from mm_core.sessionsetup import joined_group
from mm_core.venue.config import load_config
from tests.venue.mcast_netns import GROUP, VETH_ADDRESS, multicast_namespace, python_in

_RUN = "from cli.run_cmd import command; command()"
LAB = lab_available()           # the clock the session trades on


def venue_config(tmp_path, interface: str) -> str:
    path = tmp_path / "venue.toml"
    path.write_text(f'[venue]\nitch_group = "{GROUP}"\nitch_interface = "{interface}"\n\n'
                    '[[users]]\nusername = "MM01"\npassword = "mmaudit"\nfirm = "MMCO"\n\n'
                    '[[symbols]]\nname = "ACME"\nid = 1\nreference_price = 1000000\n'
                    'half_penny = false\nvolatility = 0.60\n')
    return str(path)


def test_a_venue_started_here_is_received_on_its_group_and_an_md_bind_elsewhere_refused(tmp_path):
    venue = load_config().with_venue(itch_group=GROUP, itch_interface=VETH_ADDRESS).venue
    spec = joined_group(VenueSpec.parse("process"), venue)
    assert (spec.md_bind, spec.md_interface) == (GROUP, VETH_ADDRESS)
    assert joined_group(VenueSpec.parse("embedded", md_interface="127.0.0.1"), venue).md_interface == "127.0.0.1"
    external = VenueSpec.parse("10.1.2.3:9000", rerequest_port=9001)
    assert joined_group(external, venue) == external        # its group is --md-bind's
    journal = tmp_path / "j"
    out = CliRunner().invoke(run, ["--venue-config", venue_config(tmp_path, "127.0.0.1"), "--md-bind", "127.0.0.1",
                                   "--journal", str(journal), "--no-ptp-lab", "--control", "none"])
    assert out.exit_code == 1 and f"the multicast group {GROUP} (its config's itch_group)" in out.output, out.output
    assert not journal.exists()
    bad = CliRunner().invoke(run, ["--md-interface", "eth0", "--journal", str(journal)])
    assert bad.exit_code == 1 and "--md-interface 'eth0': expected an IPv4 address" in bad.output
    alone = CliRunner().invoke(run, ["--md-interface", "127.0.0.1", "--journal", str(journal)])
    assert alone.exit_code == 1 and "--md-interface 127.0.0.1: names the interface a multicast group" in alone.output
    assert not journal.exists()


@pytest.mark.netns
@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_an_embedded_venue_on_a_group_is_traded_on_with_its_market_data_taken(tmp_path):
    journal = tmp_path / "journal"
    with multicast_namespace(veth=True) as namespace:
        done = python_in(namespace, _RUN, "--venue", "embedded", "--venue-config", venue_config(tmp_path, VETH_ADDRESS),
                         "--duration", "3s", "--journal", str(journal), "--json", "--control", "none",
                         "--close-out", "1s", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["venue"]["itch_group"] == GROUP and summary["venue"]["itch_source"] == VETH_ADDRESS
    counts = summary["engine"]["counts"]
    assert counts["md_packets"] > 20 and counts["gaps"] == 0, counts
    assert summary["runner"]["md_foreign"] == 0            # the venue's packets were the venue's
    assert summary["runner"]["orders_sent"] > 0 and summary["clock"]["compliant"], summary["problems"]
    with Reader(str(journal)) as reader:
        kinds = [r.rtype for r in reader.records()]
    assert kinds.count(RecordType.MD_PACKET) == counts["md_packets"]
