"""A hedged pair at rest ends a packet in the C reaction (fsig_react_from's hedge_acts): a hedge
in flight, the sustain timer running, the timer run out on a goal that rounds to no lot, and an
active pair whose goal (the band's hysteresis) is already hedged. Proved against the Python
reference classes in lockstep: the same actions after every event, and the same pair (active,
in flight, sustain timer, hedged, goal) after every event, so a packet C calls quiet is one on
which Engine._hedge changes nothing."""
import pytest

from mm_core.config import EngineConfig, FairValueParams
from mm_core.hedger import HedgeParams
from tests.mm_core.test_sig_engine import Lockstep, drive
from tests.mm_core.wire import BOLT, MS

# the prior ratio is tiny and never learned (min_samples out of reach): past the trigger the goal
# rounds to no lot, so the pair is made active and ended again on every decide
ZERO_GOAL = EngineConfig(hedge=HedgeParams(trigger=200, keep=100, hold_ns=10 * MS, band=20, lot=20,
                                           beta_prior=0.0001, min_samples=10**9), quote_size=300)
# a band of many lots: once a hedge has gone out the goal holds while the target wanders inside it
WIDE_BAND = EngineConfig(fair_value=FairValueParams(lead_alpha=0.2),
                         hedge=HedgeParams(trigger=200, keep=100, hold_ns=10 * MS, band=400, lot=20,
                                           min_samples=3), quote_size=300)


def _pair(engine):
    p = engine.hedger.pairs[BOLT]
    return (p.active, p.in_flight, p.over_since, p.hedged, p.goal)


class PairLockstep(Lockstep):
    """Lockstep that also compares the hedged pair after every event, and counts each engine's
    Engine._hedge calls on that pair while it is not idle (past the trigger, active or a hedge
    in flight), by the state it was in."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.calls = {"kernel": {}, "reference": {}}
        for name in self.calls:
            self._count(getattr(self, name), self.calls[name])

    @staticmethod
    def _count(engine, calls: dict) -> None:
        hedge = engine._hedge

        def counted(symbol_id, actions):
            state = _state(engine) if symbol_id == BOLT else ""
            if state:
                calls[state] = calls.get(state, 0) + 1
            return hedge(symbol_id, actions)
        engine._hedge = counted

    def on_event(self, event) -> list:
        out = super().on_event(event)
        assert _pair(self.kernel) == _pair(self.reference), f"pair differs at event {self.events}: {event}"
        return out


def _state(engine) -> str:
    p = engine.hedger.pairs[BOLT]
    if p.in_flight:
        return "in flight"
    if p.active:
        return "active"
    if abs(engine.inventory.position[BOLT]) >= engine.hedger.p.trigger:
        return "sustain timer"
    return ""


@pytest.mark.parametrize("config, seeds, state", [
    (ZERO_GOAL, (1, 2), "sustain timer"),
    (WIDE_BAND, (3, 5), "active"),
])
def test_a_pair_at_rest_ends_packets_in_c_as_the_python_decides(config, seeds, state):
    for seed in seeds:
        engines = PairLockstep(config)
        drive(seed, 1200, config, engines)
        assert engines.kernel.state_hash() == engines.reference.state_hash()
        kernel, reference = engines.calls["kernel"].get(state, 0), engines.calls["reference"].get(state, 0)
        # the reference decides every packet that touches the pair in Python; before the C
        # reaction knew a pair at rest, the kernel engine did too
        assert reference > 50 and kernel < reference // 2, (seed, engines.calls)
