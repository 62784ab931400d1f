/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for the journal's record checksums.
 *
 * Owns only the checksum: the SSE4.2 `crc32` instruction where the CPU has it (detected at run
 * time), slicing-by-8 tables otherwise. Knows nothing about records or files.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "journal_internal.h"

#define MMJ_CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
#if defined(__x86_64__)
static void crc_zero_tables(void);
#endif
static int hw_available;

__attribute__((constructor)) static void mmj_crc32c_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ MMJ_CRC32C_POLY : crc >> 1;
        crc_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = crc_table[0][n];
        for (int t = 1; t < 8; t++) {
            crc = crc_table[0][crc & 0xff] ^ (crc >> 8);
            crc_table[t][n] = crc;
        }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    hw_available = __builtin_cpu_supports("sse4.2");
    if (hw_available)
        crc_zero_tables();
#endif
}

uint32_t mmj_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);   /* little-endian host assumed (x86-64, aarch64) */
        word ^= crc;
        crc = crc_table[7][word & 0xff] ^ crc_table[6][(word >> 8) & 0xff] ^
              crc_table[5][(word >> 16) & 0xff] ^ crc_table[4][(word >> 24) & 0xff] ^
              crc_table[3][(word >> 32) & 0xff] ^ crc_table[2][(word >> 40) & 0xff] ^
              crc_table[1][(word >> 48) & 0xff] ^ crc_table[0][word >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Three independent crc32 chains hide the instruction's 3-cycle latency: a block of 3*L bytes
 * A||B||C gives f(c, A||B||C) = Z_2L(f(c, A)) ^ Z_L(f(0, B)) ^ f(0, C), where f is the raw
 * (uninverted) crc32 state update and Z_n(x) = f(x, n zero bytes), which is linear in x and so
 * a table lookup per byte of x. */
#define MMJ_CRC_LANE_SMALL 64
#define MMJ_CRC_LANE_BIG 128
static uint32_t zeros_64[4][256], zeros_128[4][256], zeros_256[4][256];

__attribute__((target("sse4.2"))) static uint64_t crc_zeros(uint64_t c, size_t n)
{
    for (size_t i = 0; i < n; i += 8)
        c = _mm_crc32_u64(c, 0);
    return c;
}

__attribute__((target("sse4.2"))) static void crc_zero_tables(void)
{
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            zeros_64[k][b] = (uint32_t)crc_zeros((uint64_t)b << (8 * k), 64);
            zeros_128[k][b] = (uint32_t)crc_zeros((uint64_t)b << (8 * k), 128);
            zeros_256[k][b] = (uint32_t)crc_zeros((uint64_t)b << (8 * k), 256);
        }
}

static inline uint64_t shift(uint32_t t[4][256], uint64_t x)
{
    return t[0][x & 0xff] ^ t[1][(x >> 8) & 0xff] ^ t[2][(x >> 16) & 0xff] ^ t[3][(x >> 24) & 0xff];
}

__attribute__((target("sse4.2"))) static inline uint64_t crc3(uint64_t c, const uint8_t *p, size_t lane,
                                                               uint32_t t1[4][256], uint32_t t2[4][256])
{
    uint64_t b = 0, d = 0;
    for (size_t i = 0; i < lane; i += 8) {
        uint64_t x, y, z;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + lane + i, 8);
        memcpy(&z, p + 2 * lane + i, 8);
        c = _mm_crc32_u64(c, x);
        b = _mm_crc32_u64(b, y);
        d = _mm_crc32_u64(d, z);
    }
    return shift(t2, c) ^ shift(t1, b) ^ d;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        if (len >= 4 && !((uintptr_t)p & 3)) {   /* e.g. a record's 4-byte word on the stack */
            uint32_t word;
            memcpy(&word, p, 4);
            c = _mm_crc32_u32((uint32_t)c, word);
            p += 4;
            len -= 4;
            continue;
        }
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    for (; len >= 3 * MMJ_CRC_LANE_BIG; p += 3 * MMJ_CRC_LANE_BIG, len -= 3 * MMJ_CRC_LANE_BIG)
        c = crc3(c, p, MMJ_CRC_LANE_BIG, zeros_128, zeros_256);
    for (; len >= 3 * MMJ_CRC_LANE_SMALL; p += 3 * MMJ_CRC_LANE_SMALL, len -= 3 * MMJ_CRC_LANE_SMALL)
        c = crc3(c, p, MMJ_CRC_LANE_SMALL, zeros_64, zeros_128);
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/* A record's CRC: word || rest (len a multiple of 8, rest 8-aligned) with the instruction inline,
 * no calls or alignment steps for the short records that dominate appends. */
__attribute__((target("sse4.2"))) static uint32_t record_hw(uint32_t seed, uint32_t word, const uint8_t *rest,
                                                            size_t len)
{
    uint64_t c = _mm_crc32_u32(~seed, word);
    if (len >= 3 * MMJ_CRC_LANE_SMALL)
        return crc32c_hw(~(uint32_t)c, rest, len);   /* long: three interleaved chains */
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x;
        memcpy(&x, rest + i, 8);
        c = _mm_crc32_u64(c, x);
    }
    return ~(uint32_t)c;
}

/* Four records at a time, one crc32 chain each: independent chains run at the instruction's
 * throughput (one per cycle) instead of its latency (three). */
__attribute__((target("sse4.2"))) static void blocks_hw(uint32_t seed, uint32_t prefix, uint8_t *first,
                                                        size_t stride, size_t skip, size_t len, size_t n,
                                                        size_t crc_at)
{
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const uint8_t *p0 = first + r * stride + skip, *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;
        uint64_t c0 = _mm_crc32_u32(~seed, prefix), c1 = c0, c2 = c0, c3 = c0;
        for (size_t i = 0; i < len; i += 8) {
            uint64_t x0, x1, x2, x3;
            memcpy(&x0, p0 + i, 8);
            memcpy(&x1, p1 + i, 8);
            memcpy(&x2, p2 + i, 8);
            memcpy(&x3, p3 + i, 8);
            c0 = _mm_crc32_u64(c0, x0);
            c1 = _mm_crc32_u64(c1, x1);
            c2 = _mm_crc32_u64(c2, x2);
            c3 = _mm_crc32_u64(c3, x3);
        }
        uint32_t out[4] = {~(uint32_t)c0, ~(uint32_t)c1, ~(uint32_t)c2, ~(uint32_t)c3};
        for (int k = 0; k < 4; k++)
            memcpy(first + (r + k) * stride + crc_at, &out[k], 4);
    }
    for (; r < n; r++) {
        uint32_t c = record_hw(seed, prefix, first + r * stride + skip, len);
        memcpy(first + r * stride + crc_at, &c, 4);
    }
}
#endif

uint32_t mmj_crc32c_prefixed(uint32_t seed, uint32_t prefix, const void *rest, size_t len)
{
#if defined(__x86_64__)
    if (hw_available && len % 8 == 0 && !((uintptr_t)rest & 7))
        return record_hw(seed, prefix, rest, len);
#endif
    return mmj_crc32c(mmj_crc32c(seed, &prefix, 4), rest, len);
}

void mmj_crc32c_blocks(uint32_t seed, uint32_t prefix, uint8_t *first, size_t stride, size_t skip, size_t len,
                       size_t n, size_t crc_at)
{
#if defined(__x86_64__)
    if (hw_available && len % 8 == 0 && stride % 8 == 0 && !((uintptr_t)(first + skip) & 7)) {
        blocks_hw(seed, prefix, first, stride, skip, len, n, crc_at);
        return;
    }
#endif
    for (size_t r = 0; r < n; r++) {
        uint32_t c = mmj_crc32c_prefixed(seed, prefix, first + r * stride + skip, len);
        memcpy(first + r * stride + crc_at, &c, 4);
    }
}

int mmj_crc32c_hw_available(void)
{
    return hw_available;
}

uint32_t mmj_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
    if (hw_available)
        return crc32c_hw(crc, buf, len);
#endif
    return mmj_crc32c_sw(crc, buf, len);
}

uint32_t mmj_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return mmj_crc32c(crc, buf, len);   /* the instruction where the CPU has it */
}
