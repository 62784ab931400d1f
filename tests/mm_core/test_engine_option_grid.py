"""The engine refuses, when it is built, an option of its symbols that the risk gateway could not
value under its limits (a scenario grid moving the underlying to zero or below): before, the
gateway met it at the first market packet on the underlying and the exception stopped the run."""
from __future__ import annotations

import re

import pytest

from mm_core.config import EngineConfig
from mm_core.engine import Engine, EngineError
from tests.mm_core.wire import LIMITS_TEXT, SYMBOLS, gateway


def scenario(spot_sigmas: float, horizon_days: float) -> str:
    text = re.sub(r"spot_sigmas = [0-9.]+", f"spot_sigmas = {spot_sigmas}", LIMITS_TEXT)
    return re.sub(r"horizon_days = [0-9.]+", f"horizon_days = {horizon_days}", text)


def test_an_option_the_scenario_grid_cannot_value_refuses_the_engine():
    # 10 sigmas over 30 days: -86 % at the default vol (accepted), -158 % at ACME1C's 0.55
    with pytest.raises(EngineError, match=r"option ACME1C: scenario\.spot_sigmas: .*vol 0\.55"):
        Engine(EngineConfig(), SYMBOLS, gateway(scenario(10.0, 30.0)))
    Engine(EngineConfig(), SYMBOLS, gateway(scenario(10.0, 1.0)))       # -29 %: built
