"""The venue's market data on a multicast group: the config's itch_group / itch_interface /
itch_ttl checked field by field; inside a network namespace the test makes, a venue publishing to
the group and the runner's market-data socket joined to it: consecutive MoldUDP64 sequences from
the interface's address, and a re-request answered by unicast to the socket that asked."""
from __future__ import annotations

import json

import pytest

from mm_core.venue.config import load_config, parse_config
from mm_core.venue.errors import ConfigError, VenueStateError
from mm_core.venue.server import Venue
from tests.venue.mcast_netns import GROUP, VETH_ADDRESS, multicast_namespace, python_in
from tests.venue.test_config import doc_with


def test_the_default_publishes_unicast_and_a_group_goes_from_loopback_with_ttl_1():
    venue = load_config().venue
    assert (venue.itch_group, venue.itch_interface, venue.itch_ttl) == ("", "127.0.0.1", 1)
    venue = parse_config(doc_with(venue={"itch_group": GROUP})).venue
    assert (venue.itch_group, venue.itch_interface, venue.itch_ttl) == (GROUP, "127.0.0.1", 1)


@pytest.mark.parametrize("settings, field, problem", [
    ({"itch_group": "127.0.0.1"}, "venue.itch_group", "an IPv4 multicast address"),
    ({"itch_group": "239.1.2"}, "venue.itch_group", "an IPv4 multicast address"),
    ({"itch_group": "ff02::1"}, "venue.itch_group", "an IPv4 multicast address"),
    ({"itch_group": 239}, "venue.itch_group", "an IPv4 multicast address"),
    ({"itch_interface": "0.0.0.0"}, "venue.itch_interface", "the IPv4 address of a local interface"),
    ({"itch_interface": GROUP}, "venue.itch_interface", "the IPv4 address of a local interface"),
    ({"itch_interface": "lo"}, "venue.itch_interface", "the IPv4 address of a local interface"),
    ({"itch_interface": ""}, "venue.itch_interface", "the IPv4 address of a local interface"),
    ({"itch_ttl": 256}, "venue.itch_ttl", "must be in 0..255"),
    ({"itch_ttl": -1}, "venue.itch_ttl", "must be in 0..255"),
    ({"itch_ttl": 1.5}, "venue.itch_ttl", "must be an integer"),
    ({"itch_ttl": True}, "venue.itch_ttl", "must be an integer"),
])
def test_a_bad_group_interface_or_ttl_names_its_field(settings, field, problem):
    with pytest.raises(ConfigError) as info:
        parse_config(doc_with(venue=settings))
    assert info.value.field == field and problem in info.value.problem, str(info.value)
    with pytest.raises(ConfigError, match=problem):          # a CLI override is checked too
        load_config().with_venue(**settings)


def test_an_interface_address_not_of_this_host_stops_the_start_with_a_clear_error(tmp_path):
    venue = Venue(load_config().with_venue(itch_group=GROUP, itch_interface="10.255.1.2", itch_port=31999,
                                           log_dir=str(tmp_path)), background_flow=False)
    with pytest.raises(VenueStateError, match=rf"cannot publish market data to {GROUP}:31999: .*"
                                              r"Cannot assign requested address"):
        venue.start()
    venue.stop()                    # nothing was left bound or open


@pytest.mark.netns
@pytest.mark.parametrize("veth", [False, True], ids=["loopback", "veth"])
def test_the_group_carries_consecutive_packets_and_a_rerequest_is_answered_by_unicast(veth):
    interface = VETH_ADDRESS if veth else "127.0.0.1"
    with multicast_namespace(veth=veth) as namespace:
        done = python_in(namespace, "import sys; from tests.venue.mcast_probe import main; main(*sys.argv[1:])",
                         GROUP, interface)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["ports"]["itch_group"] == GROUP and seen["ports"]["itch_source"] == interface
    live = seen["live"]
    assert len(live) >= 20, seen            # start of day alone is dozens of messages
    assert {(p["source"], p["dest"]) for p in live} == {(interface, GROUP)}
    assert live[0]["sequence"] == 1
    for before, after in zip(live, live[1:]):      # heartbeats (count 0) carry the next sequence
        assert after["sequence"] == before["sequence"] + before["count"], live
    # the answer is unicast to the address the request came from, not published to the group
    assert seen["answers"] == [{"source": interface, "dest": "127.0.0.1", "sequence": 1, "count": 3}]
