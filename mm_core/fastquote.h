/* fastquote: the engine's quote pricing (Engine._price_quote) as one pure C function of scalars,
 * compiled into the same cffi module as fastmd and fastsig. mm_core/quotepricer.py is the one
 * Python wrapper; quotepricer.price_reference is the Python reference it must equal bit for bit
 * (tests/mm_core/test_quotepricer.py proves it step by step and on whole sessions).
 *
 * Each step mirrors, line by line:
 *   fq_tick_at          TickTable.tick_at (ticks.py): upper tick ($0.01, or $0.005 with the
 *                       half-penny tier) at or above $1.00, $0.0001 below
 *   fq_round_down       TickTable.round_down: floor, then down to the upper tick at or above $1.00
 *   fq_round_up         TickTable.round_up: ceil, then up to the upper tick above $1.00
 *   fq_tick_above/below TickTable.tick_above / tick_below
 *   fq_as_depths        inventory.as_depths        fq_glft_depths  inventory.glft_depths (xi = 0)
 *   fq_widen            spread.widen               fq_quote_prices spread.quote_prices
 *   fq_floor_div        CPython's float // (Objects/floatobject.c _float_div_mod, floor part)
 *   fq_quote_sizes      inventory.quote_sizes
 *   fq_cap_sizes        inventory.within_position_cap
 *   fq_order_caps       inventory.within_order_caps
 *   fq_price            Engine._price_quote: tick at int(fair); the volatility cap
 *                       min(var, prior·r·r) when prior > 0; σ² in ticks²; q = (pos − held)/lot;
 *                       the model depths; their half-spread widened (the skew kept); each side
 *                       at least min_depth_ticks; Engine._depth_cap;
 *                       quote_prices; base = int(quote_size·size_mult) // lot · lot (0 → all zero);
 *                       quote_sizes against min(position_limit, max_position), then cut to
 *                       max_position on the raw position (cap_sizes), then each side to one
 *                       order the gateway's size and value checks take at its price
 *                       (order_caps: max_order_qty, max_order_value / price, whole lots);
 *                       REDUCING keeps only the side toward flat (on the raw position, hedges
 *                       not subtracted); a guard-blocked side gets size 0.
 *
 * Float rules: every float is computed with the same operations in the same order as the
 * Python (a·b·c is (a·b)·c; min(a, b) is `b < a ? b : a`, max(a, b) is `b > a ? b : a`, as
 * CPython's builtins pick the first of equals, so NaN and signed zeros fall out the same);
 * log1p, sqrt and pow are libm's, as CPython's math.log1p, math.sqrt and float ** call them.
 * The module is built without -ffast-math or -march and with -ffp-contract=off: no fused
 * multiply-add. Integers: int/int true division is done on doubles of integers below 2^53
 * (exact conversions, one IEEE rounding, as CPython does); int(x) truncates; int // lot floors.
 *
 * Errors: where the Python raises, fq_price returns the code of the exception it raises
 * (TickError for a non-finite price to round, ValueError for math.sqrt's domain or int(nan),
 * OverflowError for float ** overflow or int(inf), ZeroDivisionError, InventoryError). Python
 * integers are unbounded and these are int64_t, so any integer input or float-to-int conversion
 * at or beyond 2^53 in magnitude returns FQ_RANGE, as does float ** on a non-finite operand (an
 * infinite γ/k: CPython's special cases are not mirrored). On any code other than FQ_OK the
 * wrapper runs the Python reference, which raises the same exception or computes the answer.
 */
#ifndef FASTQUOTE_H
#define FASTQUOTE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fq_rc {
    FQ_OK = 0,
    FQ_TICK = 1,          /* ticks.TickError */
    FQ_VALUE = 2,         /* ValueError (math domain, int(nan)) */
    FQ_OVERFLOW = 3,      /* OverflowError (float ** overflow, int(inf)) */
    FQ_ZERODIV = 4,       /* ZeroDivisionError */
    FQ_INVENTORY = 5,     /* inventory.InventoryError */
    FQ_RANGE = 6          /* an integer at or beyond 2^53: outside what int64_t mirrors exactly */
};

/* The engine configuration fq_price reads, packed once (EngineConfig and its SkewParams). */
typedef struct fq_config {
    int glft;                     /* skew.model == "glft" (else "as") */
    double gamma, k, arrival_a, horizon_s;
    int64_t lot;
    double max_vol_ratio, min_depth_ticks, adverse_rate_weight, toxicity_weight;
    int64_t max_depth_bps, quote_size, position_limit;
    double size_skew, withdraw_at;
} fq_config;

/* The answer and the intermediate floats, for the step-by-step proofs. */
typedef struct fq_quote {
    int64_t tick;
    double sigma2, q, model_bid, model_ask, bid_depth, ask_depth, cap;
    int64_t base;
    int64_t bid_px, bid_qty, ask_px, ask_qty;
} fq_quote;

int64_t fq_tick_at(int half_penny, int64_t price4);
int fq_round_down(int half_penny, double price, int64_t *out);
int fq_round_up(int half_penny, double price, int64_t *out);
int64_t fq_tick_above(int half_penny, int64_t price4);
int fq_tick_below(int half_penny, int64_t price4, int64_t *out);
void fq_as_depths(double q, double sigma2, const fq_config *c, double *bid, double *ask);
int fq_glft_depths(double q, double sigma2, const fq_config *c, double *bid, double *ask);
double fq_widen(double depth, double adverse_move, double adverse_rate, double toxicity,
                double rate_weight, double toxicity_weight, double multiplier);
int fq_quote_prices(double fair, double bid_depth, double ask_depth, int half_penny,
                    int64_t best_bid, int64_t best_ask, int64_t *bid, int64_t *ask);
double fq_floor_div(double vx, double wx);
int fq_quote_sizes(int64_t position, int64_t limit, int64_t base, int64_t lot, double size_skew,
                   double withdraw_at, int64_t *bid, int64_t *ask);
int fq_cap_sizes(int64_t position, int64_t cap, int64_t lot, int64_t *bid, int64_t *ask);
int fq_order_caps(int64_t px, int64_t max_qty, int64_t max_value, int64_t lot, int64_t *qty);
/* Engine._price_quote. Arguments as the engine reads them: fair value; the symbol's tick table
 * has the $0.005 tier; VolEstimator.variance_per_s and .prior_var_s; the inventory position and
 * the shares held as hedges for other symbols; guard toxicity; the symbol's recent markout and
 * adverse rate; the gateway's spread and size multipliers and collar_fair_bps; the symbol's
 * max_position in the gateway's limits; the most shares and value (price4 x shares, over the
 * multiplier) one order in it may carry (RiskGateway.order_caps, safe mode's cut included);
 * state is REDUCING; the guard blocks the bid / ask side now; the market's best bid and ask. */
int fq_price(const fq_config *c, double fair, int half_penny, double variance_per_s,
             double prior_var_s, int64_t position, int64_t held, double toxicity,
             double recent_markout, double adverse_rate, double spread_multiplier,
             double size_multiplier, int64_t collar_fair_bps, int64_t max_position,
             int64_t max_order_qty, int64_t max_order_value, int reducing, int bid_blocked,
             int ask_blocked, int64_t best_bid, int64_t best_ask, fq_quote *out);

#ifdef __cplusplus
}
#endif

#endif
