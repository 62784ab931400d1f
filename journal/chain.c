/* The hash chain's link function H (journal.h HASH CHAIN), in both format versions: version 1
 * hashes with BLAKE2b-256 one block after another; version 2 with eight BLAKE2b-256 lanes over
 * interleaved 8-byte words and a BLAKE2b-256 root, which AVX-512 computes eight blocks at a time
 * (about 5x the bytes per second of one BLAKE2b stream on the same core).
 *
 * Owns the chain state and the lane layout; knows nothing of records or files. Both
 * implementations of version 2 (AVX-512 and portable) give the same digests; tests check both
 * against hashlib.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blake2b_tables.h"
#include "journal_internal.h"

#define STRIPE (MMJ_CHAIN_LANES * 128)   /* 1024 bytes: one 128-byte block for each lane */

static const char LANE_PERSON[] = "mmj-chain-lane";   /* + the lane number as one byte */
static const char ROOT_PERSON[] = "mmj-chain-root";

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_PATH 1
#else
#define HAVE_AVX512_PATH 0
#endif

static int use_simd = -1;   /* -1: not decided yet; 0 portable; 1 AVX-512 */

int mmj_chain_simd(int enable)
{
#if HAVE_AVX512_PATH
    __builtin_cpu_init();
    int available = __builtin_cpu_supports("avx512f");
#else
    int available = 0;
#endif
    __atomic_store_n(&use_simd, enable && available, __ATOMIC_RELAXED);
    return enable && available;
}

static int simd_on(void)
{
    int on = __atomic_load_n(&use_simd, __ATOMIC_RELAXED);
    return on >= 0 ? on : mmj_chain_simd(1);
}

#if HAVE_AVX512_PATH
#define VG(a, b, c, d, x, y)                                                        \
    do {                                                                            \
        a = _mm512_add_epi64(_mm512_add_epi64(a, b), x);                            \
        d = _mm512_ror_epi64(_mm512_xor_si512(d, a), 32);                           \
        c = _mm512_add_epi64(c, d);                                                 \
        b = _mm512_ror_epi64(_mm512_xor_si512(b, c), 24);                           \
        a = _mm512_add_epi64(_mm512_add_epi64(a, b), y);                            \
        d = _mm512_ror_epi64(_mm512_xor_si512(d, a), 16);                           \
        c = _mm512_add_epi64(c, d);                                                 \
        b = _mm512_ror_epi64(_mm512_xor_si512(b, c), 63);                           \
    } while (0)

/* n stripes through all eight lanes at once: vector i holds state word i of lanes 0..7, and the
 * stripe's 64-byte row j is exactly message word j of lanes 0..7, so no shuffling is needed. */
__attribute__((target("avx512f"))) static void lanes_avx512(uint64_t h[8][MMJ_CHAIN_LANES], const uint8_t *p,
                                                           size_t n, uint64_t t, int last)
{
    __m512i H[8];
    for (int i = 0; i < 8; i++)
        H[i] = _mm512_loadu_si512(h[i]);
    for (size_t s = 0; s < n; s++, p += STRIPE) {
        __m512i m[16], v[16];
        for (int j = 0; j < 16; j++)
            m[j] = _mm512_loadu_si512(p + 64 * j);
        t += 128;
        for (int i = 0; i < 8; i++) {
            v[i] = H[i];
            v[i + 8] = _mm512_set1_epi64((long long)blake2b_iv[i]);
        }
        v[12] = _mm512_xor_si512(v[12], _mm512_set1_epi64((long long)t));
        if (last && s == n - 1)
            v[14] = _mm512_xor_si512(v[14], _mm512_set1_epi64(-1));
        BLAKE2B_ROUNDS(VG, v, m);
        for (int i = 0; i < 8; i++)
            H[i] = _mm512_xor_si512(H[i], _mm512_xor_si512(v[i], v[i + 8]));
    }
    for (int i = 0; i < 8; i++)
        _mm512_storeu_si512(h[i], H[i]);
}
#endif

/* The same, one lane and one block at a time (the block gathered from the stripe's rows). */
static void lanes_portable(uint64_t h[8][MMJ_CHAIN_LANES], const uint8_t *p, size_t n, uint64_t t, int last)
{
    for (size_t s = 0; s < n; s++, p += STRIPE) {
        t += 128;
        for (int l = 0; l < MMJ_CHAIN_LANES; l++) {
            uint8_t block[128];
            uint64_t lane_h[8];
            for (int j = 0; j < 16; j++)
                memcpy(block + 8 * j, p + 64 * j + 8 * l, 8);
            for (int i = 0; i < 8; i++)
                lane_h[i] = h[i][l];
            mmj_blake2b_compress_block(lane_h, block, t, last && s == n - 1);
            for (int i = 0; i < 8; i++)
                h[i][l] = lane_h[i];
        }
    }
}

static void lanes(mmj_chain_ctx *c, const uint8_t *p, size_t n, int last)
{
#if HAVE_AVX512_PATH
    if (simd_on()) {
        lanes_avx512(c->lane_h, p, n, c->stripes * 128, last);
        c->stripes += n;
        return;
    }
#endif
    lanes_portable(c->lane_h, p, n, c->stripes * 128, last);
    c->stripes += n;
}

void mmj_chain_init(mmj_chain_ctx *c, uint32_t version, const uint8_t *anchor_hash)
{
    c->version = version;
    c->total = 0;
    c->stripes = 0;
    c->buffered = 0;
    if (version < 2) {
        mmj_blake2b_init(&c->v1);
    } else {
        for (int l = 0; l < MMJ_CHAIN_LANES; l++) {
            uint8_t person[16] = {0};
            mmj_blake2b_ctx lane;
            memcpy(person, LANE_PERSON, sizeof LANE_PERSON - 1);
            person[sizeof LANE_PERSON - 1] = (uint8_t)l;
            mmj_blake2b_init_person(&lane, person);
            for (int i = 0; i < 8; i++)
                c->lane_h[i][l] = lane.h[i];
        }
    }
    mmj_chain_update(c, anchor_hash, MMJ_HASH_SIZE);
}

void mmj_chain_update(mmj_chain_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->total += len;
    if (c->version < 2) {
        mmj_blake2b_update(&c->v1, p, len);
        return;
    }
    /* A stripe goes through the lanes only once a whole stripe follows it: the last full stripe
     * must be flagged as the lanes' final block, and what follows it (under a stripe) is the
     * tail, hashed by the root. So the buffer keeps under two stripes; whole stripes of the
     * input go through the lanes straight from it. */
    size_t avail = c->buffered + len;
    if (avail < 2 * STRIPE) {
        memcpy(c->buf + c->buffered, p, len);
        c->buffered = avail;
        return;
    }
    size_t n = avail / STRIPE - 1, done = 0;
    if (c->buffered >= STRIPE) {
        lanes(c, c->buf, 1, 0);
        done++;
        c->buffered -= STRIPE;
        memmove(c->buf, c->buf + STRIPE, c->buffered);
    }
    if (done < n && c->buffered) {   /* a stripe that starts in the buffer and ends in the input */
        size_t take = STRIPE - c->buffered;
        memcpy(c->buf + c->buffered, p, take);
        p += take;
        len -= take;
        lanes(c, c->buf, 1, 0);
        done++;
        c->buffered = 0;
    }
    if (done < n) {
        lanes(c, p, n - done, 0);
        p += (n - done) * STRIPE;
        len -= (n - done) * STRIPE;
    }
    memcpy(c->buf + c->buffered, p, len);
    c->buffered += len;
}

void mmj_chain_final(const mmj_chain_ctx *state, uint8_t *out)
{
    mmj_chain_ctx c = *state;   /* finish a copy: the running state goes on */
    if (c.version < 2) {
        mmj_blake2b_final(&c.v1, out);
        return;
    }
    size_t full = c.buffered / STRIPE, tail = c.buffered % STRIPE;
    if (full)
        lanes(&c, c.buf, full, 1);
    else   /* nothing for the lanes (the total is under one stripe): each is BLAKE2b of "" */
        for (int l = 0; l < MMJ_CHAIN_LANES; l++) {
            uint64_t lane_h[8];
            uint8_t zero[128] = {0};
            for (int i = 0; i < 8; i++)
                lane_h[i] = c.lane_h[i][l];
            mmj_blake2b_compress_block(lane_h, zero, 0, 1);
            for (int i = 0; i < 8; i++)
                c.lane_h[i][l] = lane_h[i];
        }
    uint8_t person[16] = {0}, digests[MMJ_CHAIN_LANES * MMJ_HASH_SIZE];
    for (int l = 0; l < MMJ_CHAIN_LANES; l++)
        for (int i = 0; i < MMJ_HASH_SIZE / 8; i++)
            memcpy(digests + l * MMJ_HASH_SIZE + 8 * i, &c.lane_h[i][l], 8);   /* little-endian host */
    memcpy(person, ROOT_PERSON, sizeof ROOT_PERSON - 1);
    mmj_blake2b_ctx root;
    mmj_blake2b_init_person(&root, person);
    mmj_blake2b_update(&root, digests, sizeof digests);
    mmj_blake2b_update(&root, c.buf + full * STRIPE, tail);
    mmj_blake2b_update(&root, &c.total, 8);
    mmj_blake2b_final(&root, out);
}

void mmj_chain_link(uint32_t version, const uint8_t *anchor_hash, const uint8_t *bytes, uint64_t len, uint8_t *out)
{
    mmj_chain_ctx c;
    mmj_chain_init(&c, version, anchor_hash);
    mmj_chain_update(&c, bytes, len);
    mmj_chain_final(&c, out);
}

void mmj_chain_hash(uint32_t version, const uint8_t *anchor_hash, const void *data, size_t len, uint8_t *out)
{
    mmj_chain_link(version, anchor_hash, data, len, out);
}
