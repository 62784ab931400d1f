/* Decimal text of integer columns, and ASCII tokens from fixed-width bytes, straight into Arrow
 * string buffers (offsets + data): the loops behind reports/numtext.py. Two digits per division
 * from a table; no allocation, no locale. */
#include <stdint.h>
#include <string.h>

#include "numtext.h"

static const char PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The digits of v, at least min_digits of them (zero-padded), ending just before `end`;
 * returns how many were written. */
static inline int put_digits(uint8_t *end, uint64_t v, int min_digits)
{
    uint8_t *p = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, PAIRS + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, PAIRS + 2 * v, 2);
    } else {
        *--p = (uint8_t)('0' + v);
    }
    while (end - p < min_digits)
        *--p = '0';
    return (int)(end - p);
}

int64_t nt_scaled_text(const uint64_t *mag, const uint8_t *neg, const uint8_t *valid, int64_t n,
                       int scale, int32_t *offsets, uint8_t *data, int64_t capacity)
{
    uint8_t buf[NT_MAX_SCALE + 24];
    uint8_t *end = buf + sizeof buf;
    int64_t at = 0;
    if (scale < 0 || scale > NT_MAX_SCALE)
        return NT_BAD_SCALE;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid == NULL || valid[i]) {
            int digits = put_digits(end, mag[i], scale + 1);
            int whole = digits - scale;
            int64_t len = (neg != NULL && neg[i]) + digits + (scale > 0);
            if (at + len > capacity)
                return NT_NO_ROOM;
            uint8_t *out = data + at;
            if (neg != NULL && neg[i])
                *out++ = '-';
            memcpy(out, end - digits, (size_t)whole);
            out += whole;
            if (scale > 0) {
                *out++ = '.';
                memcpy(out, end - scale, (size_t)scale);
            }
            at += len;
            if (at > INT32_MAX)
                return NT_NO_ROOM;
        }
        offsets[i + 1] = (int32_t)at;
    }
    return at;
}

int nt_padded_text(const uint64_t *mag, int64_t n, int width, const uint8_t *prefix, int prefix_len,
                   uint8_t *data)
{
    uint8_t buf[24];
    uint8_t *end = buf + sizeof buf;
    if (width < 1 || width > NT_MAX_DIGITS)
        return NT_BAD_SCALE;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *out = data + i * (int64_t)(prefix_len + width);
        if (put_digits(end, mag[i], width) > width)
            return NT_NO_ROOM;
        if (prefix_len > 0)
            memcpy(out, prefix, (size_t)prefix_len);
        memcpy(out + prefix_len, end - width, (size_t)width);
    }
    return 0;
}

int64_t nt_token_text(const uint8_t *keys, int64_t n, int width, int32_t *offsets, uint8_t *data)
{
    int64_t at = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *key = keys + i * (int64_t)width;
        const uint8_t *nul = memchr(key, 0, (size_t)width);
        int len = nul != NULL ? (int)(nul - key) : width;
        for (int k = 0; k < len; k++)
            if (key[k] >= 0x80)
                return NT_NOT_ASCII;
        memcpy(data + at, key, (size_t)len);
        at += len;
        if (at > INT32_MAX)
            return NT_NO_ROOM;
        offsets[i + 1] = (int32_t)at;
    }
    return at;
}

int64_t nt_join_text(int64_t n, int k, int32_t **offsets, uint8_t **data, const int64_t *const_len,
                     const int64_t *data_len, const uint8_t *sep, int sep_len, const uint8_t *valid,
                     int32_t *out_offsets, uint8_t *out, int64_t capacity)
{
    int64_t at = 0;
    out_offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid == NULL || valid[i]) {
            for (int j = 0; j < k; j++) {
                const uint8_t *src = data[j];
                int64_t len = const_len[j];
                if (offsets[j] != NULL) {
                    src += offsets[j][i];
                    len = (int64_t)offsets[j][i + 1] - offsets[j][i];
                }
                if (at + len + (j > 0 ? sep_len : 0) > capacity)
                    return NT_NO_ROOM;
                if (j > 0 && sep_len == 1)
                    out[at++] = sep[0];
                else if (j > 0 && sep_len > 0) {
                    memcpy(out + at, sep, (size_t)sep_len);
                    at += sep_len;
                }
                /* a short value: one fixed-size move where the source and `out` have the bytes */
                if (len <= NT_PICK_SLACK && (src - data[j]) + NT_PICK_SLACK <= data_len[j]
                        && at + NT_PICK_SLACK <= capacity)
                    memcpy(out + at, src, NT_PICK_SLACK);
                else
                    memcpy(out + at, src, (size_t)len);
                at += len;
            }
            if (at > INT32_MAX)
                return NT_NO_ROOM;
        }
        out_offsets[i + 1] = (int32_t)at;
    }
    return at;
}

int64_t nt_pick_text(const int32_t *idx, int64_t n, const int32_t *table_offsets, const uint8_t *table_data,
                     int32_t *out_offsets, uint8_t *out, int64_t capacity)
{
    int64_t at = 0;
    out_offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t k = idx[i];
        if (k >= 0) {
            int64_t len = (int64_t)table_offsets[k + 1] - table_offsets[k];
            if (at + len + NT_PICK_SLACK > capacity || at + len > INT32_MAX)
                return NT_NO_ROOM;
            if (len <= NT_PICK_SLACK)      /* a fixed-size copy: no call per row */
                memcpy(out + at, table_data + table_offsets[k], NT_PICK_SLACK);
            else
                memcpy(out + at, table_data + table_offsets[k], (size_t)len);
            at += len;
        }
        out_offsets[i + 1] = (int32_t)at;
    }
    return at;
}
