/* The risk gateway's option revaluation in C: see fastgreeks.h for what each function mirrors and
 * the float and error rules. */
#include "fastgreeks.h"

#include <float.h>
#include <math.h>

#define YEAR_NS 31536000000000000LL       /* greeks.YEAR_NS, 365 days: exact as a double */
#define EXACT_INT 9007199254740992LL      /* 2^53 */

/* math.exp: OverflowError when a finite argument overflows. */
static int py_exp(double x, double *out)
{
    double r = exp(x);
    if (isinf(r) && isfinite(x))
        return FG_OVERFLOW;
    *out = r;
    return FG_OK;
}

/* greeks._cdf and greeks._pdf; the constants as the module computes them. */
static double cdf(double x)
{
    return 0.5 * (1.0 + erf(x / sqrt(2.0)));
}

static double pdf(double x)
{
    return (1.0 / sqrt(2.0 * M_PI)) * exp(-0.5 * x * x);
}

int fg_years(int64_t expiry_ns, int64_t now_ns, double *years)
{
    int64_t d;
    if (__builtin_sub_overflow(expiry_ns, now_ns, &d))
        return FG_RANGE;
    if (d >= -EXACT_INT && d <= EXACT_INT) {      /* both exact: one IEEE rounding, as CPython */
        *years = (double)d / (double)YEAR_NS;
        return FG_OK;
    }
    if (d < 0) {          /* only its sign is used: max(years, 0.0) and years <= 0.0 */
        *years = -1.0;
        return FG_OK;
    }
#if LDBL_MANT_DIG == 64
    {
        /* d and YEAR_NS are exact in the 64-bit mantissa; the quotient rounded to 64 bits, then
         * to 53, equals the once-rounded quotient unless the first rounding landed exactly on a
         * midpoint between two doubles (bits below the 53rd are 1000...0): then the Python
         * decides. The quotient is a normal number (0.28 to 293 years), so no subnormal cases. */
        long double q = (long double)d / (long double)YEAR_NS;
        int e;
        uint64_t m = (uint64_t)ldexpl(frexpl(q, &e), 64);
        if ((m & 0x7FF) == 0x400)
            return FG_RANGE;
        *years = (double)q;
        return FG_OK;
    }
#else
    return FG_RANGE;
#endif
}

/* bs_greeks' common part: d1, d2, the discounted strike and (for gamma) spot * sd, with the
 * Python's errors. Returns FG_OK with *expired set when years <= 0 or vol <= 0 (then only
 * `out` price and delta are meaningful and already written). */
static int bs_core(int is_call, double spot, double strike, double years, double vol, double rate,
                   double *out4, int *expired, double *d1, double *d2, double *disc_strike,
                   double *root_t, double *sd)
{
    int rc;
    if (spot <= 0.0 || strike <= 0.0)
        return FG_RISK;
    if (years <= 0.0 || vol <= 0.0) {
        double discount, fwd;
        double t = 0.0 > years ? 0.0 : years;       /* max(years, 0.0) */
        if ((rc = py_exp(-rate * t, &discount)) != FG_OK)
            return rc;
        fwd = spot - strike * discount;
        if (is_call) {
            out4[0] = 0.0 > fwd ? 0.0 : fwd;
            out4[1] = fwd > 0 ? 1.0 : 0.0;
        } else {
            out4[0] = 0.0 > -fwd ? 0.0 : -fwd;
            out4[1] = fwd < 0 ? -1.0 : 0.0;
        }
        out4[2] = 0.0;
        out4[3] = 0.0;
        *expired = 1;
        return FG_OK;
    }
    *expired = 0;
    *root_t = sqrt(years);
    *sd = vol * *root_t;
    double ratio = spot / strike;
    if (ratio <= 0.0)                               /* math.log: x <= 0 is a domain error */
        return FG_VALUE;
    if (*sd == 0.0)
        return FG_ZERODIV;
    *d1 = (log(ratio) + (rate + 0.5 * vol * vol) * years) / *sd;
    *d2 = *d1 - *sd;
    double discount;
    if ((rc = py_exp(-rate * years, &discount)) != FG_OK)
        return rc;
    *disc_strike = strike * discount;
    if (spot * *sd == 0.0)                          /* gamma's division, reached before any return */
        return FG_ZERODIV;
    return FG_OK;
}

int fg_bs_greeks(int is_call, double spot, double strike, double years, double vol, double rate,
                 double *out4)
{
    int expired = 0;
    double d1, d2, ks, root_t, sd;
    int rc = bs_core(is_call, spot, strike, years, vol, rate, out4, &expired, &d1, &d2, &ks, &root_t, &sd);
    if (rc != FG_OK || expired)
        return rc;
    double density = pdf(d1);
    out4[2] = density / (spot * sd);
    out4[3] = spot * density * root_t;
    if (is_call) {
        double n1 = cdf(d1);
        out4[0] = spot * n1 - ks * cdf(d2);
        out4[1] = n1;
    } else {
        double n1 = cdf(-d1);
        out4[0] = ks * cdf(-d2) - spot * n1;
        out4[1] = -n1;
    }
    return FG_OK;
}

int fg_bs_price(int is_call, double spot, double strike, double years, double vol, double rate,
                double *price)
{
    int expired = 0;
    double out4[4], d1, d2, ks, root_t, sd;
    int rc = bs_core(is_call, spot, strike, years, vol, rate, out4, &expired, &d1, &d2, &ks, &root_t, &sd);
    if (rc != FG_OK)
        return rc;
    if (expired)
        *price = out4[0];
    else if (is_call)
        *price = spot * cdf(d1) - ks * cdf(d2);
    else
        *price = ks * cdf(-d2) - spot * cdf(-d1);
    return FG_OK;
}

/* min and max of row[FG_HEAD .. FG_HEAD + n): the first of equals, as CPython's min and max. */
static void bounds(double *row, int n)
{
    double lo = row[FG_HEAD], hi = row[FG_HEAD];
    for (int i = 1; i < n; i++) {
        double x = row[FG_HEAD + i];
        if (x < lo)
            lo = x;
        if (x > hi)
            hi = x;
    }
    row[FG_PNL_LO] = lo;
    row[FG_PNL_HI] = hi;
}

int fg_unit_risk(const fg_option *o, double spot, int64_t now_ns, const double *moves,
                 const double *shifts, int n_grid, double *row)
{
    double years, g[4];
    int rc;
    if (n_grid <= 0)                                /* min(()) raises: the Python decides */
        return FG_RANGE;
    if (o->strike > EXACT_INT || o->strike < -EXACT_INT || o->multiplier > EXACT_INT ||
            o->multiplier < -EXACT_INT)
        return FG_RANGE;
    if ((rc = fg_years(o->expiry_ns, now_ns, &years)) != FG_OK)
        return rc;
    double strike = (double)o->strike / 10000.0;
    double mult = (double)o->multiplier;
    if ((rc = fg_bs_greeks(o->is_call, spot, strike, years, o->vol, o->rate, g)) != FG_OK)
        return rc;
    double base = g[0];
    for (int i = 0; i < n_grid; i++) {
        double v = o->vol + shifts[i];
        double shocked_vol = 1e-6 > v ? 1e-6 : v;   /* max(vol + shift, 1e-6) */
        double shocked;
        if ((rc = fg_bs_price(o->is_call, spot * (1.0 + moves[i]), strike, years, shocked_vol,
                              o->rate, &shocked)) != FG_OK)
            return rc;
        row[FG_HEAD + i] = (shocked - base) * mult;
    }
    row[FG_DELTA] = g[1] * mult;
    row[FG_GAMMA] = g[2] * spot * 0.01 * mult;
    row[FG_VEGA] = g[3] * 0.01 * mult;
    bounds(row, n_grid);
    return FG_OK;
}

int fg_revalue(const fg_option *options, int n_options, double spot, int64_t now_ns,
               const double *moves, const double *shifts, int n_grid, double *rows)
{
    int stride = FG_HEAD + n_grid, rc;
    if (n_grid <= 0)
        return FG_RANGE;
    rows[FG_DELTA] = 1.0;                           /* greeks.underlying_risk */
    rows[FG_GAMMA] = 0.0;
    rows[FG_VEGA] = 0.0;
    for (int i = 0; i < n_grid; i++)
        rows[FG_HEAD + i] = spot * moves[i];
    bounds(rows, n_grid);
    for (int k = 0; k < n_options; k++)
        if ((rc = fg_unit_risk(&options[k], spot, now_ns, moves, shifts, n_grid,
                               rows + (k + 1) * stride)) != FG_OK)
            return rc;
    return FG_OK;
}
