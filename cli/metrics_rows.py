"""The desk-metrics rows of the end-of-run summary (`mmaudit run`, `mmaudit demo`), from the
engine's METRICS document (mm_core.metrics.Metrics.summary plus the engine's fields): each row
says what it counts (quote fills apart from hedge and adopted ones; an unrealized P&L that leaves
positions out says which). Formats the document's figures; computes none of its own.
"""
from __future__ import annotations

__all__ = ["horizon_text", "metrics_rows", "money"]


def money(price4_shares: int | None, halves: bool = False) -> str:
    """price4 x shares -> currency with 2 decimals, by integer arithmetic (rounded half away);
    halves: the figure is twice the amount (a METRICS field named ..._x2)."""
    if price4_shares is None:
        return "n/a"
    sign = "-" if price4_shares < 0 else ""
    unit = 200 if halves else 100
    cents = (abs(int(price4_shares)) + unit // 2) // unit
    return f"{sign}{cents // 100:,}.{cents % 100:02d}"


def horizon_text(ns: int | str) -> str:
    """A markout horizon in ns, exactly, in the largest of ms, µs and ns it is a whole number of
    (a sub-millisecond horizon is not "0 ms")."""
    ns = int(ns)
    for unit, scale in (("ms", 1_000_000), ("µs", 1_000)):
        if ns and ns % scale == 0:
            return f"{ns // scale:,} {unit}"
    return f"{ns:,} ns"


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _unrealized(e: dict, names: dict[str, str]) -> str:
    """At the mids; a total that leaves out positions with no mid says so, and a stale book."""
    text = money(e.get("unrealized_x2"), halves=True)
    unpriced = e.get("unpriced") or {}
    if unpriced:
        priced = any(v.get("position") and v.get("unrealized_x2") is not None
                     for v in e.get("symbols", {}).values())
        left_out = " ".join(f"{names.get(s, s)} {q:+d}" for s, q in unpriced.items())
        text = f"partial: {text} ({left_out} unpriced)" if priced else f"n/a ({left_out} unpriced)"
    if e.get("book_stale"):
        text += " (book stale)"
    return text


def _markouts(e: dict) -> list[tuple[str, str]]:
    per_share = e.get("markout_per_share", {})
    rows = [("markout per share", ", ".join(
        f"{horizon_text(h)} " + (f"{m / 10_000:+.4f}" if m is not None else "n/a")
        for h, m in per_share.items()) or "n/a")]
    unmarked = {h: u for h, u in e.get("markout_unmarked", {}).items() if u.get("fills")}
    if unmarked:
        rows.append(("markouts unmarked", ", ".join(
            f"{horizon_text(h)} {u['fills']}" + (f" ({u['book_stale']} book stale)" if u.get("book_stale") else "")
            for h, u in unmarked.items()) + " (no mid at the horizon: out of the means)"))
    ended = {h: p for h, p in e.get("markout_session_end", {}).items() if p.get("valued") or p.get("unmarked")}
    if ended:
        rows.append(("markouts at session end", ", ".join(
            f"{horizon_text(h)} {_session_end(p)}" for h, p in ended.items())
            + " (horizon not run out: out of the means)"))
    return rows


def _session_end(p: dict) -> str:
    """One horizon's markouts still pending when the session ended: valued at the last mid (their
    mean per share), and unmarked (no mid then, or the book stale)."""
    parts = []
    if p.get("valued"):
        per_share = p.get("per_share")
        parts.append(f"{p['valued']} valued at the last mid"
                     + (f" {per_share / 10_000:+.4f}" if per_share is not None else ""))
    if p.get("unmarked"):
        parts.append(f"{p['unmarked']} unmarked" + (f" ({p['book_stale']} book stale)" if p.get("book_stale") else ""))
    return " and ".join(parts)


def _side_pair(doc: dict, fmt=str) -> str:
    return f"{fmt(doc.get('bid', 0))} bid, {fmt(doc.get('ask', 0))} ask"


def _hedging(h: dict) -> str:
    if not h.get("fills"):
        return "none"
    per_share = h.get("cost_per_share")
    return (f"{h['fills']} fills, {h['qty']:,} shares, cost {money(h.get('cost_x2'), halves=True)}"
            + (f" ({per_share / 10_000:+.4f} per share against the mid)" if per_share is not None else ""))


def metrics_rows(e: dict, names: dict[str, str]) -> list[tuple[str, str]]:
    """The rows after the positions row: quote fills and fill rates per side, P&L, spread
    captured, markouts, adverse selection, inventory turnover, hedging, adopted fills."""
    rate, filled, quoted = e.get("fill_rate", {}), e.get("filled_qty", {}), e.get("quoted_qty", {})
    stale_qty = (e.get("stale_fill_qty") or {}).get("quote", 0)
    spread = money(e.get("spread_captured_x2"), halves=True) + (
        f" ({stale_qty:,} shares filled while the book was stale not valued)" if stale_qty else "")
    adverse_h = e.get("adverse_horizon_ns")
    marked = e.get("adverse_marked", 0)
    turnover = e.get("inventory_turnover")
    rows = [
        ("quote fills", _side_pair(e.get("fills", {}))),
        ("quote fill rate", ", ".join(
            f"{side} {_pct(rate.get(side, 0.0))} ({filled.get(side, 0):,} of {quoted.get(side, 0):,} shares quoted)"
            for side in ("bid", "ask"))),
        ("P&L realized", money(e.get("realized"))),
        ("P&L unrealized at mid", _unrealized(e, names)),
        ("spread captured", spread),
        *_markouts(e),
        ("adverse selection", (f"{_pct(e.get('adverse_selection_rate', 0.0))} of {marked} quote fills marked "
                               f"at {horizon_text(adverse_h)}") if marked and adverse_h else "n/a (no quote fill marked)"),
        ("inventory turnover", f"{turnover:.2f} (shares traded / mean |position|)" if turnover is not None else "n/a"),
        ("hedging", _hedging(e.get("hedging", {}))),
    ]
    adopted = e.get("adopted_fills") or {}
    if adopted.get("fills"):
        rows.append(("adopted fills", f"{adopted['fills']} fills, {adopted['qty']:,} shares (orders recovery "
                                      f"adopted: in P&L and positions, not in the quote figures)"))
    return rows
