/* fastgreeks: the risk gateway's revaluation of an option group (greeks.unit_risk of every option
 * on one underlying, and greeks.underlying_risk of the underlying) in one C call, compiled into
 * the same cffi module as fastmd. mm_core/risk/greekbatch.py is the one Python wrapper; the Python
 * functions of mm_core/risk/greeks.py are the reference it must equal bit for bit
 * (tests/risk/test_fastgreeks.py proves it on the functions and on whole gateways).
 *
 * Each step mirrors, line by line:
 *   fg_years        (expiry_ns - now_ns) / YEAR_NS, CPython's correctly rounded int / int
 *   fg_bs_greeks    greeks.bs_greeks (price, delta, gamma, vega per unit of underlying)
 *   fg_bs_price     greeks.bs_price (bs_greeks' price; its errors, gamma's division included)
 *   fg_unit_risk    greeks.unit_risk, and min / max of its scenario P&L (the gateway's pnl_lo/hi)
 *   fg_revalue      greeks.underlying_risk then fg_unit_risk of each option, one row each
 *
 * Float rules (as fastquote.h): the same operations in the same order as the Python (a*b*c is
 * (a*b)*c, -0.5*x*x is ((-0.5)*x)*x); max(a, b) is `b > a ? b : a` and min picks the first of
 * equals, as CPython's builtins; erf, exp, log and sqrt are libm's, which CPython's math module
 * calls. Built without -ffast-math or -march and with -ffp-contract=off: no fused multiply-add.
 * Integers: strike / 10_000 and int * float convert exactly below 2^53 (then one IEEE rounding,
 * as CPython); the time to expiry is rounded once from the exact quotient (through the x87 long
 * double when the nanoseconds exceed 2^53, detecting the one case where that could round twice).
 *
 * Errors: where the Python raises, these return the code of its exception (RiskError for a spot or
 * strike not positive, ValueError for math.log's domain, OverflowError for math.exp,
 * ZeroDivisionError for a float division by zero); FG_RANGE where the C cannot mirror the Python
 * exactly (an integer beyond int64_t or 2^53 where it matters, an empty scenario grid). On any code
 * other than FG_OK the wrapper runs the Python reference, which raises the same exception or
 * computes the answer.
 */
#ifndef FASTGREEKS_H
#define FASTGREEKS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fg_rc {
    FG_OK = 0,
    FG_RISK = 1,          /* mm_core.risk.RiskError: spot and strike must be positive */
    FG_VALUE = 2,         /* ValueError (math.log's domain) */
    FG_OVERFLOW = 3,      /* OverflowError (math.exp) */
    FG_ZERODIV = 4,       /* ZeroDivisionError */
    FG_RANGE = 5          /* outside what the C mirrors exactly: the Python decides */
};

/* A row of fg_revalue's output: delta, gamma, vega (the gateway's limit units, per contract),
 * the min and max of the scenario P&L, then the P&L of each scenario. */
enum fg_row { FG_DELTA = 0, FG_GAMMA = 1, FG_VEGA = 2, FG_PNL_LO = 3, FG_PNL_HI = 4, FG_HEAD = 5 };

/* One option as greeks.OptionParams holds it (strike in price4). */
typedef struct fg_option {
    int64_t strike;
    int64_t expiry_ns;
    int64_t multiplier;
    double vol;
    double rate;
    int is_call;
} fg_option;

int fg_years(int64_t expiry_ns, int64_t now_ns, double *years);
int fg_bs_greeks(int is_call, double spot, double strike, double years, double vol, double rate,
                 double *out4);
int fg_bs_price(int is_call, double spot, double strike, double years, double vol, double rate,
                double *price);
int fg_unit_risk(const fg_option *option, double spot, int64_t now_ns, const double *moves,
                 const double *shifts, int n_grid, double *row);
/* rows: (1 + n_options) x (FG_HEAD + n_grid) doubles; row 0 the underlying, then each option. */
int fg_revalue(const fg_option *options, int n_options, double spot, int64_t now_ns,
               const double *moves, const double *shifts, int n_grid, double *rows);

#ifdef __cplusplus
}
#endif

#endif
