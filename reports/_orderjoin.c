/* Order-event kernels: token hash index, running remaining quantities, OUCH field decoding, the
 * fused merge of a chunk's order events and column gathers (see orderjoin.h). */
#include <stdlib.h>
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

/* Two 14-byte tokens equal (two overlapping 8-byte loads each: no call, no byte loop) */
static inline int same_token(const uint8_t *a, const uint8_t *b)
{
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + OJ_TOKEN_BYTES - 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + OJ_TOKEN_BYTES - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

#define PREFETCH_BLOCK 32     /* slots fetched ahead: a large index is a cache miss per insert */

void oj_index_insert(int32_t *slots, uint64_t mask, const uint8_t *keys, int64_t first, int64_t end,
                     int32_t *replaced)
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
                int32_t e = slots[s];
                if (e < 0 || same_token(keys + (size_t)e * OJ_TOKEN_BYTES, k)) {
                    slots[s] = (int32_t)i;           /* new token, or a reused one: the latest entry wins */
                    if (replaced)
                        replaced[i - first] = e;
                    break;
                }
            }
        }
    }
}

static inline int64_t probe(const int32_t *slots, uint64_t mask, const uint8_t *keys,
                            const uint8_t *q, uint64_t h)
{
    for (uint64_t s = h & mask;; s = (s + 1) & mask) {
        int32_t e = slots[s];
        if (e < 0 || same_token(keys + (size_t)e * OJ_TOKEN_BYTES, q))
            return e;
    }
}

void oj_index_lookup2(const int32_t *recent, uint64_t recent_mask, const int32_t *slots, uint64_t mask,
                      const uint8_t *keys, const uint8_t *queries, int64_t n, int64_t *out)
{
    /* a block of queries in stages, each prefetching what the next one reads (the slot, then the
     * entry's key), so the cache misses of a block overlap instead of following one another */
    uint64_t hashes[PREFETCH_BLOCK];
    for (int64_t block = 0; block < n; block += PREFETCH_BLOCK) {
        int64_t count = n - block < PREFETCH_BLOCK ? n - block : PREFETCH_BLOCK;
        for (int64_t j = 0; j < count; j++) {
            hashes[j] = token_hash(queries + (size_t)(block + j) * OJ_TOKEN_BYTES);
            __builtin_prefetch(&recent[hashes[j] & recent_mask]);
        }
        for (int64_t j = 0; j < count; j++) {
            int32_t e = recent[hashes[j] & recent_mask];
            if (e >= 0)
                __builtin_prefetch(keys + (size_t)e * OJ_TOKEN_BYTES);
        }
        for (int64_t j = 0; j < count; j++) {
            const uint8_t *q = queries + (size_t)(block + j) * OJ_TOKEN_BYTES;
            out[block + j] = probe(recent, recent_mask, keys, q, hashes[j]);
            if (out[block + j] < 0)
                __builtin_prefetch(&slots[hashes[j] & mask]);
        }
        for (int64_t j = 0; j < count; j++) {
            int32_t e = out[block + j] < 0 ? slots[hashes[j] & mask] : -1;
            if (e >= 0)
                __builtin_prefetch(keys + (size_t)e * OJ_TOKEN_BYTES);
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
        if (e == codes->modified)            /* restates the open shares: no running total before */
            *sum = qty[i];
        else
            *sum = (int64_t)((uint64_t)*sum + (uint64_t)start - (uint64_t)reduce);
        if (e == codes->unknown)
            *started = -1;                   /* a quantity never known: unknown from now on */
        else if ((start > 0 || e == codes->modified) && *started >= 0)
            (*started)++;
        out[i] = *started > 0 ? *sum : *started < 0 ? -2 : -1;
    }
}

/* 8 bytes with each space turned into a NUL (the exact zero-byte test of x ^ spaces, no carries) */
static inline uint64_t unspace8(uint64_t x)
{
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7Full;
    const uint64_t y = x ^ 0x2020202020202020ull;
    const uint64_t zero = ~(((y & low7) + low7) | y | low7);   /* 0x80 where a byte of y is 0 */
    return x & ~((zero >> 7) * 0xFF);
}

static inline void join_key(const uint8_t *t, uint8_t *o)
{
    uint64_t a, b;                 /* bytes 0-7 and 6-13: the overlap gets the same bytes twice */
    memcpy(&a, t, 8);
    memcpy(&b, t + OJ_TOKEN_BYTES - 8, 8);
    a = unspace8(a);
    b = unspace8(b);
    memcpy(o, &a, 8);
    memcpy(o + OJ_TOKEN_BYTES - 8, &b, 8);
}

/* A field set compiled per message type: the fields type t carries, in field order, each with
 * how it is stored (the common widths as fixed-size copies, not calls). */
enum { ST_INT64, ST_BYTE, ST_BYTES8, ST_BYTES14, ST_BYTES };

typedef struct {
    int16_t field, at, width, store;
} field_op;

typedef struct {
    field_op ops[256][OJ_MAX_FIELDS];
    uint8_t count[256];
    int16_t store[OJ_MAX_FIELDS];
    int32_t span[256];               /* bytes type t's fields reach: a message holding them all */
} field_program;

static int store_kind(int64_t out_width)
{
    return out_width == 0 ? ST_INT64 : out_width < 0 ? ST_BYTE : out_width == 8 ? ST_BYTES8
         : out_width == OJ_TOKEN_BYTES ? ST_BYTES14 : ST_BYTES;
}

static int compile_fields(const oj_field_set *fs, field_program *p)
{
    if (fs->nfields > OJ_MAX_FIELDS)
        return -1;
    for (int32_t f = 0; f < fs->nfields; f++)
        p->store[f] = (int16_t)store_kind(fs->out_width[f]);
    for (int t = 0; t < 256; t++) {
        p->count[t] = 0;
        p->span[t] = 0;
        for (int32_t f = 0; f < fs->nfields; f++)
            if (fs->offset[f * 256 + t] >= 0) {
                p->ops[t][p->count[t]++] = (field_op){(int16_t)f, (int16_t)fs->offset[f * 256 + t],
                                                      (int16_t)fs->width[f * 256 + t], p->store[f]};
                if (fs->offset[f * 256 + t] + fs->width[f * 256 + t] > p->span[t])
                    p->span[t] = fs->offset[f * 256 + t] + fs->width[f * 256 + t];
            }
    }
    return 0;
}

static inline __attribute__((always_inline)) void clear_fields(const oj_field_set *fs, const field_program *p, size_t d)
{
    static const uint8_t zeros[16];
    for (int32_t f = 0; f < fs->nfields; f++) {
        uint8_t *o = fs->out[f];
        switch (p->store[f]) {
        case ST_INT64: ((int64_t *)o)[d] = 0; break;
        case ST_BYTE: o[d] = 0; break;
        case ST_BYTES8: memcpy(o + d * 8, zeros, 8); break;
        case ST_BYTES14: memcpy(o + d * OJ_TOKEN_BYTES, zeros, OJ_TOKEN_BYTES); break;
        default: memset(o + d * (size_t)fs->out_width[f], 0, (size_t)fs->out_width[f]);
        }
    }
}

static inline uint64_t big_endian(const uint8_t *p, int w)
{
    switch (w) {
    case 1: return p[0];
    case 2: { uint16_t x; memcpy(&x, p, 2); return __builtin_bswap16(x); }
    case 4: { uint32_t x; memcpy(&x, p, 4); return __builtin_bswap32(x); }
    case 8: { uint64_t x; memcpy(&x, p, 8); return __builtin_bswap64(x); }
    default: {
        uint64_t v = 0;
        for (int b = 0; b < w; b++)
            v = (v << 8) | p[b];
        return v;
    }
    }
}

/* The fields message type t carries, from `row` into output row d (the others left as they are),
 * those that end within the `held` bytes of the row's message: all of them unless it is cut short. */
static inline __attribute__((always_inline)) void put_fields(const oj_field_set *fs, const field_program *p,
                                                             const uint8_t *row, uint8_t t, size_t d, int32_t held)
{
    const int whole = held >= p->span[t];
    for (int k = 0; k < p->count[t]; k++) {
        const field_op op = p->ops[t][k];
        if (!whole && op.at + op.width > held)
            continue;                        /* past the bytes the journal holds: not invented */
        uint8_t *o = fs->out[op.field];
        const uint8_t *in = row + op.at;
        switch (op.store) {
        case ST_INT64: ((int64_t *)o)[d] = (int64_t)big_endian(in, op.width); break;
        case ST_BYTE: o[d] = (uint8_t)big_endian(in, op.width); break;
        case ST_BYTES8: memcpy(o + d * 8, in, 8); break;
        case ST_BYTES14: memcpy(o + d * OJ_TOKEN_BYTES, in, OJ_TOKEN_BYTES); break;
        default: memcpy(o + d * (size_t)fs->out_width[op.field], in, (size_t)op.width);
        }
    }
}

/* Every field of the set at output row d: the message's where type t carries it, else 0 / NULs
 * (a bytes field is as wide as its output: _table checks one width per field). */
static inline __attribute__((always_inline)) void decode_fields(const oj_field_set *fs, const field_program *p,
                                                                const uint8_t *row, uint8_t t, size_t d,
                                                                int32_t held)
{
    clear_fields(fs, p, d);
    put_fields(fs, p, row, t, d, held);
}

/* The bytes of a framed message a record holds: raw_len, within the raw field and the SoupBinTCP
 * length prefix (+ its own 2 bytes) */
static inline int32_t held_bytes(const uint8_t *rec, const oj_records *r)
{
    uint16_t raw_len;
    memcpy(&raw_len, rec + r->raw_len, sizeof raw_len);
    const uint8_t *raw = rec + r->raw;
    int32_t held = raw_len < r->raw_cap ? raw_len : r->raw_cap;
    const int32_t soup = ((int32_t)raw[0] << 8 | raw[1]) + 2;
    return soup < held ? soup : held;
}

int oj_fields(int64_t n, const uint8_t *raw, int64_t stride, const uint8_t *msg_type, const int64_t *dest,
              const int32_t *held, const oj_field_set *fs)
{
    field_program *p = malloc(sizeof *p);
    if (p == NULL)
        return -2;
    if (compile_fields(fs, p)) {
        free(p);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        put_fields(fs, p, raw + (size_t)i * (size_t)stride, msg_type[i], (size_t)(dest ? dest[i] : i),
                   held ? held[i] : INT32_MAX);
    free(p);
    return 0;
}

/* Row k of a column of `size`-byte values := the value at `in` (the common sizes as fixed copies) */
static inline void copy_value(uint8_t *column, size_t k, const uint8_t *in, int32_t size)
{
    uint8_t *o = column + k * (size_t)size;
    switch (size) {
    case 1: *o = *in; break;
    case 2: memcpy(o, in, 2); break;
    case 4: memcpy(o, in, 4); break;
    case 8: memcpy(o, in, 8); break;
    default: memcpy(o, in, (size_t)size);
    }
}

int64_t oj_merge_events(const oj_records *sent, const oj_field_set *inbound, const oj_records *venue,
                        const oj_venue_rule *rule, const oj_field_set *outbound,
                        const int8_t *sent_lut, const int8_t *venue_lut, oj_merged *out, oj_creators *created)
{
    field_program *programs = malloc(2 * sizeof *programs);
    if (programs == NULL)
        return -2;
    const field_program *in_prog = &programs[0], *out_prog = &programs[1];
    if (inbound->nfields != 3 || compile_fields(inbound, &programs[0]) || compile_fields(outbound, &programs[1])) {
        free(programs);
        return -1;
    }
    /* the inbound side and stock of every ORDER_SENT (its wire side; the stock stays in inbound) */
    for (int64_t i = 0; i < sent->n; i++) {
        const uint8_t *rec = sent->rows + (size_t)i * (size_t)sent->stride;
        decode_fields(inbound, in_prog, rec + sent->raw, rec[sent->msg_type], (size_t)i, held_bytes(rec, sent));
    }
    const int64_t *in_side = (const int64_t *)inbound->out[0];
    const uint8_t *in_stock = inbound->out[1], *in_capacity = inbound->out[2];
    for (int64_t i = 0; i < sent->n; i++) {
        const uint8_t *rec = sent->rows + (size_t)i * (size_t)sent->stride;
        /* the OUCH side where the message type carries one (0: unknown, past the bytes held: never
         * the journaled B/S, which would read a short sale as a plain sell), else the journaled side */
        const uint8_t t = rec[sent->msg_type];
        out->sent_wire_side[i] = inbound->offset[t] >= 0 ? (uint8_t)in_side[i] : rec[sent->side];
        if (created == NULL || !created->creates[rec[sent->msg_type]])
            continue;
        if (created->n >= created->capacity) {
            free(programs);
            return -3;
        }
        const size_t k = (size_t)created->n++;
        for (int32_t c = 0; c < created->ncopy; c++)
            copy_value(created->copy_out[c], k, rec + created->copy_offset[c], created->copy_size[c]);
        for (int32_t c = 0; c < created->nhead; c++)
            copy_value(created->head_out[c], k, created->head_src[c] + (size_t)sent->at[i] * (size_t)created->head_size[c],
                       created->head_size[c]);
        join_key(rec + sent->token, created->token_key + k * OJ_TOKEN_BYTES);
        join_key(rec + sent->orig_token, created->parent_key + k * OJ_TOKEN_BYTES);
        created->wire_side[k] = out->sent_wire_side[i];
        memcpy(created->stock + k * OJ_STOCK_BYTES, in_stock + (size_t)i * OJ_STOCK_BYTES, OJ_STOCK_BYTES);
        created->ouch_capacity[k] = in_capacity[i];
        created->leaves_sum[k] = 0;
        created->leaves_started[k] = 0;
    }
    int64_t r = 0, s = 0, v = 0;
    for (;;) {
        while (v < venue->n) {           /* skip venue records that are not order events */
            const uint8_t *rec = venue->rows + (size_t)v * (size_t)venue->stride;
            uint16_t raw_len;
            memcpy(&raw_len, rec + venue->raw_len, sizeof raw_len);
            if (rec[venue->packet_type] == rule->sequenced && rec[venue->msg_type] != rule->system_event
                && raw_len > rule->header)
                break;
            v++;
        }
        const int take_sent = s < sent->n && (v >= venue->n || sent->at[s] < venue->at[v]);
        if (!take_sent && v >= venue->n)
            break;
        const size_t d = (size_t)r;
        uint8_t *token = out->token + d * OJ_TOKEN_BYTES, *prior = out->prior_token + d * OJ_TOKEN_BYTES;
        if (take_sent) {
            const uint8_t *rec = sent->rows + (size_t)s * (size_t)sent->stride;
            const uint8_t t = rec[sent->msg_type];
            clear_fields(outbound, out_prog, d);
            const int32_t held = held_bytes(rec, sent);
            out->msg_len[d] = (int16_t)(held > rule->header ? held - rule->header : 0);
            out->at[d] = sent->at[s];
            out->event[d] = sent_lut[t];
            out->origin[d] = 0;
            out->msg_type[d] = t;
            memcpy(token, rec + sent->token, OJ_TOKEN_BYTES);
            memcpy(prior, rec + sent->orig_token, OJ_TOKEN_BYTES);
            out->wire_side[d] = out->sent_wire_side[s];
            memcpy(&out->price[d], rec + sent->price, sizeof(int64_t));
            uint32_t qty;
            memcpy(&qty, rec + sent->qty, sizeof qty);
            out->qty[d] = qty;
            memcpy(out->stock + d * OJ_STOCK_BYTES, in_stock + (size_t)s * OJ_STOCK_BYTES, OJ_STOCK_BYTES);
            s++;
        } else {
            const uint8_t *rec = venue->rows + (size_t)v * (size_t)venue->stride;
            const uint8_t t = rec[venue->msg_type];
            const int32_t held = held_bytes(rec, venue);
            decode_fields(outbound, out_prog, rec + venue->raw, t, d, held);
            out->msg_len[d] = (int16_t)(held > rule->header ? held - rule->header : 0);
            out->at[d] = venue->at[v];
            out->event[d] = venue_lut[t];
            out->origin[d] = 1;
            out->msg_type[d] = t;
            v++;
        }
        r++;
    }
    /* the join keys in a pass of their own: read back far from the stores of the tokens (read
     * right after them, across two stores, a load waits for them to retire) */
    for (int64_t i = 0; i < r; i++) {
        join_key(out->token + (size_t)i * OJ_TOKEN_BYTES, out->token_key + (size_t)i * OJ_TOKEN_BYTES);
        join_key(out->prior_token + (size_t)i * OJ_TOKEN_BYTES, out->prior_token_key + (size_t)i * OJ_TOKEN_BYTES);
    }
    free(programs);
    return r;
}

void oj_inherit(int64_t n, const int64_t *rows, const int64_t *parent, uint8_t *wire_side, uint8_t *stock,
                uint8_t *capacity)
{
    for (int64_t k = 0; k < n; k++) {
        const int64_t i = rows[k], p = parent[k];
        uint8_t *to = stock + (size_t)i * OJ_STOCK_BYTES;
        if (p >= 0 && p < i) {              /* earlier, hence resolved: its Enter's, at any depth */
            wire_side[i] = wire_side[p];
            memcpy(to, stock + (size_t)p * OJ_STOCK_BYTES, OJ_STOCK_BYTES);
            capacity[i] = capacity[p];
        } else {                            /* the chain leaves the journal: own side, no stock */
            memset(to, 0, OJ_STOCK_BYTES);
            capacity[i] = 0;
        }
    }
}

/* One column of oj_gather: a tight loop per source and destination type (column by column, the
 * loads of a column are independent and the loop has no branch but the unknown creator's). */
#define GATHER_LOOP(SRC_T, DST_T)                                                         \
    for (int64_t i = 0; i < n; i++) {                                                     \
        const int64_t c = rows[i];                                                        \
        SRC_T x;                                                                          \
        memcpy(&x, src + (size_t)(c < 0 ? 0 : c) * (size_t)stride, sizeof x);            \
        ((DST_T *)dst)[i] = c < 0 ? 0 : (DST_T)x;                                         \
    }

static void gather_column(int64_t n, const int64_t *rows, const uint8_t *src, int64_t stride, int32_t src_size,
                          int is_signed, uint8_t *dst, int32_t dst_size)
{
    if (src_size == dst_size && (src_size == 1 || src_size == 2 || src_size == 4 || src_size == 8)) {
        switch (src_size) {
        case 1: GATHER_LOOP(uint8_t, uint8_t) break;
        case 2: GATHER_LOOP(uint16_t, uint16_t) break;
        case 4: GATHER_LOOP(uint32_t, uint32_t) break;
        default: GATHER_LOOP(uint64_t, uint64_t) break;
        }
    } else if (dst_size == 8 && src_size == 1) {
        if (is_signed) { GATHER_LOOP(int8_t, int64_t) } else { GATHER_LOOP(uint8_t, int64_t) }
    } else if (dst_size == 8 && src_size == 2) {
        if (is_signed) { GATHER_LOOP(int16_t, int64_t) } else { GATHER_LOOP(uint16_t, int64_t) }
    } else if (dst_size == 8 && src_size == 4) {
        if (is_signed) { GATHER_LOOP(int32_t, int64_t) } else { GATHER_LOOP(uint32_t, int64_t) }
    } else if (src_size == dst_size) {          /* bytes (tokens, stocks) */
        for (int64_t i = 0; i < n; i++) {
            uint8_t *o = dst + (size_t)i * (size_t)dst_size;
            if (rows[i] < 0)
                memset(o, 0, (size_t)dst_size);
            else if (dst_size == OJ_TOKEN_BYTES)
                memcpy(o, src + (size_t)rows[i] * (size_t)stride, OJ_TOKEN_BYTES);
            else
                memcpy(o, src + (size_t)rows[i] * (size_t)stride, (size_t)dst_size);
        }
    } else {                                    /* other widenings: byte by byte, little-endian */
        for (int64_t i = 0; i < n; i++) {
            uint8_t *o = dst + (size_t)i * (size_t)dst_size;
            const uint8_t *in = src + (size_t)(rows[i] < 0 ? 0 : rows[i]) * (size_t)stride;
            const uint8_t fill = rows[i] >= 0 && is_signed && (in[src_size - 1] & 0x80) ? 0xFF : 0;
            for (int32_t b = 0; b < dst_size; b++)
                o[b] = rows[i] < 0 ? 0 : b < src_size ? in[b] : fill;
        }
    }
}

void oj_gather(int64_t n, const int64_t *rows, int32_t ncols, const uint8_t **src, const int64_t *src_stride,
               const int32_t *src_size, const uint8_t *src_signed, uint8_t **dst, const int32_t *dst_size)
{
    for (int32_t k = 0; k < ncols; k++)
        gather_column(n, rows, src[k], src_stride[k], src_size[k], src_signed[k], dst[k], dst_size[k]);
}

void oj_join_keys(int64_t n, const uint8_t *tokens, int64_t stride, uint8_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *t = tokens + (size_t)i * (size_t)stride;
        join_key(t, out + (size_t)i * OJ_TOKEN_BYTES);
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

/* "00" .. "99": two digits per lookup */
static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline void put_pair(uint8_t *at, uint32_t value)     /* value < 100 */
{
    memcpy(at, DIGIT_PAIRS + 2 * value, 2);
}

void oj_cat_timestamps(int64_t n, const int64_t *ns, uint8_t *out)
{
    const int64_t ns_per_day = 86400LL * 1000000000LL;
    int64_t laid_day = 0;
    uint8_t date[8];                /* YYYYMMDD of laid_day: a journal's times are mostly one day */
    int have_date = 0;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *o = out + (size_t)i * OJ_CAT_TIMESTAMP_BYTES;
        int64_t days = floor_div(ns[i], ns_per_day);
        int64_t in_day = ns[i] - days * ns_per_day;
        if (!have_date || days != laid_day) {
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
            put_digits(date, year, 4);
            put_digits(date + 4, month, 2);
            put_digits(date + 6, day, 2);
            laid_day = days;
            have_date = 1;
        }
        memcpy(o, date, 8);
        uint32_t secs = (uint32_t)(in_day / 1000000000LL);          /* in [0, 86400) */
        uint32_t frac = (uint32_t)(in_day - (int64_t)secs * 1000000000LL);
        uint32_t high = frac / 100000, low = frac % 100000;     /* digits 1-4, 5-9 of the fraction */
        o[8] = ' ';
        put_pair(o + 9, secs / 3600);
        put_pair(o + 11, secs / 60 % 60);
        put_pair(o + 13, secs % 60);
        o[15] = '.';
        put_pair(o + 16, high / 100);
        put_pair(o + 18, high % 100);
        o[20] = (uint8_t)('0' + low / 10000);
        put_pair(o + 21, low / 100 % 100);
        put_pair(o + 23, low % 100);
    }
}
