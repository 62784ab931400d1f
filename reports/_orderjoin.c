/* Order-join kernels: token hash index and running remaining quantities (see orderjoin.h). */
#include <string.h>

#include "orderjoin.h"

static inline uint64_t token_hash(const uint8_t *k)
{
    uint64_t a, b = 0;
    memcpy(&a, k, 8);
    memcpy(&b, k + 8, OJ_TOKEN_BYTES - 8);
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

void oj_index_insert(int64_t *slots, uint64_t mask, const uint8_t *keys, int64_t first, int64_t end)
{
    for (int64_t i = first; i < end; i++) {
        const uint8_t *k = keys + (size_t)i * OJ_TOKEN_BYTES;
        uint64_t s = token_hash(k) & mask;
        for (;;) {
            int64_t e = slots[s];
            if (e < 0 || memcmp(keys + (size_t)e * OJ_TOKEN_BYTES, k, OJ_TOKEN_BYTES) == 0) {
                slots[s] = i;               /* new token, or a reused one: the latest entry wins */
                break;
            }
            s = (s + 1) & mask;
        }
    }
}

void oj_index_lookup(const int64_t *slots, uint64_t mask, const uint8_t *keys,
                     const uint8_t *queries, int64_t n, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *q = queries + (size_t)i * OJ_TOKEN_BYTES;
        uint64_t s = token_hash(q) & mask;
        int64_t found = -1;
        for (;;) {
            int64_t e = slots[s];
            if (e < 0)
                break;
            if (memcmp(keys + (size_t)e * OJ_TOKEN_BYTES, q, OJ_TOKEN_BYTES) == 0) {
                found = e;
                break;
            }
            s = (s + 1) & mask;
        }
        out[i] = found;
    }
}

void oj_leaves(int64_t n, const int64_t *group, const int8_t *event, const int64_t *qty,
               const int64_t *exec_qty, const int64_t *decrement, const oj_event_codes *codes,
               int64_t nbook, int64_t *book_sum, int64_t *book_started,
               int64_t *local_sum, int64_t *local_started, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        int8_t e = event[i];
        int64_t g = group[i];
        int64_t start = (e == codes->accepted || e == codes->replaced) ? qty[i] : 0;
        int64_t reduce = (e == codes->executed || e == codes->executed_ref) ? exec_qty[i] : 0;
        if (e == codes->canceled || e == codes->aiq_canceled)
            reduce += decrement[i];
        int64_t *sum = g < nbook ? &book_sum[g] : &local_sum[g - nbook];
        int64_t *started = g < nbook ? &book_started[g] : &local_started[g - nbook];
        /* unsigned: wraps like numpy's int64 arithmetic instead of being undefined */
        *sum = (int64_t)((uint64_t)*sum + (uint64_t)start - (uint64_t)reduce);
        if (start > 0)
            (*started)++;
        out[i] = *started > 0 ? *sum : -1;
    }
}
