"""The risk package's exception tree.

Owns the typed errors raised by operator-facing calls (limits documents, state commands).
Order denials are never exceptions: they are RiskDecision events returned by the gateway.
"""
from __future__ import annotations

__all__ = ["RiskError", "LimitsError", "InvalidTransition", "FaultsActive"]


class RiskError(Exception):
    """Base of every error the risk package raises."""


class LimitsError(RiskError):
    """A limits document is malformed; `field` names the offending key (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidTransition(RiskError):
    """A trading-state transition that the table does not allow, e.g. "HALTED -> SAFE_MODE"."""


class FaultsActive(RiskError):
    """An operator re-enable was refused because fail-closed faults are still present."""

    def __init__(self, faults: list[str]) -> None:
        super().__init__("faults still active: " + ", ".join(faults))
        self.faults = faults
