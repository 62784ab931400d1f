/* BLAKE2b (RFC 7693), unkeyed, for the journal's hash chain, checkpoints and segment seals.
 *
 * Owns only the hash function, written from the RFC so the C library needs no crypto dependency.
 * Knows nothing about records or files.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "journal.h"

static const uint64_t blake2b_iv[8] = {
    0x6A09E667F3BCC908ull, 0xBB67AE8584CAA73Bull, 0x3C6EF372FE94F82Bull, 0xA54FF53A5F1D36F1ull,
    0x510E527FADE682D1ull, 0x9B05688C2B3E6C1Full, 0x1F83D9ABFB41BD6Bull, 0x5BE0CD19137E2179ull,
};

/* rounds 10 and 11 reuse rows 0 and 1 (r % 10) */
static const uint8_t blake2b_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t rotr64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint64_t load64_le(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);   /* little-endian host */
    return v;
}

#define G(a, b, c, d, x, y)                  \
    do {                                     \
        a = a + b + (x);                     \
        d = rotr64(d ^ a, 32);               \
        c = c + d;                           \
        b = rotr64(b ^ c, 24);               \
        a = a + b + (y);                     \
        d = rotr64(d ^ a, 16);               \
        c = c + d;                           \
        b = rotr64(b ^ c, 63);               \
    } while (0)

static void blake2b_compress(mmj_blake2b_ctx *ctx, const uint8_t block[128], int last)
{
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = ctx->h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= ctx->t[0];
    v[13] ^= ctx->t[1];
    if (last)
        v[14] = ~v[14];
    for (int i = 0; i < 16; i++)
        m[i] = load64_le(block + 8 * i);
    /* fully unrolled, the message schedule indexes become constants and m[] stays in registers */
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = blake2b_sigma[r % 10];
        G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        ctx->h[i] ^= v[i] ^ v[i + 8];
}

static void counter_add(mmj_blake2b_ctx *ctx, uint64_t n)
{
    ctx->t[0] += n;
    if (ctx->t[0] < n)
        ctx->t[1]++;
}

void mmj_blake2b_init(mmj_blake2b_ctx *ctx)
{
    for (int i = 0; i < 8; i++)
        ctx->h[i] = blake2b_iv[i];
    /* parameter block: digest length 32, no key, fanout 1, depth 1 */
    ctx->h[0] ^= 0x01010000u ^ MMJ_HASH_SIZE;
    ctx->t[0] = ctx->t[1] = 0;
    ctx->buffered = 0;
}

void mmj_blake2b_update(mmj_blake2b_ctx *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 0)
        return;
    /* Keep the final block buffered: BLAKE2b must flag the last block, so a full buffer is
     * compressed only once more input arrives. */
    if (ctx->buffered) {
        size_t room = 128 - ctx->buffered;
        if (len <= room) {
            memcpy(ctx->buf + ctx->buffered, p, len);
            ctx->buffered += len;
            return;
        }
        memcpy(ctx->buf + ctx->buffered, p, room);
        counter_add(ctx, 128);
        blake2b_compress(ctx, ctx->buf, 0);
        ctx->buffered = 0;
        p += room;
        len -= room;
    }
    while (len > 128) {
        counter_add(ctx, 128);
        blake2b_compress(ctx, p, 0);
        p += 128;
        len -= 128;
    }
    memcpy(ctx->buf, p, len);
    ctx->buffered = len;
}

void mmj_blake2b_final(mmj_blake2b_ctx *ctx, uint8_t *out)
{
    counter_add(ctx, ctx->buffered);
    memset(ctx->buf + ctx->buffered, 0, 128 - ctx->buffered);
    blake2b_compress(ctx, ctx->buf, 1);
    memcpy(out, ctx->h, MMJ_HASH_SIZE);   /* little-endian host: h words are the digest bytes */
}

void mmj_blake2b_256(const void *data, size_t len, uint8_t *out)
{
    mmj_blake2b_ctx ctx;
    mmj_blake2b_init(&ctx);
    mmj_blake2b_update(&ctx, data, len);
    mmj_blake2b_final(&ctx, out);
}
