/* _fastquote.c: Engine._price_quote in C, bit-identical to the Python (spec in fastquote.h). */
#include "fastquote.h"

#include <math.h>

#define ONE_DOLLAR 10000
#define LIMIT53 9007199254740992.0          /* 2^53: integers below it convert exactly */
#define ILIMIT53 ((int64_t)1 << 53)

static int64_t upper_tick(int half_penny) { return half_penny ? 50 : 100; }

static int in_range(int64_t v) { return v > -ILIMIT53 && v < ILIMIT53; }

/* int(x) for a float: ValueError on NaN, OverflowError on inf, FQ_RANGE beyond 2^53. */
static int to_int(double x, int64_t *out)
{
    if (isnan(x))
        return FQ_VALUE;
    if (isinf(x))
        return FQ_OVERFLOW;
    if (!(x > -LIMIT53 && x < LIMIT53))
        return FQ_RANGE;
    *out = (int64_t)x;                       /* C truncates toward zero, as int() does */
    return FQ_OK;
}

/* Python's a // b for ints, b > 0. */
static int64_t floor_div_i(int64_t a, int64_t b)
{
    int64_t d = a / b;
    return (a % b != 0 && a < 0) ? d - 1 : d;
}

int64_t fq_tick_at(int half_penny, int64_t price4)
{
    return price4 >= ONE_DOLLAR ? upper_tick(half_penny) : 1;
}

/* round_down on an integer-valued price already floored (tick_below's path). */
static int64_t round_down_int(int half_penny, int64_t p)
{
    if (p >= ONE_DOLLAR) {
        int64_t tick = upper_tick(half_penny);
        return p - p % tick;                 /* p > 0: C's % is Python's */
    }
    return p;
}

int fq_round_down(int half_penny, double price, int64_t *out)
{
    if (!isfinite(price) || price < 1)
        return FQ_TICK;
    int64_t p;
    int rc = to_int(floor(price), &p);
    if (rc)
        return rc;
    *out = round_down_int(half_penny, p);
    return FQ_OK;
}

int fq_round_up(int half_penny, double price, int64_t *out)
{
    if (!isfinite(price) || price <= 0)
        return FQ_TICK;
    int64_t p;
    int rc = to_int(ceil(price), &p);
    if (rc)
        return rc;
    if (p > ONE_DOLLAR) {
        int64_t tick = upper_tick(half_penny);
        int64_t rem = p % tick;
        p = rem == 0 ? p : p + tick - rem;
    }
    *out = p;
    return FQ_OK;
}

int64_t fq_tick_above(int half_penny, int64_t price4)
{
    return price4 + fq_tick_at(half_penny, price4);
}

int fq_tick_below(int half_penny, int64_t price4, int64_t *out)
{
    int64_t below = price4 - 1;
    if (below < 1)
        return FQ_TICK;
    *out = round_down_int(half_penny, below);
    return FQ_OK;
}

/* math.log1p as CPython 3.11 calls it: zero returned as is, -1 and below a domain error. */
static int py_log1p(double x, double *out)
{
    if (x == 0.0) {
        *out = x;
        return FQ_OK;
    }
    double r = log1p(x);
    if ((isnan(r) && !isnan(x)) || (isinf(r) && isfinite(x)))
        return FQ_VALUE;
    *out = r;
    return FQ_OK;
}

/* math.sqrt: NaN from a non-NaN argument is a domain error. */
static int py_sqrt(double x, double *out)
{
    double r = sqrt(x);
    if (isnan(r) && !isnan(x))
        return FQ_VALUE;
    *out = r;
    return FQ_OK;
}

/* float ** float for the positive finite bases and exponents glft_depths uses (float_pow):
 * an infinite result from finite operands is an OverflowError. Other operands go to Python. */
static int py_pow(double x, double y, double *out)
{
    if (!(isfinite(x) && isfinite(y) && x > 0.0))
        return FQ_RANGE;
    double r = pow(x, y);
    if (isinf(r))
        return FQ_OVERFLOW;
    *out = r;
    return FQ_OK;
}

void fq_as_depths(double q, double sigma2, const fq_config *c, double *bid, double *ask)
{
    double g = c->gamma;
    double shift = q * g * sigma2 * c->horizon_s;
    double half = 0.5 * g * sigma2 * c->horizon_s + log1p(c->gamma / c->k) / g;
    *bid = shift + half;
    *ask = half - shift;
}

static int as_depths_checked(double q, double sigma2, const fq_config *c, double *bid, double *ask)
{
    double l;
    int rc = py_log1p(c->gamma / c->k, &l);
    if (rc)
        return rc;
    fq_as_depths(q, sigma2, c, bid, ask);
    return FQ_OK;
}

int fq_glft_depths(double q, double sigma2, const fq_config *c, double *bid, double *ask)
{
    double g = c->gamma, k = c->k, l, p, w;
    int rc = py_log1p(g / k, &l);
    if (rc)
        return rc;
    double cc = l / g;
    double den = 2.0 * k * c->arrival_a;        /* Python evaluates the division first */
    if (den == 0.0)
        return FQ_ZERODIV;
    double scaled = sigma2 * g / den;
    rc = py_pow(1.0 + g / k, 1.0 + k / g, &p);
    if (rc)
        return rc;
    rc = py_sqrt(scaled * p, &w);
    if (rc)
        return rc;
    *bid = cc + (2.0 * q + 1.0) * 0.5 * w;
    *ask = cc - (2.0 * q - 1.0) * 0.5 * w;
    return FQ_OK;
}

double fq_widen(double depth, double adverse_move, double adverse_rate, double toxicity,
                double rate_weight, double toxicity_weight, double multiplier)
{
    double move = 0.0 > adverse_move ? 0.0 : adverse_move;       /* max(adverse_move, 0.0) */
    return (depth * (1.0 + rate_weight * adverse_rate) * (1.0 + toxicity_weight * toxicity)
            + 0.5 * move) * multiplier;
}

int fq_quote_prices(double fair, double bid_depth, double ask_depth, int half_penny,
                    int64_t best_bid, int64_t best_ask, int64_t *bid_out, int64_t *ask_out)
{
    double raw_bid = fair - bid_depth;
    double raw_ask = fair + ask_depth;
    int64_t bid = 0, ask = 0;
    int rc;
    if (raw_bid >= 1.0 && (rc = fq_round_down(half_penny, raw_bid, &bid)))
        return rc;
    if (raw_ask > 0 && (rc = fq_round_up(half_penny, raw_ask, &ask)))
        return rc;
    if (bid && best_ask && bid >= best_ask) {
        if (best_ask > 1) {
            if ((rc = fq_tick_below(half_penny, best_ask, &bid)))
                return rc;
        } else {
            bid = 0;
        }
    }
    if (ask && best_bid && ask <= best_bid)
        ask = fq_tick_above(half_penny, best_bid);
    if (bid && ask && ask - bid < fq_tick_at(half_penny, bid))
        ask = fq_tick_above(half_penny, bid);
    *bid_out = bid;
    *ask_out = ask;
    return FQ_OK;
}

double fq_floor_div(double vx, double wx)
{
    double mod = fmod(vx, wx);
    double div = (vx - mod) / wx;
    double floordiv;
    if (mod) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    }
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5)
            floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    return floordiv;
}

int fq_quote_sizes(int64_t position, int64_t limit, int64_t base, int64_t lot, double size_skew,
                   double withdraw_at, int64_t *bid_out, int64_t *ask_out)
{
    if (limit <= 0 || base <= 0 || lot <= 0)
        return FQ_INVENTORY;
    if (!in_range(position) || !in_range(limit) || !in_range(base) || !in_range(lot))
        return FQ_RANGE;
    double frac = (double)(position < 0 ? -position : position) / (double)limit;
    if (1.0 < frac)
        frac = 1.0;
    double adding_f = (double)base * (1.0 - size_skew * frac);
    int64_t adding;
    int rc = to_int(fq_floor_div(adding_f, (double)lot), &adding);
    if (rc)
        return rc;
    if (adding > ILIMIT53 / lot || adding < -ILIMIT53 / lot)   /* adding * lot beyond 2^53 */
        return FQ_RANGE;
    adding *= lot;
    int64_t bid = base, ask = base;
    if (position > 0)
        bid = adding;
    else if (position < 0)
        ask = adding;
    double at = withdraw_at * (double)limit;
    if ((double)position >= at)
        bid = 0;
    if ((double)(-position) >= at)
        ask = 0;
    int64_t room_bid = limit - position, room_ask = limit + position;
    bid = bid < room_bid ? bid : room_bid;
    ask = ask < room_ask ? ask : room_ask;
    bid = bid > 0 ? bid : 0;
    ask = ask > 0 ? ask : 0;
    *bid_out = bid / lot * lot;
    *ask_out = ask / lot * lot;
    return FQ_OK;
}

/* inventory.within_position_cap on sizes fq_quote_sizes gave (whole lots, at least 0). */
int fq_cap_sizes(int64_t position, int64_t cap, int64_t lot, int64_t *bid, int64_t *ask)
{
    if (lot <= 0)
        return FQ_INVENTORY;
    if (!in_range(position) || !in_range(cap) || !in_range(lot))
        return FQ_RANGE;
    int64_t bid_room = cap - position, ask_room = cap + position;
    bid_room = bid_room > 0 ? bid_room / lot * lot : 0;
    ask_room = ask_room > 0 ? ask_room / lot * lot : 0;
    if (bid_room < *bid)
        *bid = bid_room;
    if (ask_room < *ask)
        *ask = ask_room;
    return FQ_OK;
}

/* inventory.within_order_caps: *qty cut to whole lots of one order at px within max_qty shares
 * and max_value (price4 x shares); 0 at px <= 0. The value cap is max_value / px, never
 * qty * px, which could overflow. */
int fq_order_caps(int64_t px, int64_t max_qty, int64_t max_value, int64_t lot, int64_t *qty)
{
    if (lot <= 0)
        return FQ_INVENTORY;
    if (!in_range(px) || !in_range(max_qty) || !in_range(max_value) || !in_range(lot))
        return FQ_RANGE;
    if (px <= 0) {
        *qty = 0;
        return FQ_OK;
    }
    /* max_value < 0 truncates toward 0 where Python floors, but both leave a cap of 0 below */
    int64_t cap = max_value / px;
    if (max_qty < cap)
        cap = max_qty;
    cap = cap > 0 ? cap / lot * lot : 0;
    if (cap < *qty)
        *qty = cap;
    return FQ_OK;
}

int fq_price(const fq_config *c, double fair, int half_penny, double variance_per_s,
             double prior_var_s, int64_t position, int64_t held, double toxicity,
             double recent_markout, double adverse_rate, double spread_multiplier,
             double size_multiplier, int64_t collar_fair_bps, int64_t max_position,
             int64_t max_order_qty, int64_t max_order_value, int reducing, int bid_blocked,
             int ask_blocked, int64_t best_bid, int64_t best_ask, fq_quote *out)
{
    int rc;
    int64_t fair_i;
    if (!in_range(position) || !in_range(held) || !in_range(position - held)
        || !in_range(best_bid) || !in_range(best_ask) || !in_range(c->lot))
        return FQ_RANGE;
    if ((rc = to_int(fair, &fair_i)))
        return rc;
    int64_t tick = fq_tick_at(half_penny, fair_i);
    double sigma2 = variance_per_s;
    if (prior_var_s > 0) {
        double cap_var = prior_var_s * c->max_vol_ratio * c->max_vol_ratio;
        if (cap_var < sigma2)
            sigma2 = cap_var;
    }
    sigma2 /= (double)(tick * tick);
    int64_t net = position - held;
    double q = (double)net / (double)c->lot;
    double bd, ad;
    rc = c->glft ? fq_glft_depths(q, sigma2, c, &bd, &ad) : as_depths_checked(q, sigma2, c, &bd, &ad);
    if (rc)
        return rc;
    out->tick = tick;
    out->sigma2 = sigma2;
    out->q = q;
    out->model_bid = bd;
    out->model_ask = ad;
    double neg = -recent_markout;
    double adverse_move = (neg > 0.0 ? neg : 0.0) / (double)tick;
    /* the half-spread widens, the inventory skew does not (price_reference) */
    double half = 0.5 * (bd + ad), shift = 0.5 * (bd - ad);
    half = fq_widen(half, adverse_move, adverse_rate, toxicity, c->adverse_rate_weight,
                    c->toxicity_weight, spread_multiplier);
    bd = half + shift;
    ad = half - shift;
    if (c->min_depth_ticks > bd)    /* each side at least min_depth_ticks from fair value */
        bd = c->min_depth_ticks;
    if (c->min_depth_ticks > ad)
        ad = c->min_depth_ticks;
    /* Engine._depth_cap */
    int64_t bps = collar_fair_bps < c->max_depth_bps ? collar_fair_bps : c->max_depth_bps;
    double cap = fair * (double)bps / 10000 / (double)tick - 1.0;
    if (c->min_depth_ticks > cap)
        cap = c->min_depth_ticks;
    if (bd > cap)
        bd = cap;
    if (ad > cap)
        ad = cap;
    out->bid_depth = bd;
    out->ask_depth = ad;
    out->cap = cap;
    int64_t bid_px, ask_px;
    if ((rc = fq_quote_prices(fair, bd * (double)tick, ad * (double)tick, half_penny, best_bid,
                              best_ask, &bid_px, &ask_px)))
        return rc;
    if (!in_range(c->quote_size))
        return FQ_RANGE;
    int64_t base;
    if ((rc = to_int((double)c->quote_size * size_multiplier, &base)))
        return rc;
    base = floor_div_i(base, c->lot) * c->lot;
    out->base = base;
    if (base <= 0) {
        out->bid_px = out->bid_qty = out->ask_px = out->ask_qty = 0;
        return FQ_OK;
    }
    /* the tighter of our limit and the gateway's, then its cap on the raw position */
    int64_t limit = max_position < c->position_limit ? max_position : c->position_limit;
    int64_t bid_qty, ask_qty;
    if ((rc = fq_quote_sizes(net, limit, base, c->lot, c->size_skew, c->withdraw_at, &bid_qty,
                             &ask_qty)))
        return rc;
    if ((rc = fq_cap_sizes(position, max_position, c->lot, &bid_qty, &ask_qty)))
        return rc;
    /* each side one order the gateway's size and value checks take at its price */
    if ((rc = fq_order_caps(bid_px, max_order_qty, max_order_value, c->lot, &bid_qty))
        || (rc = fq_order_caps(ask_px, max_order_qty, max_order_value, c->lot, &ask_qty)))
        return rc;
    if (reducing) {     /* the reducing side only, at most |position| (price_reference) */
        if (position >= 0)
            bid_qty = 0;
        else if (bid_qty > -position)
            bid_qty = -position;
        if (position <= 0)
            ask_qty = 0;
        else if (ask_qty > position)
            ask_qty = position;
    }
    if (bid_blocked)
        bid_qty = 0;
    if (ask_blocked)
        ask_qty = 0;
    out->bid_px = bid_px;
    out->bid_qty = bid_qty;
    out->ask_px = ask_px;
    out->ask_qty = ask_qty;
    return FQ_OK;
}
