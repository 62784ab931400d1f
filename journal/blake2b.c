/* BLAKE2b (RFC 7693), unkeyed (optionally personalised), for the journal's hash chain,
 * checkpoints and segment seals.
 *
 * Owns only the hash function, written from the RFC so the C library needs no crypto dependency.
 * Knows nothing about records or files.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blake2b_tables.h"
#include "journal.h"

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

static void compress(uint64_t h[8], const uint8_t block[128], uint64_t t0, uint64_t t1, int last)
{
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= t0;
    v[13] ^= t1;
    if (last)
        v[14] = ~v[14];
    for (int i = 0; i < 16; i++)
        m[i] = load64_le(block + 8 * i);
    /* fully unrolled, the message schedule indexes become constants and m[] stays in registers */
    BLAKE2B_ROUNDS(G, v, m);
    for (int i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

static void blake2b_compress(mmj_blake2b_ctx *ctx, const uint8_t block[128], int last)
{
    compress(ctx->h, block, ctx->t[0], ctx->t[1], last);
}

void mmj_blake2b_compress_block(uint64_t h[8], const uint8_t block[128], uint64_t t, int last)
{
    compress(h, block, t, 0, last);
}

static void counter_add(mmj_blake2b_ctx *ctx, uint64_t n)
{
    ctx->t[0] += n;
    if (ctx->t[0] < n)
        ctx->t[1]++;
}

void mmj_blake2b_init_person(mmj_blake2b_ctx *ctx, const uint8_t *person)
{
    for (int i = 0; i < 8; i++)
        ctx->h[i] = blake2b_iv[i];
    /* parameter block: digest length 32, no key, fanout 1, depth 1; personalisation in bytes
     * 48..63 (words 6 and 7) */
    ctx->h[0] ^= 0x01010000u ^ MMJ_HASH_SIZE;
    if (person) {
        ctx->h[6] ^= load64_le(person);
        ctx->h[7] ^= load64_le(person + 8);
    }
    ctx->t[0] = ctx->t[1] = 0;
    ctx->buffered = 0;
}

void mmj_blake2b_init(mmj_blake2b_ctx *ctx)
{
    mmj_blake2b_init_person(ctx, NULL);
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
