/* Decimal text of integer columns into Arrow string buffers (reports/_numtext.c). */
#ifndef MMAUDIT_NUMTEXT_H
#define MMAUDIT_NUMTEXT_H

#include <stdint.h>

#define NT_MAX_DIGITS 20      /* 2**64 - 1 */
#define NT_MAX_SCALE 18
#define NT_NO_ROOM (-1)       /* more text than the buffer (or one Arrow string column) holds */
#define NT_BAD_SCALE (-2)
#define NT_NOT_ASCII (-3)     /* a byte >= 0x80: the caller validates it as UTF-8 instead */

/* Text of mag[i] / 10**scale with exactly `scale` decimals, '-' first where neg[i] (neg may be
 * NULL); rows where valid[i] is 0 (valid may be NULL) get no text. offsets has n + 1 entries.
 * Returns the bytes written, or NT_NO_ROOM / NT_BAD_SCALE. */
int64_t nt_scaled_text(const uint64_t *mag, const uint8_t *neg, const uint8_t *valid, int64_t n,
                       int scale, int32_t *offsets, uint8_t *data, int64_t capacity);

/* prefix then mag[i] zero-padded to `width` digits, row after row (prefix_len + width bytes
 * each). Returns 0, or NT_NO_ROOM when a value has more than `width` digits. */
int nt_padded_text(const uint64_t *mag, int64_t n, int width, const uint8_t *prefix, int prefix_len,
                   uint8_t *data);

/* Each `width`-byte key up to its first NUL (all `width` bytes when there is none), back to back.
 * Returns the bytes written, NT_NOT_ASCII at the first byte >= 0x80, or NT_NO_ROOM. */
int64_t nt_token_text(const uint8_t *keys, int64_t n, int width, int32_t *offsets, uint8_t *data);

#define NT_PICK_SLACK 16     /* bytes nt_pick_text may read past an entry and write past the text */

/* Row i of the result: part 0, sep, part 1, sep, ... part k-1, for rows where valid[i] (valid may
 * be NULL); other rows get no text. Part j is a string column (offsets[j] with n + 1 entries into
 * data[j]) or, where offsets[j] is NULL, the constant data[j] of const_len[j] bytes on every row;
 * data_len[j] bytes are readable from data[j]. A value of at most NT_PICK_SLACK bytes is copied as
 * NT_PICK_SLACK bytes (one fixed-size move) where that many are readable and `capacity` leaves
 * room for them: give `out` NT_PICK_SLACK bytes of room past the text.
 * Returns the bytes written, or NT_NO_ROOM past `capacity` (or one Arrow string column). */
int64_t nt_join_text(int64_t n, int k, int32_t **offsets, uint8_t **data, const int64_t *const_len,
                     const int64_t *data_len, const uint8_t *sep, int sep_len, const uint8_t *valid,
                     int32_t *out_offsets, uint8_t *out, int64_t capacity);

/* Row i of the result: entry idx[i] of a table of strings (table_offsets with entries + 1 values
 * into table_data, which has NT_PICK_SLACK readable bytes past its last entry), or no text where
 * idx[i] < 0. The caller keeps idx below the table's entries; `out` needs NT_PICK_SLACK bytes of
 * room past the text. Returns the bytes written, or NT_NO_ROOM past `capacity` (or one Arrow string column). */
int64_t nt_pick_text(const int32_t *idx, int64_t n, const int32_t *table_offsets, const uint8_t *table_data,
                     int32_t *out_offsets, uint8_t *out, int64_t capacity);

#endif
