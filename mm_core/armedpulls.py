"""The guard's pulls planned while the runner idles (Runner.upkeep), for the runner's armed sink.

For every quote the guard could pull (Engine.armed), the ORDER_SENT payload of its cancel and
the cancel's bytes, as the runner would journal and send them (Engine.pull_plan, with the stamp
key patched in at the trip). When the guard trips, the runner journals and sends these in one C
call before the engine builds, checks and books the pulls, so none of that work stands between
the toxic event and the send. A cache of the engine's state: used only while the OMS version it
was planned on is the one the engine armed, and the gateway's trading state and limits version
(which every cancel's record carries) are those it was planned under.

The same plan by armed index in a flane_sink (mm_core/fastlane.h), for the engine's C own-fill
lane: the runner hands it over filled for a fire (Runner._lane_ready) and books what it sent;
the sink also holds VENUE_MSG's layout, in which flane_fire_input journals the fill's frame.
"""

from __future__ import annotations

from typing import Callable

from journal.catalogue import PAYLOAD_DTYPES, RecordType
from mm_core.fastbook import ffi

_TSKEY_AT = PAYLOAD_DTYPES[RecordType.ORDER_SENT].fields["tskey"][1]
_TSKEY_END = _TSKEY_AT + 4
_VENUE_MSG = PAYLOAD_DTYPES[RecordType.VENUE_MSG]
if [_VENUE_MSG.fields[f][1] for f in ("soup_seq", "packet_type", "msg_type", "raw_len")] != [0, 8, 9, 10]:
    raise ImportError("the VENUE_MSG layout changed: update flane_fire_input (mm_core/_fastlane.c)")


class ArmedPulls:
    """{token: (ORDER_SENT payload with stamp key 0, cancel bytes)} of the engine's armed quotes."""

    __slots__ = ("version", "verdict", "plans", "sample", "sink", "_held")

    def __init__(self) -> None:
        self.version: tuple[int, int] | None = None      # the OMS version the engine armed at
        self.verdict: tuple[int, int] | None = None      # (trading state, limits version)
        self.plans: dict[str, tuple[bytes, bytes]] = {}
        self.sample: list = []        # one armed order, for a dry run of out() that keeps it warm
        self.sink = ffi.new("flane_sink *")              # the plan by armed index (its buffers: _held)
        self.sink.tskey_at = _TSKEY_AT
        self.sink.input_rtype = int(RecordType.VENUE_MSG)
        self.sink.input_size, self.sink.input_raw_at = _VENUE_MSG.itemsize, _VENUE_MSG.fields["raw"][1]
        self._held: list = []

    def plan(self, engine, payload_of: Callable[[object, int], bytes]) -> None:
        """Re-plan when the engine re-armed or the gateway's verdict on a cancel changed
        (`payload_of`: the runner's ORDER_SENT payload of a SendOrder and a stamp key)."""
        version, armed = engine.armed_version, engine.armed
        verdict = engine.risk_verdict()
        if version == self.version and verdict == self.verdict:
            return
        plans, sample = {}, []
        for orders in armed.values():
            for order in orders:
                action = engine.pull_plan(order)
                plans[order.token] = (payload_of(action, 0), action.packet)
            sample = sample or orders[:1]
        self.plans, self.version, self.verdict, self.sample = plans, version, verdict, sample
        self._sink_plan(engine.armed_orders)

    def _sink_plan(self, orders: list) -> None:
        """The plan of each armed order at its armed index in the sink (no more than it holds:
        the engine's C lane is off past that)."""
        sink, held = self.sink, []
        for i in range(len(sink.payload)):
            if i < len(orders):
                payload, packet = self.plans[orders[i].token]
                held += [ffi.from_buffer(payload), ffi.from_buffer(packet)]
                sink.payload[i], sink.packet[i] = held[-2], held[-1]
                sink.payload_len[i], sink.packet_len[i] = len(payload), len(packet)
            else:       # no pointer into a buffer the last plan held is left behind
                sink.payload[i] = sink.packet[i] = ffi.NULL
                sink.payload_len[i] = sink.packet_len[i] = 0
        self._held = held

    def patched(self, orders: list, key: int) -> list[bytes]:
        """The planned ORDER_SENT payloads of these orders (anything with their `token`) with
        stamp key `key`."""
        kb = key.to_bytes(4, "little")
        plans = self.plans
        return [p[:_TSKEY_AT] + kb + p[_TSKEY_END:] for p, _ in (plans[o.token] for o in orders)]

    def out(self, orders: list, tcp_bytes: int, version: tuple[int, int] | None,
            verdict: tuple[int, int]) -> tuple[int, list[bytes], bytes] | None:
        """(stamp key, ORDER_SENT payloads, bytes) of these orders' pulls sent in one send after
        `tcp_bytes` bytes; None when the plan is not for this OMS version and verdict, or misses
        one of them."""
        if version != self.version or verdict != self.verdict:
            return None
        plans = self.plans
        try:
            planned = [plans[order.token] for order in orders]
        except KeyError:
            return None
        data = planned[0][1] if len(planned) == 1 else b"".join([packet for _, packet in planned])
        key = (tcp_bytes + len(data) - 1) & 0xFFFFFFFF
        return key, self.patched(orders, key), data
