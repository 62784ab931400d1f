/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for the journal's record checksums.
 *
 * Owns only the checksum: the SSE4.2 `crc32` instruction where the CPU has it (detected at run
 * time), slicing-by-8 tables otherwise. Knows nothing about records or files.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "journal.h"

#define MMJ_CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
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

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
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
#endif

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
