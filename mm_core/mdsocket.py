"""The runner's market-data socket: the address to bind (the venue's interface, or the settings'
md_bind), a UDP socket bound there with kernel RX stamping on and its receive buffer sized, and
the senders whose packets count as the venue's. Opens sockets only; reads nothing from them.
"""
from __future__ import annotations

import ipaddress
import socket

from audit.capture import TimestampedUdpSocket
from audit.rxbuffer import RxBufferError, size_receive_buffer
from mm_core.runner_shared import _oserror
from mm_core.runnertypes import RunnerError, RunnerSettings

_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)     # Linux's; Python 3.12 names it

__all__ = ["resolve_ipv4", "md_bind_address", "market_data_socket", "open_market_data", "md_sources"]


def resolve_ipv4(name: str, what: str) -> str:
    """The IPv4 address of `name` (a dotted address is itself). Callers look a name up once and
    keep the address: a name service failure mid-session must not cost a re-request or a
    reconnect. RunnerError, one line naming `what`, when it cannot be resolved."""
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (OSError, UnicodeError) as exc:
        raise RunnerError(f"cannot resolve {what}: {exc}") from None


def md_bind_address(settings: RunnerSettings, venue_ip: str = "") -> str:
    """Where the market-data socket binds: md_bind, else the venue's host when it is loopback (the
    embedded venue publishes there), else every local address (a remote venue's unicast feed).
    `venue_ip`: the host's address as the runner resolved it (a name is not looked up again)."""
    if settings.md_bind:
        return settings.md_bind
    host = venue_ip or settings.host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:                   # a host name, not resolved here
        loopback = host == "localhost"
    return host if loopback else "0.0.0.0"


def market_data_socket(settings: RunnerSettings, venue_ip: str = "") -> socket.socket:
    """The non-blocking UDP socket that receives the venue's MoldUDP64 (md_bind_address; a
    multicast group is joined on md_interface), its receive buffer md_rcvbuf. RunnerError, one
    line, when it cannot be made."""
    address = md_bind_address(settings, venue_ip)
    md = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if settings.itch_port:
            # a named port may be shared on purpose (a multicast group, a restart); port 0 asks the
            # kernel for one of this socket's own, which it may hand out while another socket
            # with SO_REUSEADDR holds it: that socket would then take this session's datagrams
            md.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # sized before the bind: no datagram is queued under the kernel's default
        size_receive_buffer(md, settings.md_rcvbuf)
        try:
            multicast = ipaddress.ip_address(address).is_multicast
        except ValueError:
            multicast = False
        # a group is received on every local address, not bound as the address: re-requests go
        # out from this socket and their answers come back unicast, which a socket bound to the
        # group could neither send from nor receive
        md.bind(("0.0.0.0" if multicast else address, settings.itch_port))
        if multicast:
            # only the group joined here, not every group other sockets joined on this port
            md.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
            try:
                md.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                              socket.inet_aton(address) + socket.inet_aton(settings.md_interface))
            except OSError as exc:
                raise RunnerError(f"cannot join the multicast group {address} on the interface "
                                  f"{settings.md_interface}: {_oserror(exc)} (--md-interface names "
                                  "a local address of the interface to join on)") from None
        md.setblocking(False)
    except RunnerError:
        md.close()
        raise
    except (OSError, RxBufferError, ValueError) as exc:
        md.close()
        if not isinstance(exc, OSError):
            raise RunnerError(f"market-data receive buffer: {exc}") from None
        raise RunnerError(f"cannot receive market data on {address}:{settings.itch_port}: "
                          f"{_oserror(exc)} (--md-bind sets the local address)") from None
    return md


def open_market_data(settings: RunnerSettings, venue_ip: str = "") -> TimestampedUdpSocket:
    """market_data_socket with the kernel's stamping on: what the runner reads market data from.
    A caller that starts the venue itself opens it first (Runner's md_socket), so that stamps are
    on for the datagrams the venue sends before the runner connects."""
    return TimestampedUdpSocket(market_data_socket(settings, venue_ip), settings.hardware_timestamps)


def md_sources(settings: RunnerSettings, venue_ip: str = "") -> frozenset[str]:
    """The addresses the venue's market data (and its re-request replies) may come from:
    settings.md_sources, or the venue's host (`venue_ip`: its address as the runner resolved it;
    else looked up here); names resolved once, here. RunnerError when one does not resolve."""
    if not settings.md_sources and venue_ip:
        return frozenset((venue_ip,))
    names = settings.md_sources or (settings.host,)
    return frozenset(resolve_ipv4(name, f"the market data's source {name}") for name in names)
