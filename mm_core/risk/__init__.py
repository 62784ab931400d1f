"""Fail-closed pre-trade risk gateway (RTS 6 Art. 15-17, SEC 15c3-5): public API.

Calling contract for the engine (sans-io; every call carries now_ns from the engine's input):
  gw = RiskGateway(Limits.from_toml(text))          # latch_state from the document, or kwarg;
                                                     # compiled=False: the Python windows
  before the first order:  gw.on_journal_health(True, t); gw.on_clock(True, t);
                           gw.on_reconciled(True, t)  (unless start_reconciled = true);
                           gw.on_market(sym, fair_p4, reference_p4, book_stale, t) per symbol
  per order action:        d = gw.check(intent, t, mark, best_bid) -> RiskDecision (allowed, check,
                           value, limit, detail, state, limits_version); send only if d.allowed;
                           journal denials, and an allowed decision whose check is not OK (an
                           exception used, e.g. the bona fide market-making one). mark: the OUCH
                           side byte (B; a sell's Reg SHO marking S long, T short, E exempt; None:
                           intent.side's own byte); best_bid: the national best bid while the
                           Rule 201 price test is in force (a short sale then needs it); t never
                           before the last order's (one stamped earlier is denied and latches
                           inconsistent-input: the windows count time forwards only)
  feeds:                   on_fill(sym, side, qty, price, t, token=""), on_order_done(token, t),
                           on_reg_sho(sym, restricted, t) (every ITCH Reg SHO 'Y'),
                           on_order_confirmed(token, qty, t, mark) (Replaced / Order Modified;
                           mark: the side byte the venue echoes, which a sell's marking follows),
                           on_trading_day(day, t) (ITCH 'O'); from reconciliation:
                           on_order_adopted(...), on_order_resting(token, qty, price, t) (what
                           of a known order rests at the venue, before it is cancelled there),
                           on_order_state(open_orders | None, unknown_outcome, t), on_position,
                           on_clock, on_journal_health, on_reconciled, on_timer, on_option_params
                           (check_option(params, t) refuses beforehand what it would refuse:
                           an expiry not after t, or more than greeks.MAX_EXPIRY_DAYS later)
  after every call:        gw.drain_events() -> [StateChange] to journal as STATE_CHANGE
  commands:                operator_enable(actor, reason, now_ns), set_safe_mode(on, actor, reason,
                           now_ns), kill(scope, scope_id, requested_by, reason, now_ns) -> KillOrder,
                           replace_limits(text) -> version (LimitsError keeps the old limits)
An allowed ENTER/REPLACE/MODIFY counts as a working order at once (worst case) until
on_order_done(token) or a fill with its token removes it; a REPLACE counts what is left of the
original plus the whole replacement (the original may fill before the replace lands, which then
rests in full), and the original's price, until on_order_confirmed (a refused
replace, on_order_done of the replacement, restores the original; a REPLACE of a replacement
still in flight, or a second one of its original, is denied, a MODIFY of one changes only the
replacement's own size); a size-down MODIFY (one that changes the side byte too) counts its
larger size, and a short sale modified to long its short marking, until on_order_confirmed;
cancels are always allowed. Account limits count every
symbol's working orders (gross: each symbol's larger side, net: the order's side), and an option
group's Greeks and scenarios its other symbols' working orders at their worst. A sell marked long must be
covered by the position net of every working sell; a short sale needs a locate ([reg_sho] in the
limits: easy to borrow, located shares used up by fills and held by working short sales until
they are done, or the bona fide market-making exception for quotes on the symbols named) and,
while Rule 201 is in force, a price above the national best bid (mm_core.risk.regsho). A fault
(an input reporting unhealthy, going quiet, or a defect in a check) denies every order it
concerns (a stale book: orders on that symbol) while active. It latches HALTED or REDUCING per
mm_core.risk.faults.LATCH_POLICY: on report (journal, unknown outcome, reconciliation, defects,
throttle, kill) or, for transient inputs (stale book, market data, clock), only when an order is
presented while it is active; an unlatched transient fault clears by itself. Once latched, only
operator_enable, refused while a fault remains, re-opens. The fault matrix the tests and the
drill share is data in mm_core.risk.faults.
"""
from mm_core.risk.checks import CHECK_UNITS, CheckId, RiskDecision
from mm_core.risk.errors import FaultsActive, InvalidTransition, LimitsError, RiskError
from mm_core.risk.gateway import OpenOrder, RiskGateway
from mm_core.risk.greeks import OptionParams, bs_greeks, bs_price
from mm_core.risk.kill import KillOrder, KillScope
from mm_core.risk.limits import EXAMPLE_TOML, PRICE4, Limits, SymbolLimits
from mm_core.risk.states import TRANSITIONS, StateChange, StateMachine, TradingState, Trigger

__all__ = [
    "RiskGateway", "RiskDecision", "CheckId", "CHECK_UNITS", "OpenOrder",
    "Limits", "SymbolLimits", "EXAMPLE_TOML", "PRICE4",
    "TradingState", "Trigger", "TRANSITIONS", "StateMachine", "StateChange",
    "KillOrder", "KillScope", "OptionParams", "bs_price", "bs_greeks",
    "RiskError", "LimitsError", "InvalidTransition", "FaultsActive",
]
