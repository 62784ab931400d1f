"""The risk gateway's controls: an operator's enable, safe mode, kills by scope and their
release, which orders a kill blocks, and limits replaced mid-session (admitted, installed and
the symbols' bands reset). Part of RiskGateway (mm_core.risk.gateway); sans-io like it.
"""
from __future__ import annotations

from mm_core.risk import windows
from mm_core.risk.checks import CheckId, RiskDecision
from mm_core.risk.errors import FaultsActive, LimitsError, RiskError
from mm_core.risk.gateway_shared import _ACTIVE, _HALTED, _SAFE, _latch_state
from mm_core.risk.gateway_state import _Symbol
from mm_core.risk.greeks import OptionParams
from mm_core.risk.kill import KillOrder, KillScope, parse_scope, scope_matches
from mm_core.risk.limits import Limits, PRICE4
from mm_core.risk.states import TradingState, Trigger


class GatewayControls:
    """RiskGateway's operator controls and limits (a mixin of RiskGateway)."""

    __slots__ = ()          # RiskGateway lists its own slots

    def check_option(self, params: OptionParams, now_ns: int | None = None) -> None:
        """What on_option_params refuses before it changes anything: parameters out of range
        (RiskError; with now_ns, an expiry not after it or more than greeks.MAX_EXPIRY_DAYS
        later), or a vol whose scenario grid moves the underlying to zero or below under the
        limits in force (LimitsError naming scenario.spot_sigmas): none of it could be valued."""
        params.validate(now_ns)
        self._limits.check_scenario_vol(params.vol, f"option {params.symbol_id}'s vol")

    # ------------------------------------------------------------------------ commands
    def operator_enable(self, actor: str, reason: str, now_ns: int = 0) -> None:
        """An authorised person re-enables trading; refused while a fault is still active."""
        faults = self.faults
        if now_ns and now_ns - self._clock_ns > self._limits.max_clock_age_ns \
                and CheckId.CLOCK_STALE.label not in faults:
            faults.append(CheckId.CLOCK_STALE.label)
        if faults:
            raise FaultsActive(faults)
        self._fire(Trigger.OPERATOR_ENABLE, CheckId.OPERATOR, reason, actor, now_ns)
        self._safe_requested = False     # the operator chose ACTIVE
        # the throttle's window restarts with the operator's decision; only after the transition,
        # so an enable refused as invalid (already trading) cannot reset the throttle
        self._fills.clear()

    def release_kill(self, actor: str, reason: str) -> None:
        """Lift the latch of a kill of everything that only ended a session (recovery.closeout
        decides from the journal that it was the session's own close-out): the kill's latch
        reason goes, the state stays HALTED under the restart's own latch (unreconciled) until a
        clean reconciliation releases it (on_reconciled). RiskError when no such kill is in force
        or anything else holds: another latch reason, or a fault besides the reconciliation."""
        reasons = self._latch_reasons
        if self._fsm.state is not _HALTED or CheckId.KILLED not in reasons:
            raise RiskError(f"release by {actor}: no kill of everything is in force")
        others = [check.label for check in reasons if check not in (CheckId.KILLED, CheckId.UNRECONCILED)]
        if others or CheckId.UNRECONCILED not in reasons:
            raise RiskError(f"release by {actor}: only a kill awaiting the restart's reconciliation is "
                            f"released; latched by {', '.join(others) or 'the kill alone'}")
        faults = [f for f in self.faults if f != CheckId.UNRECONCILED.label]
        if faults:
            raise FaultsActive(faults)
        del reasons[CheckId.KILLED]

    def set_safe_mode(self, on: bool, actor: str, reason: str, now_ns: int = 0) -> None:
        """Enter or leave SAFE_MODE; a no-op when already there, InvalidTransition when latched."""
        state = self._fsm.state
        if (on and state is _SAFE) or (not on and state is _ACTIVE):
            return
        self._fire(Trigger.SAFE_MODE_ON if on else Trigger.SAFE_MODE_OFF, CheckId.OPERATOR, reason,
                   actor, now_ns)
        self._safe_requested = on

    def kill(self, scope: "KillScope | str | int", scope_id: int, requested_by: str, reason: str,
             now_ns: int) -> KillOrder:
        """Kill switch; returns what the OMS must cancel (cancels still pass). A kill of
        everything latches HALTED (operator_enable lifts it); a scoped one refuses new orders in
        its scope only, the rest trades on (lift_kill lifts it)."""
        order = KillOrder(parse_scope(scope), int(scope_id), requested_by, reason, now_ns)
        if order.scope is KillScope.ALL:
            self._fire(Trigger.KILL, CheckId.KILLED, f"kill {order.scope.name.lower()} "
                       f"{order.scope_id}: {reason}", requested_by, now_ns)
        else:
            self._scoped_kills = self._scoped_kills | {(int(order.scope), order.scope_id)}
        return order

    def lift_kill(self, scope: "KillScope | str | int", scope_id: int) -> None:
        """An operator's enable of one scope: that scoped kill only is lifted; RiskError when no
        kill of that scope is in force (a kill of everything is lifted by operator_enable)."""
        kind = parse_scope(scope)
        key = (int(kind), int(scope_id))
        if kind is KillScope.ALL or key not in self._scoped_kills:
            raise RiskError(f"no kill of {kind.name.lower()} {scope_id} is in force"
                            + (f" (in force: {self.scoped_kills_text()})" if self._scoped_kills else ""))
        self._scoped_kills = self._scoped_kills - {key}

    @property
    def scoped_kills(self) -> list[tuple[KillScope, int]]:
        """The scoped kills in force, (scope, scope_id), sorted."""
        return [(KillScope(scope), ident) for scope, ident in sorted(self._scoped_kills)]

    def scoped_kills_text(self) -> str:
        return ", ".join(f"{scope.name.lower()} {ident}" for scope, ident in self.scoped_kills)

    def blocks(self, symbol_id: int, algo_id: int, desk_id: int, client_id: int) -> bool:
        """True when a scoped kill in force covers an order with these ids."""
        return any(scope_matches(scope, ident, symbol_id, algo_id, desk_id, client_id)
                   for scope, ident in self._scoped_kills)

    def replace_limits(self, new_text: str) -> int:
        """Install a new limits document; a bad one raises LimitsError and the old stays, whole
        (_install_limits)."""
        new = Limits.from_toml(new_text)
        if new.version <= self._limits.version:
            raise LimitsError("version", f"{new.version} must be greater than the version in force "
                              f"({self._limits.version})")
        self._install_limits(new)
        return new.version

    # ------------------------------------------------------------------------ internals
    def _admit_limits(self, limits: Limits) -> TradingState:
        """The state `limits` latch to; raises (changing nothing) for limits the gateway cannot
        run: a scenario grid that moves the underlying of a group to zero or below (LimitsError)."""
        latch_to = self._latch_override or _latch_state(limits.latch_state)
        limits.check_scenario_vol(limits.scenario_default_vol, "scenario.default_vol")
        for sym in self._symbols.values():
            if sym.option is not None:
                limits.check_scenario_vol(sym.option.vol, f"option {sym.symbol_id}'s vol")
        return latch_to

    def _install_limits(self, limits: Limits) -> None:
        """Puts `limits` in force, all or nothing: limits the gateway cannot run raise before
        anything changes (_admit_limits), and should installing fail past that, the limits in
        force before are installed again and LimitsError says so."""
        latch_to = self._admit_limits(limits)
        old = getattr(self, "_limits", None), getattr(self, "_latch_to", None)   # None: the first
        try:
            self._put_limits(limits, latch_to)
        except Exception as exc:
            if old[0] is None:
                raise
            self._put_limits(*old)
            raise LimitsError("<document>", f"not installed ({type(exc).__name__}: {exc}); "
                              f"version {old[0].version} stays in force") from exc

    def _put_limits(self, limits: Limits, latch_to: TradingState) -> None:
        """Admitted limits into every place that holds them: bands, group grids, the windows."""
        self._limits = limits
        self._latch_to = latch_to
        self._loss_floor = -limits.scenario_max_loss / PRICE4     # currency, for the cheap bound
        for symbol_id, sym in self._symbols.items():
            sym.limits = limits.for_symbol(symbol_id)
            self._set_bands(sym)
        for group in self._groups.values():
            group.grid = ()       # rebuilt with the new scenario parameters
            self._refresh_group(group, None)
        self._refresh_allowed()
        self._clock_deadline()       # max_clock_age may have changed
        if self._win is not None and not windows.set_limits(self._win, limits):
            self._decompile()
        elif self._win is None:
            self._compile()

    def _set_bands(self, sym: _Symbol) -> None:
        """Collar half-widths follow the prices and the limits, not each order."""
        lim = self._limits
        sym.fair_band = sym.fair * lim.collar_fair_bps // 10_000
        sym.reference_band = sym.reference * lim.collar_reference_bps // 10_000
        sym.drift_band = sym.reference * lim.collar_drift_bps // 10_000
        sym.bound_collars()

    def _refresh_allowed(self) -> None:
        self._allowed = RiskDecision(True, CheckId.OK, 0, 0, "", self._fsm.state, self._limits.version)
        self._halted = RiskDecision(False, CheckId.TRADING_HALTED, 0, 0, "trading halted",
                                    self._fsm.state, self._limits.version)
