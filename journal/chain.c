/* The hash chain's link function H (journal.h HASH CHAIN), in both format versions: version 1
 * hashes with BLAKE2b-256 one block after another; version 2 with eight BLAKE2b-256 lanes over
 * interleaved 8-byte words and a BLAKE2b-256 root, which AVX-512 computes eight blocks at a time
 * (about 4x the bytes per second of one BLAKE2b stream on the same core) and AVX2 four.
 *
 * Owns the chain state and the lane layout; knows nothing of records or files. The three
 * implementations of version 2 (AVX-512, AVX2, portable) give the same digests; tests check each
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
#define HAVE_X86_PATHS 1
#else
#define HAVE_X86_PATHS 0
#endif

static int simd_level = -1;   /* -1: not decided yet; else an MMJ_CHAIN_* level */

int mmj_chain_simd(int level)
{
    int best = MMJ_CHAIN_PORTABLE;
#if HAVE_X86_PATHS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        best = MMJ_CHAIN_AVX512;
    else if (__builtin_cpu_supports("avx2"))
        best = MMJ_CHAIN_AVX2;
#endif
    int use = level < 0 || level > best ? best : level;
    __atomic_store_n(&simd_level, use, __ATOMIC_RELAXED);
    return use;
}

static int simd_now(void)
{
    int level = __atomic_load_n(&simd_level, __ATOMIC_RELAXED);
    return level >= 0 ? level : mmj_chain_simd(-1);
}

#if HAVE_X86_PATHS
/* n stripes through the lanes in vector state H[8] (VEC-typed; each register one state word of
 * several lanes), message rows loaded by LOAD(row address), ops SET1/XOR, mixing function G. */
#define LANES_STRIPES(VEC, LOAD, SET1, XOR, G, H, q, n, t, last)                            \
    for (size_t s_ = 0; s_ < (n); s_++, (q) += STRIPE) {                                    \
        VEC m[16], v[16];                                                                   \
        for (int j = 0; j < 16; j++)                                                        \
            m[j] = LOAD((q) + 64 * j);                                                      \
        (t) += 128;                                                                         \
        for (int i = 0; i < 8; i++) {                                                       \
            v[i] = H[i];                                                                    \
            v[i + 8] = SET1((long long)blake2b_iv[i]);                                      \
        }                                                                                   \
        v[12] = XOR(v[12], SET1((long long)(t)));                                           \
        if ((last) && s_ == (n) - 1)                                                        \
            v[14] = XOR(v[14], SET1(-1));                                                   \
        BLAKE2B_ROUNDS(G, v, m);                                                            \
        for (int i = 0; i < 8; i++)                                                         \
            H[i] = XOR(H[i], XOR(v[i], v[i + 8]));                                          \
    }

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
#define LOAD512(row) _mm512_loadu_si512(row)

/* All eight lanes at once: vector i holds state word i of lanes 0..7, and the stripe's 64-byte
 * row j is exactly message word j of lanes 0..7, so no shuffling is needed. */
__attribute__((target("avx512f"))) static void lanes_avx512(uint64_t h[8][MMJ_CHAIN_LANES], const uint8_t *p,
                                                           size_t n, uint64_t t, int last)
{
    __m512i H[8];
    for (int i = 0; i < 8; i++)
        H[i] = _mm512_loadu_si512(h[i]);
    LANES_STRIPES(__m512i, LOAD512, _mm512_set1_epi64, _mm512_xor_si512, VG, H, p, n, t, last);
    for (int i = 0; i < 8; i++)
        _mm512_storeu_si512(h[i], H[i]);
}

/* AVX2 has no 64-bit rotate: 32 is a dword shuffle, 24 and 16 byte shuffles, 63 a shift pair. */
#define ROR32_256(x) _mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1))
#define ROR24_256(x) _mm256_shuffle_epi8(x, r24)
#define ROR16_256(x) _mm256_shuffle_epi8(x, r16)
#define ROR63_256(x) _mm256_or_si256(_mm256_srli_epi64(x, 63), _mm256_add_epi64(x, x))
#define VG2(a, b, c, d, x, y)                                                       \
    do {                                                                            \
        a = _mm256_add_epi64(_mm256_add_epi64(a, b), x);                            \
        d = ROR32_256(_mm256_xor_si256(d, a));                                      \
        c = _mm256_add_epi64(c, d);                                                 \
        b = ROR24_256(_mm256_xor_si256(b, c));                                      \
        a = _mm256_add_epi64(_mm256_add_epi64(a, b), y);                            \
        d = ROR16_256(_mm256_xor_si256(d, a));                                      \
        c = _mm256_add_epi64(c, d);                                                 \
        b = ROR63_256(_mm256_xor_si256(b, c));                                      \
    } while (0)
#define LOAD256(row) _mm256_loadu_si256((const __m256i *)(row))

/* The same with 256-bit registers: lanes 0..3 are the low half of each 64-byte row, lanes 4..7
 * the high half; each half runs through its own vector state. */
__attribute__((target("avx2"))) static void lanes_avx2(uint64_t h[8][MMJ_CHAIN_LANES], const uint8_t *p, size_t n,
                                                      uint64_t t, int last)
{
    const __m256i r24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0,
                                         1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m256i r16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7,
                                         0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
    for (int half = 0; half < 2; half++) {
        __m256i H[8];
        const uint8_t *q = p + 32 * half;
        uint64_t tt = t;
        for (int i = 0; i < 8; i++)
            H[i] = LOAD256(h[i] + 4 * half);
        LANES_STRIPES(__m256i, LOAD256, _mm256_set1_epi64x, _mm256_xor_si256, VG2, H, q, n, tt, last);
        for (int i = 0; i < 8; i++)
            _mm256_storeu_si256((__m256i *)(h[i] + 4 * half), H[i]);
    }
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
    switch (simd_now()) {
#if HAVE_X86_PATHS
    case MMJ_CHAIN_AVX512:
        lanes_avx512(c->lane_h, p, n, c->stripes * 128, last);
        break;
    case MMJ_CHAIN_AVX2:
        lanes_avx2(c->lane_h, p, n, c->stripes * 128, last);
        break;
#endif
    default:
        lanes_portable(c->lane_h, p, n, c->stripes * 128, last);
    }
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
