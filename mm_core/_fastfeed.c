/* fastfeed: RiskGateway.on_market's common case over a log of feeds (see fastfeed.h). */
#include "fastfeed.h"

#include <math.h>
#include <stddef.h>

#define FFD_FAIR_MAX 4503599627370496.0         /* 2^52: fair values, and their differences, exact */

static int ffd_abs(int64_t v, int64_t *out) {
    if (v == INT64_MIN)
        return 1;
    *out = v < 0 ? -v : v;
    return 0;
}

/* The collar bands of a fair and a reference (RiskGateway._set_bands); 1 on overflow. */
static int ffd_bands(const int64_t *a, int64_t fair, int64_t reference, int64_t out[3]) {
    if (__builtin_mul_overflow(fair, a[FFD_A_FAIR_BPS], &out[0]) ||
        __builtin_mul_overflow(reference, a[FFD_A_REFERENCE_BPS], &out[1]) ||
        __builtin_mul_overflow(reference, a[FFD_A_DRIFT_BPS], &out[2]))
        return 1;
    for (int i = 0; i < 3; i++)         /* both factors >= 0: C division is Python's floor */
        out[i] /= 10000;
    return 0;
}

/* Whether the underlying's group revaluation is due at this feed (RiskGateway._reprice_group);
 * -1 when the C cannot tell exactly. */
static int ffd_reprice_due(const int64_t *a, const int64_t *r, double reprice_move, int64_t fair,
                           int64_t now) {
    int64_t age, priced = r[FFD_PRICED_FAIR];
    if (__builtin_sub_overflow(now, r[FFD_PRICED_NS], &age))
        return -1;
    if (age >= a[FFD_A_REPRICE_NS])
        return 1;
    if (priced < 0 || (double)priced >= FFD_FAIR_MAX)
        return -1;
    int64_t move = fair - priced;       /* both in [0, 2^52): exact, and exact as a double */
    if (move < 0)
        move = -move;
    return (double)move >= (double)priced * reprice_move;
}

uint32_t ffd_apply(int64_t *acct, int64_t *table, uint32_t n_table, double reprice_move,
                   const uint32_t *sym, const double *fair, const int64_t *ns, uint32_t from,
                   uint32_t count, uint32_t *revalue) {
    uint32_t k = from;
    *revalue = 0;
    for (; k < count; k++) {
        uint32_t s = sym[k];
        if (s >= n_table)
            return k;
        int64_t *r = &table[(size_t)s * FFD_N];
        double f = fair[k];
        if (r[FFD_READY] != 1 || !(f > 0.0 && f < FFD_FAIR_MAX))     /* NaN, inf, <= 0, too large */
            return k;
        int64_t price = (int64_t)rint(f), now = ns[k], reference = r[FFD_FEED_REFERENCE];
        int due = r[FFD_UNDERLYING] ? ffd_reprice_due(acct, r, reprice_move, price, now) : 0;
        if (due < 0)
            return k;
        int64_t bands[3] = {r[FFD_FAIR_BAND], r[FFD_REFERENCE_BAND], r[FFD_DRIFT_BAND]};
        int moved = price != r[FFD_FAIR] || reference != r[FFD_REFERENCE];
        if (moved && ffd_bands(acct, price, reference, bands))
            return k;
        int64_t notional, old = r[FFD_NOTIONAL], gross = acct[FFD_A_GROSS], net = acct[FFD_A_NET];
        int64_t pnl, new_abs, old_abs;
        if (__builtin_mul_overflow(r[FFD_POSITION], price, &notional) ||
            __builtin_mul_overflow(notional, r[FFD_MULTIPLIER], &notional))
            return k;
        if (notional != old) {
            if (ffd_abs(notional, &new_abs) || ffd_abs(old, &old_abs) ||
                __builtin_add_overflow(gross, new_abs - old_abs, &gross) ||
                __builtin_sub_overflow(notional, old, &pnl) ||
                __builtin_add_overflow(net, pnl, &net))
                return k;
        }
        if (__builtin_add_overflow(acct[FFD_A_CASH], net, &pnl))
            return k;
        /* nothing can fail from here: the feed is applied */
        r[FFD_MD_NS] = now;
        if (moved) {
            r[FFD_FAIR] = price;
            r[FFD_REFERENCE] = reference;
            r[FFD_FAIR_BAND] = bands[0];
            r[FFD_REFERENCE_BAND] = bands[1];
            r[FFD_DRIFT_BAND] = bands[2];
        }
        r[FFD_NOTIONAL] = notional;
        r[FFD_APPLIED] = 1;
        acct[FFD_A_GROSS] = gross;
        acct[FFD_A_NET] = net;
        if (pnl > acct[FFD_A_PEAK])
            acct[FFD_A_PEAK] = pnl;
        if (due) {                      /* the caller revalues the group now, then goes on */
            *revalue = 1;
            return k + 1;
        }
    }
    return k;
}
