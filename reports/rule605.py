"""Rule 605 categories of the firm's own orders: order size (fractional / odd lot / round lot, and
round lots by notional value), the round lot itself (tiered by price), the order-type categories
and the time-to-execution buckets. Pure numpy over arrays the execution-quality report hands in;
it knows nothing of journals, quotes or Parquet (reports/execution.py does).

Each value here is marked with what it rests on.

Verified:
- Size categories are based on the order's notional dollar value and on whether it is fractional,
  an odd lot or a round lot or more, no longer on share counts. Source: the adopting release's
  summary, Release 34-99679, 89 FR 26428 (15 Apr 2024), "Disclosure of Order Execution
  Information", FR Doc 2024-05556 (regulations.justia.com/regulations/fedreg/2024/04/15/2024-05556.html).
- Round lot by price tier: 100 shares at $250.00 or less, 40 at $250.01-$1,000.00, 10 at
  $1,000.01-$10,000.00 and 1 share at $10,000.01 or more. The tier is set from the stock's average
  closing price on its primary listing exchange over a one-month Evaluation Period (March, for the
  lot assigned on the first business day of May; September, for the first business day of
  November). Source: Nasdaq UTP Vendor Alert #2025-10, "Regulation NMS Mandated Round Lot Changes"
  (classic.nasdaqtrader.com/TraderNews.aspx?id=UTP2025-10), implementing the Rule 600(b) round-lot
  definition (Release 34-101070, 89 FR 81620, 8 Oct 2024, which the exchanges' conforming filings
  cite, e.g. Release 34-104474, SR-LTSE-2025-28). Not read in the eCFR text itself.

An approximation, said in the report's metadata (NOTES):
- The journal holds no average closing price, so the tier is decided by the order's own limit
  price (ROUND_LOT_PRICE = "order_price"), the same price the notional uses.
Said in NOTES too (reports/execution.py does it): a fill a crash recovery journaled, or a login's
replay brought, is timed by the venue's execution timestamp, and a quote while the engine was down is unknown, not the last one.

Not confirmed (kept as adjustable constants, never invented):
- The notional edges for round lots (SIZE_EDGES: <$20k, $20k-<$50k, $50k-<$200k, >=$200k), whether
  odd lots are split by notional too, and which price the notional uses (the order's limit price
  here). The Federal Register summary names no edges.
- The amended time-to-execution buckets. The release says the categories changed and that times
  are in milliseconds or finer; their edges and which order types they cover could not be read.
  TTE_EDGES_NS holds the pre-amendment rule's buckets instead (17 CFR 242.605(a)(1)(i)(F)-(J) before
  the amendment: 0-9 s, 10-29 s, 30-59 s, 60-299 s, 5-30 min, for market, marketable limit and the
  inside-, at- and near-the-quote limit orders). They are read here as half-open [lo, hi) intervals
  in ns, with one more bucket for 30 minutes or later. They are produced for every order-type cell.
"""
from __future__ import annotations

import numpy as np

DOLLAR = 10_000                  # price4 units per dollar

# (highest price4 of the tier, round lot), in rising order; above the last: ROUND_LOT_TOP
ROUND_LOT_TIERS = ((250 * DOLLAR, 100), (1_000 * DOLLAR, 40), (10_000 * DOLLAR, 10))
ROUND_LOT_TOP = 1
ROUND_LOT_PRICE = "order_price"  # what decides the tier here (the rule: an average closing price)

# Notional edges in price4·shares (dollars × 10_000) for round-lot orders: unconfirmed, see above.
SIZE_EDGES = (20_000 * DOLLAR, 50_000 * DOLLAR, 200_000 * DOLLAR)
SIZE_NAMES = ["FRACTIONAL", "ODD_LOT", "RL_LT_20K", "RL_20K_50K", "RL_50K_200K", "RL_GE_200K"]
TYPE_NAMES = ["MARKETABLE_LIMIT", "MARKETABLE_IOC", "BEYOND_MIDPOINT_LIMIT", "INSIDE_QUOTE_LIMIT",
              "AT_QUOTE_LIMIT", "OUTSIDE_QUOTE_LIMIT", "NO_QUOTE"]

_S = 1_000_000_000
# Lower edges (ns) of the time-to-execution buckets after the first: the pre-amendment rule's, see above.
TTE_EDGES_NS = (10 * _S, 30 * _S, 60 * _S, 300 * _S, 1_800 * _S)
TTE_NAMES = ["lt_10s", "10s_30s", "30s_60s", "60s_5min", "5min_30min", "ge_30min"]
TTE_UNKNOWN = len(TTE_NAMES)     # the bucket code of a fill without a known (or with a negative) time

NOTES = ("Rule 605 categories (reports/rule605.py). Round lot: tiered by price (100 shares up to $250.00, 40 to "
         "$1,000.00, 10 to $10,000.00, 1 above), the tier decided here by the order's own limit price - an "
         "approximation: the rule decides it by the average closing price on the primary listing exchange over the "
         "Evaluation Period, which the journal does not hold. Unconfirmed, kept as adjustable constants: the round-lot "
         "notional edges ($20k, $50k, $200k of the order's limit price times its shares), the realized-spread "
         "horizons, and the time-to-execution buckets, which are the pre-amendment rule's (0-10 s, 10-30 s, 30-60 s, "
         "60 s-5 min, 5-30 min, then 30 min or later) because the amended edges could not be confirmed. Fractional "
         "orders cannot occur (OUCH shares are integers). A fill a crash recovery journaled after a restart, or a "
         "login's replay brought after the order entry was lost (made before that login), is timed by "
         "the venue's execution timestamp (exec_time_source VENUE_EXECUTION_TIMESTAMP), not the recovery's receipt: "
         "its time to execution, bucket and quote at execution are those of that time, the quote from the journal's "
         "market data, which holds none for the time the engine was down: a quote then is left null and counted, "
         "never the last one before the crash.")


def round_lot(price: np.ndarray) -> np.ndarray:
    """The round lot (shares) of each price4 tier price: ROUND_LOT_TIERS, ROUND_LOT_TOP above them."""
    tops = np.array([top for top, _ in ROUND_LOT_TIERS], np.int64)
    lots = np.array([lot for _, lot in ROUND_LOT_TIERS] + [ROUND_LOT_TOP], np.int32)
    return lots[np.searchsorted(tops, price, side="left")]


def size_category(qty: np.ndarray, price: np.ndarray) -> np.ndarray:
    """SIZE_NAMES code of each order of `qty` shares at limit `price` (price4): an odd lot below its
    round lot, else by notional; the round lot's tier price is the order's price (ROUND_LOT_PRICE)."""
    notional = qty.astype(np.int64, copy=False) * price
    cat = SIZE_NAMES.index("RL_LT_20K") + np.searchsorted(np.array(SIZE_EDGES), notional, side="right")
    return np.where(qty < round_lot(price), SIZE_NAMES.index("ODD_LOT"), cat).astype(np.int8, copy=False)


def order_type_category(is_buy, price, bid, ask, ioc, found) -> np.ndarray:
    """TYPE_NAMES code of each limit order against the quote when it was sent (price4)."""
    mid_x2 = bid + ask
    two_sided = found & (bid > 0) & (ask > 0)
    marketable = two_sided & np.where(is_buy, price >= ask, price <= bid)
    beyond_mid = two_sided & ~marketable & np.where(is_buy, 2 * price > mid_x2, 2 * price < mid_x2)
    at_quote = two_sided & np.where(is_buy, price == bid, price == ask)
    inside = two_sided & ~marketable & ~beyond_mid & ~at_quote & np.where(is_buy, price > bid, price < ask)
    cat = np.full(len(price), 5, np.int8)
    cat[inside] = 3
    cat[at_quote] = 4
    cat[beyond_mid] = 2
    cat[marketable] = np.where(ioc[marketable], 1, 0)
    cat[~two_sided] = 6
    return cat


def tte_bucket(time_to_execution_ns: np.ndarray, known: np.ndarray) -> np.ndarray:
    """TTE_NAMES code of each fill's time to execution; TTE_UNKNOWN where it is unknown or negative."""
    bucket = np.searchsorted(np.array(TTE_EDGES_NS, np.int64), time_to_execution_ns, side="right")
    return np.where(known & (time_to_execution_ns >= 0), bucket, TTE_UNKNOWN).astype(np.int8, copy=False)
