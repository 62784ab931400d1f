/* Compiled kernels of the order-event reports (cffi module reports._orderjoin_cffi): the token
 * join, remaining quantities, OUCH field decoding and the text the reports lay out per row.
 *
 * oj_index_*: an open-addressing hash index (linear probing) over 14-byte order tokens that
 * live in a caller-owned array (entry i = bytes keys[14*i .. 14*i+13]); the slots array, of a
 * power-of-two size, holds entry numbers (int32: below 2^31) or -1 (empty). Inserting entry i over an equal token
 * replaces the older entry, so a lookup finds the latest entry of a reused token; oj_index_insert
 * writes the entry each one replaced (-1: none) to replaced[i - first] (NULL: not wanted).
 * oj_index_lookup2 gives the entry equal to each query, or -1; it probes a small index of the
 * latest entries first (those from some entry on; it stays in cache, and most queries are for
 * orders created shortly before) and the index of every entry only for the queries it misses:
 * the answer is the same as the full index's.
 *
 * oj_leaves: remaining quantity of each event's order after the event, in journal order:
 * an Accepted/Replaced event restates the order's quantity (adds qty), an Order Modified sets
 * the remaining quantity to its qty (the open shares it restates), an execution subtracts
 * exec_qty and a cancel subtracts decrement; -1 until the venue has accepted (qty > 0) or
 * modified the order once. An event of code `unknown` (a quantity message cut short in the journal) makes the
 * order's remaining quantity unknown for good: its started count becomes -1 and stays so, and
 * its events give -2. Group g < nbook: an order of the running book (its totals carried in book_sum and
 * book_started across calls); g >= nbook: an order no ORDER_SENT created, local to this call
 * (local_sum/local_started[g - nbook], zeroed by the caller).
 *
 * oj_fields: the `fs->nfields` OUCH fields of framed messages held in rows of `stride` bytes, in
 * one pass over the rows: for field f, row i's message type t = msg_type[i] has it at byte
 * offset[f * 256 + t] (-1: the type does not carry it; the output is left as it is) of
 * width[f * 256 + t] bytes; with out_width[f] == 0 it is a big-endian unsigned integer that goes
 * to ((int64_t *)out[f])[dest[i]], with -1 to the byte out[f][dest[i]], else its bytes go to
 * out[f] + dest[i] * out_width[f] (dest NULL: row i itself). `held` (NULL: every byte): the
 * bytes row i's framed message holds; a field ending past them is left as it is (a truncated
 * message invents no value). The same decoding as oj_merge_events's. Returns 0, -1 if the set has more than OJ_MAX_FIELDS fields, -2 out of memory.
 *
 * oj_merge_events: one chunk's order events in journal order, in one pass: the ORDER_SENT rows
 * (`sent`, whole payloads) and the VENUE_MSG rows (`venue`, payload heads) that are order events
 * (SoupBinTCP packet type `sequenced`, OUCH type not `system_event`, raw_len > `header`), merged
 * by their positions `at` among the chunk's records (both ascending). Each record's message holds
 * min(raw_len, raw_cap, SoupBinTCP length prefix + 2) bytes (msg_len: that less the header);
 * its fields ending past them are not decoded (0 / NULs). For merged row r it writes
 * every column of `out` (0 / NUL bytes where the message lacks a field): msg_len, the position, EV code
 * (sent_lut / venue_lut by message type), origin (0 sent, 1 venue), message type, token and
 * prior token (orig_token / OUCH previous_token) with their join keys, wire side, price, qty and
 * stock; the venue rows' OUCH fields come from the `outbound` set (oj_fields tables, dest = r)
 * and the sent rows' side, stock and capacity from the `inbound` set (its three fields, in that
 * order; dest = the sent row: side as int64, stock as 8 bytes, capacity as one byte);
 * sent_wire_side[i] is the OUCH side where the message type carries one (0 when the side byte
 * is past the bytes the journal holds: unknown, not guessed), else the journaled side. The
 * `outbound` fields with out_width -1 are stored as one byte. `created`
 * (NULL: none): each ORDER_SENT whose type `creates` flags becomes row n++ of its columns, with
 * its record's bytes at copy_offset (copy_size bytes each), the header columns' element at its
 * position (head_size bytes), the join keys of its token and orig_token, its wire side,
 * inbound stock and capacity, and running totals 0 (-3: more than `capacity` rows). Returns the
 * number of merged rows, or -1 if a field set has more than OJ_MAX_FIELDS fields (or the inbound
 * set not three), -2 out of memory.
 * oj_inherit: the Creators' replacements rows[0..n) (ascending entry numbers) take the side, stock
 * and capacity of the order each replaces, parent[k], in that order: an earlier entry
 * (parent[k] < rows[k]), already resolved, so a replace chain of any length resolves to its Enter's
 * in one pass; otherwise (-1, or not earlier) it keeps its own side, with NUL stock, capacity 0.
 * oj_gather: for each column c, dst[c][i] = the value of src_size[c] bytes at src[c] + rows[i] *
 * src_stride[c] (0 where rows[i] < 0), widened to dst_size[c] bytes (sign-extended where
 * src_signed[c]) or copied as bytes when the sizes are equal.
 *
 * oj_join_keys: tokens as join keys: each 14-byte token copied from rows `stride` apart with its
 * space padding (OUCH) turned into NULs (the journal's padding).
 * oj_cat_timestamps: CAT timestamps YYYYMMDD HHMMSS.CCCNNNNNN (25 bytes per row, no NUL) of local
 * times in ns since 1970-01-01 (proleptic Gregorian; digits as floor division gives them, so any
 * int64 formats as timetext's numpy layout does).
 *
 * The numpy references are reports/events.py (TokenIndex, leaves_reference, inherit_reference)
 * and reports/ouch.py (decode), and reports/timetext.py (cat_timestamp_reference); the tests
 * compare them on random inputs.
 */
#ifndef MMAUDIT_ORDERJOIN_H
#define MMAUDIT_ORDERJOIN_H

#include <stdint.h>

#define OJ_TOKEN_BYTES 14
#define OJ_STOCK_BYTES 8
#define OJ_MAX_FIELDS 32

void oj_index_insert(int32_t *slots, uint64_t mask, const uint8_t *keys, int64_t first, int64_t end,
                     int32_t *replaced);
void oj_index_lookup2(const int32_t *recent, uint64_t recent_mask, const int32_t *slots, uint64_t mask,
                      const uint8_t *keys, const uint8_t *queries, int64_t n, int64_t *out);

typedef struct {
    int8_t accepted, replaced, modified, executed, executed_ref, canceled, aiq_canceled, unknown;
} oj_event_codes;

void oj_leaves(int64_t n, const int64_t *group, const int8_t *event, const int64_t *qty,
               const int64_t *exec_qty, const int64_t *decrement, const oj_event_codes *codes,
               int64_t nbook, int64_t *book_sum, int64_t *book_started,
               int64_t *local_sum, int64_t *local_started, int64_t *out);

typedef struct {
    int32_t nfields;
    const int32_t *offset, *width;
    const int64_t *out_width;
    uint8_t **out;
} oj_field_set;

int oj_fields(int64_t n, const uint8_t *raw, int64_t stride, const uint8_t *msg_type, const int64_t *dest,
              const int32_t *held, const oj_field_set *fs);

typedef struct {
    int64_t n;
    const uint8_t *rows;
    int64_t stride;
    const int64_t *at;
    /* byte offsets in a row: ORDER_SENT uses token..qty, VENUE_MSG packet_type; both msg_type,
     * raw_len and raw */
    int32_t token, orig_token, msg_type, side, price, qty, packet_type, raw_len, raw;
    int32_t raw_cap;                 /* bytes of the raw field in the journal's record */
} oj_records;

typedef struct {
    uint8_t sequenced, system_event;
    int32_t header;
} oj_venue_rule;

typedef struct {
    int64_t *at;
    int8_t *event, *origin;
    uint8_t *msg_type, *token, *token_key, *prior_token, *prior_token_key, *wire_side;
    int64_t *price, *qty;
    uint8_t *stock;
    uint8_t *sent_wire_side;
    int16_t *msg_len;                /* OUCH message bytes held (framing excluded) */
} oj_merged;

typedef struct {
    const uint8_t *creates;          /* 256 flags: the message types that create an order */
    int32_t ncopy;                   /* columns copied from the ORDER_SENT record */
    const int32_t *copy_offset, *copy_size;
    uint8_t **copy_out;
    int32_t nhead;                   /* columns copied from the chunk's header columns */
    const uint8_t **head_src;
    const int32_t *head_size;
    uint8_t **head_out;
    uint8_t *token_key, *parent_key, *wire_side, *stock, *ouch_capacity;
    int64_t *leaves_sum, *leaves_started;
    int64_t capacity, n;
} oj_creators;

int64_t oj_merge_events(const oj_records *sent, const oj_field_set *inbound, const oj_records *venue,
                        const oj_venue_rule *rule, const oj_field_set *outbound,
                        const int8_t *sent_lut, const int8_t *venue_lut, oj_merged *out, oj_creators *created);

void oj_inherit(int64_t n, const int64_t *rows, const int64_t *parent, uint8_t *wire_side, uint8_t *stock,
                uint8_t *capacity);

void oj_gather(int64_t n, const int64_t *rows, int32_t ncols, const uint8_t **src, const int64_t *src_stride,
               const int32_t *src_size, const uint8_t *src_signed, uint8_t **dst, const int32_t *dst_size);

void oj_join_keys(int64_t n, const uint8_t *tokens, int64_t stride, uint8_t *out);
#define OJ_CAT_TIMESTAMP_BYTES 25
void oj_cat_timestamps(int64_t n, const int64_t *ns, uint8_t *out);

#endif
