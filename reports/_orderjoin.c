/* Order-event kernels: token hash index, running remaining quantities and OUCH field decoding
 * (see orderjoin.h). */
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

#define PREFETCH_BLOCK 32     /* slots fetched ahead: a large index is a cache miss per insert */

void oj_index_insert(int64_t *slots, uint64_t mask, const uint8_t *keys, int64_t first, int64_t end)
{
    uint64_t hashes[PREFETCH_BLOCK];
    for (int64_t block = first; block < end; block += PREFETCH_BLOCK) {
        int64_t count = end - block < PREFETCH_BLOCK ? end - block : PREFETCH_BLOCK;
        for (int64_t j = 0; j < count; j++) {
            hashes[j] = token_hash(keys + (size_t)(block + j) * OJ_TOKEN_BYTES);
            __builtin_prefetch(&slots[hashes[j] & mask], 1);
        }
        for (int64_t j = 0; j < count; j++) {       /* in entry order: the latest entry wins */
            int64_t i = block + j;
            const uint8_t *k = keys + (size_t)i * OJ_TOKEN_BYTES;
            for (uint64_t s = hashes[j] & mask;; s = (s + 1) & mask) {
                int64_t e = slots[s];
                if (e < 0 || memcmp(keys + (size_t)e * OJ_TOKEN_BYTES, k, OJ_TOKEN_BYTES) == 0) {
                    slots[s] = i;           /* new token, or a reused one: the latest entry wins */
                    break;
                }
            }
        }
    }
}

static inline int64_t probe(const int64_t *slots, uint64_t mask, const uint8_t *keys,
                            const uint8_t *q, uint64_t h)
{
    for (uint64_t s = h & mask;; s = (s + 1) & mask) {
        int64_t e = slots[s];
        if (e < 0 || memcmp(keys + (size_t)e * OJ_TOKEN_BYTES, q, OJ_TOKEN_BYTES) == 0)
            return e;
    }
}

void oj_index_lookup2(const int64_t *recent, uint64_t recent_mask, const int64_t *slots, uint64_t mask,
                      const uint8_t *keys, const uint8_t *queries, int64_t n, int64_t *out)
{
    uint64_t hashes[PREFETCH_BLOCK];
    for (int64_t block = 0; block < n; block += PREFETCH_BLOCK) {
        int64_t count = n - block < PREFETCH_BLOCK ? n - block : PREFETCH_BLOCK;
        for (int64_t j = 0; j < count; j++) {
            const uint8_t *q = queries + (size_t)(block + j) * OJ_TOKEN_BYTES;
            hashes[j] = token_hash(q);
            out[block + j] = probe(recent, recent_mask, keys, q, hashes[j]);
            if (out[block + j] < 0)
                __builtin_prefetch(&slots[hashes[j] & mask]);
        }
        for (int64_t j = 0; j < count; j++)
            if (out[block + j] < 0)
                out[block + j] = probe(slots, mask, keys, queries + (size_t)(block + j) * OJ_TOKEN_BYTES, hashes[j]);
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

void oj_fields(int64_t n, const uint8_t *raw, int64_t stride, const uint8_t *msg_type, const int64_t *dest,
               int32_t nfields, const int32_t *offset, const int32_t *width, const int64_t *out_width,
               uint8_t **out)
{
    for (int64_t i = 0; i < n; i++) {
        const uint8_t t = msg_type[i];
        const uint8_t *row = raw + (size_t)i * (size_t)stride;
        const size_t d = (size_t)(dest ? dest[i] : i);
        for (int32_t f = 0; f < nfields; f++) {
            const int32_t at = offset[f * 256 + t];
            if (at < 0)
                continue;
            const int32_t w = width[f * 256 + t];
            if (out_width[f] == 0) {
                uint64_t v = 0;
                for (int32_t b = 0; b < w; b++)
                    v = (v << 8) | row[at + b];
                ((int64_t *)out[f])[d] = (int64_t)v;
            } else {
                memcpy(out[f] + d * (size_t)out_width[f], row + at, (size_t)w);
            }
        }
    }
}

void oj_join_keys(int64_t n, const uint8_t *tokens, int64_t stride, uint8_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *t = tokens + (size_t)i * (size_t)stride;
        uint8_t *o = out + (size_t)i * OJ_TOKEN_BYTES;
        for (int b = 0; b < OJ_TOKEN_BYTES; b++)
            o[b] = t[b] == 0x20 ? 0 : t[b];
    }
}

static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline void put_udigits(uint8_t *at, uint64_t value, int width)
{
    for (int k = width - 1; k >= 0; k--) {
        at[k] = (uint8_t)('0' + value % 10);
        value /= 10;
    }
}

static void put_digits(uint8_t *at, int64_t value, int width)
{
    if (value >= 0) {
        put_udigits(at, (uint64_t)value, width);
        return;
    }
    for (int k = width - 1; k >= 0; k--) {      /* floor modulo: a digit even of a negative value */
        int64_t q = floor_div(value, 10);
        at[k] = (uint8_t)('0' + (value - q * 10));
        value = q;
    }
}

void oj_cat_timestamps(int64_t n, const int64_t *ns, uint8_t *out)
{
    const int64_t ns_per_day = 86400LL * 1000000000LL;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *o = out + (size_t)i * OJ_CAT_TIMESTAMP_BYTES;
        int64_t days = floor_div(ns[i], ns_per_day);
        int64_t in_day = ns[i] - days * ns_per_day;
        /* civil from days (H. Hinnant), as timetext.civil */
        int64_t z = days + 719468;
        int64_t era = floor_div(z, 146097);
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int64_t day = doy - (153 * mp + 2) / 5 + 1;
        int64_t month = mp < 10 ? mp + 3 : mp - 9;
        int64_t year = yoe + era * 400 + (month <= 2);
        int64_t secs = in_day / 1000000000LL;
        put_digits(o, year, 4);
        put_digits(o + 4, month, 2);
        put_digits(o + 6, day, 2);
        o[8] = ' ';
        put_digits(o + 9, secs / 3600, 2);
        put_digits(o + 11, secs / 60 % 60, 2);
        put_digits(o + 13, secs % 60, 2);
        o[15] = '.';
        put_digits(o + 16, in_day - secs * 1000000000LL, 9);
    }
}
