"""The cross-asset lead uses its prior until the online beta has lead_min_samples co-moves: one
early co-move (beta = y/x exactly) no longer shifts the follower's fair value by many ticks. The
C kernel and the Python reference agree."""
import pytest

from mm_core.config import FairValueParams
from mm_core.fairvalue import FairValueModel
from mm_core.guard import GuardParams
from mm_core.hedger import HedgeParams
from mm_core.sigfair import KernelFairValue, fv_setup
from mm_core.sigkernel import SignalKernel

TICKS, LEADERS = [1, 100, 50], {2: 1}      # leader id 1 ($100, tick 100), follower id 2 ($50.50)


def models(min_samples: int):
    fv = FairValueParams(base="mid", lead_min_samples=min_samples)
    kw = dict(ticks=TICKS, leaders=LEADERS, lead_alpha=fv.lead_alpha, lead_prior=fv.lead_prior,
              lead_min_samples=min_samples, base="mid", calibrate_every=0)
    kernel = SignalKernel(3, GuardParams(), fv.flow_alpha,
                          fv_setup(3, fv, TICKS, LEADERS, [0.0] * 3, {}, 0.05, HedgeParams()))
    return FairValueModel(3, **kw), KernelFairValue(kernel, 3, **kw)


def co_moves(model, n: int) -> float:
    """n follower moves of +5 ticks each after a leader move of half a tick, then one more
    half-tick leader move: returns the follower's fair value less its mid."""
    leader, follower = 1_000_100, 505_025
    model.update(1, leader - 50, 500, leader + 50, 500)
    model.update(2, follower - 25, 500, follower + 25, 500)        # sets the lead reference
    for _ in range(n):
        leader += 50
        model.update(1, leader - 50, 500, leader + 50, 500)
        follower += 250
        model.update(2, follower - 25, 500, follower + 25, 500)    # a sample: beta = y/x
    leader += 50
    model.update(1, leader - 50, 500, leader + 50, 500)
    return model.update(2, follower - 25, 500, follower + 25, 500) - follower


@pytest.mark.parametrize("which", [0, 1], ids=["reference", "kernel"])
def test_one_co_move_does_not_set_the_lead(which):
    assert co_moves(models(20)[which], 1) == 0.0                    # the prior (0) until 20 samples
    assert co_moves(models(0)[which], 1) > 200                      # ungated: ~5 ticks at once


@pytest.mark.parametrize("n", [1, 19, 20, 30])
def test_kernel_and_reference_gate_alike(n):
    ref, ker = models(20)
    shift = co_moves(ref, n)
    assert co_moves(ker, n) == shift and (shift > 0) == (n >= 20)
    assert ker.lead_beta[2].n == ref.lead_beta[2].n == n
    assert (ker.lead_beta[2].sxy, ker.lead_beta[2].sxx) == (ref.lead_beta[2].sxy, ref.lead_beta[2].sxx)
