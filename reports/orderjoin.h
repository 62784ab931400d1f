/* Compiled order-join kernels of the reports (cffi module reports._orderjoin_cffi).
 *
 * oj_index_*: an open-addressing hash index (linear probing) over 14-byte order tokens that
 * live in a caller-owned array (entry i = bytes keys[14*i .. 14*i+13]); the slots array, of a
 * power-of-two size, holds entry numbers or -1 (empty). Inserting entry i over an equal token
 * replaces the older entry, so a lookup finds the latest entry of a reused token.
 * oj_index_lookup2 gives the entry equal to each query, or -1; it probes a small index of the latest entries first (those from some entry on;
 * it stays in cache, and most queries are for orders created shortly before) and the index of
 * every entry only for the queries it misses: the answer is the same as the full index's.
 *
 * oj_leaves: remaining quantity of each event's order after the event, in journal order:
 * an Accepted/Replaced event restates the order's quantity (adds qty), an execution subtracts
 * exec_qty and a cancel subtracts decrement; -1 until the venue has accepted the order once
 * (qty > 0). Group g < nbook: an order of the running book (its totals carried in book_sum and
 * book_started across calls); g >= nbook: an order no ORDER_SENT created, local to this call
 * (local_sum/local_started[g - nbook], zeroed by the caller).
 *
 * The numpy reference of both is in reports/events.py (TokenIndex, leaves_reference); the
 * tests compare them on random inputs.
 */
#ifndef MMAUDIT_ORDERJOIN_H
#define MMAUDIT_ORDERJOIN_H

#include <stdint.h>

#define OJ_TOKEN_BYTES 14

void oj_index_insert(int64_t *slots, uint64_t mask, const uint8_t *keys, int64_t first, int64_t end);
void oj_index_lookup2(const int64_t *recent, uint64_t recent_mask, const int64_t *slots, uint64_t mask,
                      const uint8_t *keys, const uint8_t *queries, int64_t n, int64_t *out);

typedef struct {
    int8_t accepted, replaced, executed, executed_ref, canceled, aiq_canceled;
} oj_event_codes;

void oj_leaves(int64_t n, const int64_t *group, const int8_t *event, const int64_t *qty,
               const int64_t *exec_qty, const int64_t *decrement, const oj_event_codes *codes,
               int64_t nbook, int64_t *book_sum, int64_t *book_started,
               int64_t *local_sum, int64_t *local_started, int64_t *out);

#endif
