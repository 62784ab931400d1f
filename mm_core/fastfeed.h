/* fastfeed: the risk gateway's market-data feeds (RiskGateway.on_market's common case: a known
 * symbol whose book is not stale, a finite positive fair value, a positive integer reference) over
 * a log of feeds in one call, compiled into the same cffi module as fastmd. mm_core/risk/feedlog.py
 * is the one Python wrapper; RiskGateway.on_market, feed by feed, is the reference it must equal
 * (tests/risk/test_feed_log.py proves it on whole gateways).
 *
 * Per feed, as on_market does it: md_ns = the feed's time; fair = round(fair value) (half to even,
 * as CPython's round of a float: rint in the default rounding mode); when fair or reference moved,
 * the collar bands (price4 x bps // 10_000); the mark (notional = position x fair x multiplier,
 * gross and net moved by its change, the P&L peak raised to cash + net). The gateway's Python
 * objects are read into a table before the call and written back after it, so only the symbols
 * of the log cost Python work, not each feed.
 *
 * A feed is not applied, and the call returns its index, when the Python must take it: its row is
 * not ready (unknown or stale symbol, values the C does not hold exactly), the fair value is not a
 * finite number in (0, 2^52), or any integer step would leave int64_t (CPython's integers do not
 * overflow). Nothing of that feed is written. A feed of an option group's underlying on which the
 * group's revaluation is due (it moved REPRICE_MOVE, or REPRICE_NS passed, since the group was
 * last priced) is applied and ends the call: *revalue is set, and the caller revalues the group
 * (RiskGateway._refresh_group, at that feed's time) before it calls again from the index returned.
 */
#ifndef FASTFEED_H
#define FASTFEED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A symbol's row in the table (FFD_N int64_t per symbol, indexed by symbol id), and the account's
 * slots (FFD_A_N int64_t). Flat arrays, so the wrapper fills a row with one slice assignment. */
enum ffd_row {
    FFD_FAIR = 0,               /* in/out: price4, 0 = none yet */
    FFD_REFERENCE = 1,          /* in/out: price4 */
    FFD_MD_NS = 2,              /* in/out: time of the last feed */
    FFD_NOTIONAL = 3,           /* in/out: position x fair x multiplier */
    FFD_FAIR_BAND = 4,          /* in/out: collar half-widths, price4 */
    FFD_REFERENCE_BAND = 5,     /* in/out */
    FFD_DRIFT_BAND = 6,         /* in/out */
    FFD_POSITION = 7,           /* in */
    FFD_MULTIPLIER = 8,         /* in */
    FFD_FEED_REFERENCE = 9,     /* in: the reference price each feed of this symbol carries */
    FFD_UNDERLYING = 10,        /* in: 1 when an option group's underlying (its feeds may revalue) */
    FFD_PRICED_FAIR = 11,       /* in: underlying only: its group's price4 at the last revaluation */
    FFD_PRICED_NS = 12,         /* in: underlying only: that revaluation's time */
    FFD_READY = 13,             /* in: 1 when the caller filled this row for the C path */
    FFD_APPLIED = 14,           /* out: set to 1 when a feed of the symbol was applied */
    FFD_N = 15,
};

enum ffd_account {
    FFD_A_CASH = 0,             /* in: price4 x shares, from fills */
    FFD_A_GROSS = 1,            /* in/out: sum of |notional| */
    FFD_A_NET = 2,              /* in/out: sum of notional */
    FFD_A_PEAK = 3,             /* in/out: the P&L peak */
    FFD_A_FAIR_BPS = 4,         /* in: collar widths in basis points (0 .. 10_000) */
    FFD_A_REFERENCE_BPS = 5,    /* in */
    FFD_A_DRIFT_BPS = 6,        /* in */
    FFD_A_REPRICE_NS = 7,       /* in: gateway.REPRICE_NS */
    FFD_A_N = 8,
};

/* Applies feeds from..count-1 in order (feed k: symbol sym[k] at fair value fair[k], time ns[k])
 * to `table` and `acct`; returns the index of the first feed it did not apply (count when it
 * applied all of them), with *revalue 1 when it stopped after a feed that is due to revalue its
 * group (the feed before the index returned), else 0. */
uint32_t ffd_apply(int64_t *acct,                 /* in/out: [FFD_A_N] account slots */
                   int64_t *table,                /* in/out: [n_table * FFD_N] rows by symbol id */
                   uint32_t n_table,              /* rows in table */
                   double reprice_move,           /* gateway.REPRICE_MOVE */
                   const uint32_t *sym,           /* [count] the feeds' symbols */
                   const double *fair,            /* [count] their fair values */
                   const int64_t *ns,             /* [count] their times */
                   uint32_t from,                 /* the first feed to apply */
                   uint32_t count,                /* one past the last feed */
                   uint32_t *revalue);            /* OUT: 1 when the last feed applied revalues */

#ifdef __cplusplus
}
#endif

#endif
