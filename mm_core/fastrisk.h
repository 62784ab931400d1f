/* fastrisk: the risk gateway's order-path windows in C — the submit and modify message-rate
 * windows, each symbol side's drift-collar max/min monotonic queues and the duplicate-order table —
 * compiled into the same cffi module as fastmd. mm_core/risk/windows.py is the one Python wrapper;
 * RiskGateway(compiled=False), whose check() keeps these windows in deques and a dict, is the
 * reference it must equal (tests/risk/test_windows.py proves it on random streams).
 *
 * frk_check is RiskGateway.check's three window checks, in its order, for an order whose earlier
 * checks (through the fair and reference collars) passed:
 *   rate       pop the kind's window (submits for an ENTER, modifies otherwise) of times
 *              <= now - rate_window; FRK_RATE when it still holds >= the kind's maximum
 *              (frk_value: that count)
 *   drift      pop the side's max and min queues of entries with time <= now - drift_window; when
 *              they are not empty, spread = max(price, max) - min(price, min): FRK_DRIFT when it
 *              exceeds drift_band (frk_value: the spread); FRK_EMPTY when one queue holds entries
 *              and the other none (only if time ran backwards, which the gateway refuses before
 *              calling, or a snapshot was altered: the Python raises IndexError there, and so
 *              must its caller)
 *   duplicate  an ENTER while the duplicate window is on: FRK_DUPLICATE when the table holds
 *              (symbol, side, price, qty) with now - last < dup_window (frk_value: now - last)
 * and remembers the order for frk_commit, which records it as allowed: its time in the kind's
 * window, (now, price) pushed on both drift queues (back entries the new price dominates popped
 * first), and for an ENTER while the duplicate window is on, last = now for its key, then, once
 * the table holds >= purge_at keys, every key with last <= now - dup_window dropped (insertion
 * order kept) and purge_at = max(FRK_DUP_PURGE, 2 x keys). frk_rate is the rate step alone (a
 * denial the order meets before the drift collar must still see the rate denial first).
 * frk_check reserves the memory frk_commit needs, so frk_commit cannot fail.
 *
 * Integers: every value the wrapper passes is an int64_t within +-FRK_LIMIT, so no difference
 * overflows; frk_check answers FRK_RANGE (nothing changed) for one outside it, and the wrapper
 * then runs the gateway on the Python windows from then on. Snapshots: the wrapper copies the
 * windows out to the reference's deques and dict (frk_*_copy) and back in (frk_*_load).
 */
#ifndef FASTRISK_H
#define FASTRISK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum frk_rc {
    FRK_PASS = 0,
    FRK_RATE = 1,
    FRK_DRIFT = 2,
    FRK_DUPLICATE = 3,
    FRK_EMPTY = 4,          /* one drift queue empty, the other not (see above) */
    FRK_RANGE = 5,          /* a value outside +-FRK_LIMIT; nothing changed */
    FRK_NOMEM = 6           /* allocation failed; nothing changed */
};

enum frk_const {
    FRK_DUP_PURGE = 4096    /* gateway._DUP_PURGE: keys kept before the first purge */
};

#define FRK_LIMIT 2305843009213693952      /* 2^61 */

typedef struct frk frk;

frk *frk_new(void);
void frk_free(frk *w);

/* The limits' windows (ns; a 0 duplicate window turns the check off) and maxima; FRK_RANGE when
 * one is outside 0..FRK_LIMIT (nothing changed). */
int frk_set_limits(frk *w, int64_t rate_window, int64_t max_submits, int64_t max_modifies,
                   int64_t drift_window, int64_t dup_window);

int frk_check(frk *w, int enter, int64_t now, int64_t symbol_id, int is_buy, int64_t price,
              int64_t qty, int64_t drift_band);
void frk_commit(frk *w);
/* The rate step alone: the kind's window popped, its count returned (-1: now out of range). */
int64_t frk_rate(frk *w, int enter, int64_t now);
int64_t frk_value(const frk *w);

/* Snapshot copies. A queue is (symbol, is_buy, which: 0 max, 1 min); copies are (time, price)
 * pairs front to back; duplicate rows are (symbol, is_buy, price, qty, last) in insertion order. */
size_t frk_rate_len(const frk *w, int enter);
void frk_rate_copy(const frk *w, int enter, int64_t *out);
int frk_rate_load(frk *w, int enter, const int64_t *times, size_t n);
size_t frk_drift_len(const frk *w, int64_t symbol_id, int is_buy, int which);
void frk_drift_copy(const frk *w, int64_t symbol_id, int is_buy, int which, int64_t *out);
int frk_drift_load(frk *w, int64_t symbol_id, int is_buy, int which, const int64_t *pairs, size_t n);
size_t frk_dup_len(const frk *w);
/* The last time an ENTER of this key was recorded in the duplicate table, INT64_MIN when none is
 * (read-only: what the table would compare a new ENTER of the key with). */
int64_t frk_dup_last(const frk *w, int64_t symbol_id, int is_buy, int64_t price, int64_t qty);
int64_t frk_dup_purge_at(const frk *w);
void frk_dup_copy(const frk *w, int64_t *out);
int frk_dup_load(frk *w, const int64_t *rows, size_t n, int64_t purge_at);

#ifdef __cplusplus
}
#endif

#endif
