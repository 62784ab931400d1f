/* BLAKE2b's constants (RFC 7693): the IV and the message schedule, shared by the scalar code
 * (blake2b.c) and the chain's vector lanes (chain.c) as static tables, so each compression
 * function sees constant indexes and keeps the message words in registers.
 */
#ifndef MMJ_BLAKE2B_TABLES_H
#define MMJ_BLAKE2B_TABLES_H

#include <stdint.h>

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

/* The 12 rounds over state v[16] and message m[16], with the mixing function G(a, b, c, d, x, y)
 * of the caller's word type; fully unrolled, the schedule indexes become constants. */
#define BLAKE2B_ROUNDS(G, v, m)                                                     \
    _Pragma("GCC unroll 12") for (int r_ = 0; r_ < 12; r_++) {                      \
        const uint8_t *s_ = blake2b_sigma[r_ % 10];                                 \
        G(v[0], v[4], v[8], v[12], m[s_[0]], m[s_[1]]);                             \
        G(v[1], v[5], v[9], v[13], m[s_[2]], m[s_[3]]);                             \
        G(v[2], v[6], v[10], v[14], m[s_[4]], m[s_[5]]);                            \
        G(v[3], v[7], v[11], v[15], m[s_[6]], m[s_[7]]);                            \
        G(v[0], v[5], v[10], v[15], m[s_[8]], m[s_[9]]);                            \
        G(v[1], v[6], v[11], v[12], m[s_[10]], m[s_[11]]);                          \
        G(v[2], v[7], v[8], v[13], m[s_[12]], m[s_[13]]);                           \
        G(v[3], v[4], v[9], v[14], m[s_[14]], m[s_[15]]);                           \
    }

#endif
