/* Segment summaries (seg-<index>.sum, journal.h SEGMENT SUMMARY): written after a seal, checked
 * against the segment's own SEAL and EOS records before a reader trusts them.
 *
 * Owns the summary's layout, writing it and checking it. A summary only ever saves a scan: a
 * missing, torn, stale or lying one fails the check and the caller scans the segment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_internal.h"

#define MMJ_SUM_DURABLE 1   /* flags bit: the segment was msynced through its EOS first */

static const char SUM_MAGIC[8] = {'M', 'M', 'J', 'S', 'U', 'M', '1', '\n'};

void mmj_footer_name(char *buf, size_t cap, uint64_t index, int tmp)
{
    snprintf(buf, cap, "seg-%016llu.sum%s", (unsigned long long)index, tmp ? ".tmp" : "");
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void mmj_footer_build(uint8_t *out, uint64_t index, uint64_t first_seq, uint64_t records, uint64_t seal_off,
                      const uint8_t *seal_hash, int durable)
{
    uint64_t end = seal_off + mmj_pad8(MMJ_RECORD_HEADER_SIZE + MMJ_CONTROL_PAYLOAD) + MMJ_RECORD_HEADER_SIZE;
    memset(out, 0, MMJ_FOOTER_SIZE);
    memcpy(out, SUM_MAGIC, 8);
    memcpy(out + 8, &index, 8);
    memcpy(out + 16, &first_seq, 8);
    memcpy(out + 24, &records, 8);
    memcpy(out + 32, &seal_off, 8);
    memcpy(out + 40, &end, 8);
    memcpy(out + 48, seal_hash, MMJ_HASH_SIZE);
    out[80] = durable ? MMJ_SUM_DURABLE : 0;
    uint32_t crc = mmj_crc32c(0, out, MMJ_FOOTER_SIZE - 4);
    memcpy(out + MMJ_FOOTER_SIZE - 4, &crc, 4);
}

/* Write the summary bytes buf as seg-<index>.sum (temp name + rename). No fsync: the summary is
 * checked against the (durable) segment before it is believed, so one lost or torn by a power cut
 * costs a scan, nothing else. */
static int store(int dirfd, uint64_t index, const uint8_t *buf)
{
    char name[64], tmp[64];
    mmj_footer_name(name, sizeof name, index, 0);
    mmj_footer_name(tmp, sizeof tmp, index, 1);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return MMJ_E_IO;
    int ok = write(fd, buf, MMJ_FOOTER_SIZE) == (ssize_t)MMJ_FOOTER_SIZE;
    close(fd);
    if (!ok || renameat(dirfd, tmp, dirfd, name) != 0) {
        unlinkat(dirfd, tmp, 0);
        return MMJ_E_IO;
    }
    return MMJ_OK;
}

int mmj_footer_write(int dirfd, uint64_t index, uint64_t first_seq, uint64_t records, uint64_t seal_off,
                     const uint8_t *seal_hash, int durable)
{
    uint8_t buf[MMJ_FOOTER_SIZE];
    mmj_footer_build(buf, index, first_seq, records, seal_off, seal_hash, durable);
    return store(dirfd, index, buf);
}

/* Magic, crc, flags and zero bytes right (what can be checked without the segment). */
static int well_formed(const uint8_t *f)
{
    static const uint8_t zero[11];
    uint32_t crc;
    memcpy(&crc, f + MMJ_FOOTER_SIZE - 4, 4);
    return memcmp(f, SUM_MAGIC, 8) == 0 && crc == mmj_crc32c(0, f, MMJ_FOOTER_SIZE - 4) &&
           (f[80] & ~MMJ_SUM_DURABLE) == 0 && memcmp(f + 81, zero, sizeof zero) == 0;
}

int mmj_footer_mark_durable(int dirfd, uint64_t index)
{
    uint8_t f[MMJ_FOOTER_SIZE];
    int rc = mmj_footer_read(dirfd, index, f);
    if (rc != MMJ_OK)
        return rc;
    if (!well_formed(f) || get64(f + 8) != index)
        return MMJ_E_CORRUPT;
    if (f[80] & MMJ_SUM_DURABLE)
        return MMJ_OK;
    f[80] |= MMJ_SUM_DURABLE;
    uint32_t crc = mmj_crc32c(0, f, MMJ_FOOTER_SIZE - 4);
    memcpy(f + MMJ_FOOTER_SIZE - 4, &crc, 4);
    return store(dirfd, index, f);
}

void mmj_footer_remove(int dirfd, uint64_t index)
{
    char name[64];
    mmj_footer_name(name, sizeof name, index, 0);
    unlinkat(dirfd, name, 0);
    mmj_footer_name(name, sizeof name, index, 1);
    unlinkat(dirfd, name, 0);
}

int mmj_footer_read(int dirfd, uint64_t index, uint8_t *out)
{
    char name[64];
    mmj_footer_name(name, sizeof name, index, 0);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MMJ_E_NOT_FOUND : MMJ_E_IO;
    uint8_t buf[MMJ_FOOTER_SIZE + 1];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    if (n != MMJ_FOOTER_SIZE)
        return MMJ_E_CORRUPT;   /* torn, truncated or grown: not a summary */
    memcpy(out, buf, MMJ_FOOTER_SIZE);
    return MMJ_OK;
}

int mmj_footer_check(const uint8_t *f, const mmj_map *m, uint32_t salt_check, uint64_t first_seq,
                     mmj_footer *out)
{
    if (!well_formed(f))
        return MMJ_E_CORRUPT;
    uint64_t index = get64(f + 8), first = get64(f + 16), records = get64(f + 24);
    uint64_t seal_off = get64(f + 32), end = get64(f + 40);
    uint64_t seal_size = mmj_pad8(MMJ_RECORD_HEADER_SIZE + MMJ_CONTROL_PAYLOAD);
    /* bounds first, in an order that cannot overflow: nothing below reads outside the map */
    if (index != m->index || first != first_seq || records > m->size || seal_off < MMJ_HEADER_SIZE ||
        seal_off % 8 || seal_off > m->size || m->size - seal_off < seal_size + MMJ_RECORD_HEADER_SIZE ||
        end != seal_off + seal_size + MMJ_RECORD_HEADER_SIZE)
        return MMJ_E_CORRUPT;
    /* the segment itself must end there: a valid SEAL with this hash and count, then EOS */
    mmj_record rec;
    uint64_t next = first_seq + records;
    if (mmj_record_check(m->base, m->size, seal_off, salt_check, next, &rec) != (int)seal_size ||
        !(rec.flags & MMJ_FLAG_CONTROL) || rec.rtype != MMJ_RTYPE_SEAL ||
        memcmp(rec.payload, f + 48, MMJ_HASH_SIZE) != 0 || get64(rec.payload + MMJ_HASH_SIZE) != records)
        return MMJ_E_CORRUPT;
    if (mmj_record_check(m->base, m->size, seal_off + seal_size, salt_check, next, &rec) != MMJ_RECORD_HEADER_SIZE ||
        !(rec.flags & MMJ_FLAG_EOS))
        return MMJ_E_CORRUPT;
    if (out) {
        out->records = records;
        out->seal_offset = seal_off;
        out->end = end;
        memcpy(out->seal_hash, f + 48, MMJ_HASH_SIZE);
        out->durable = f[80] & MMJ_SUM_DURABLE;
    }
    return MMJ_OK;
}

int mmj_segment_summary(const char *dir, uint64_t index, uint64_t *first_seq, uint64_t *records, uint64_t *end)
{
    if (!dir || !first_seq || !records || !end)
        return MMJ_E_ARG;
    int dirfd, rc;
    uint8_t salt[MMJ_SALT_SIZE], f[MMJ_FOOTER_SIZE];
    mmj_map m;
    mmj_footer info;
    int newer = 0;
    rc = mmj_open_dir(dir, &dirfd, NULL);
    if (rc != MMJ_OK)
        return rc;
    rc = mmj_meta_read(dirfd, salt, NULL);
    if (rc == MMJ_OK)
        rc = mmj_footer_read(dirfd, index, f);
    if (rc == MMJ_OK)
        rc = mmj_map_segment(dirfd, index, 0, &m, NULL);
    close(dirfd);
    if (rc != MMJ_OK)
        return rc;
    if (mmj_header_check(&m, salt, first_seq, NULL, &newer, NULL) != MMJ_R_NONE)
        rc = newer ? MMJ_E_VERSION : MMJ_E_CORRUPT;
    else
        rc = mmj_footer_check(f, &m, mmj_salt_check(salt, index), *first_seq, &info);
    mmj_unmap(&m);
    if (rc == MMJ_OK) {
        *records = info.records;
        *end = info.end;
    }
    return rc;
}
