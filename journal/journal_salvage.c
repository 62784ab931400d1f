/* Salvage: read a segment file that recovery kept in discarded/ (journal.h SALVAGE).
 *
 * Owns mapping one kept file read-only, with the zeros a cut copy no longer holds, and the walk
 * that reports every record that still validates and the byte ranges between them. Knows no
 * journal directory: the caller gives the salt. Never writes to the file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_internal.h"

/* A kept file mapped for reading: `size` bytes from base, the file's own `file_size` first and
 * zeros after them. */
typedef struct kept_map {
    const uint8_t *base;
    uint64_t size;
    uint64_t file_size;
} kept_map;

/* Map fd's file_size bytes read-only; when the intact header states a larger segment size S
 * (a copy cut at its last non-zero byte), map S bytes: an anonymous zero reservation with the
 * file mapped over its start, so a record whose trailing zeros were cut reads them back as they
 * were, and nothing reads past a mapping. */
static int map_kept(int fd, uint64_t file_size, uint64_t stated, kept_map *k)
{
    k->file_size = file_size;
    k->size = file_size;
    k->base = NULL;
    if (stated > file_size && stated <= (uint64_t)SIZE_MAX) {
        void *area = mmap(NULL, (size_t)stated, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (area != MAP_FAILED) {
            if (mmap(area, (size_t)file_size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED) {
                k->base = area;
                k->size = stated;
                return MMJ_OK;
            }
            munmap(area, (size_t)stated);
        }
        /* no room for the reservation: read the file as it is (a cut last record then fails) */
    }
    void *p = mmap(NULL, (size_t)file_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return MMJ_E_IO;
    k->base = p;
    return MMJ_OK;
}

/* Open a regular file read-only; -1 with *err set otherwise. */
static int open_kept(const char *path, struct stat *st, int *err)
{
    /* O_NONBLOCK: a FIFO under a segment's name must not hang the open (it is refused below) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int why = 0;
    if (fd < 0 || fstat(fd, st) != 0)
        why = errno;
    else if (!S_ISREG(st->st_mode))
        why = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
    if (!why)
        return fd;
    if (fd >= 0)
        close(fd);
    if (err)
        *err = why;
    return -1;
}

static void put_invalid(mmj_byte_range *invalid, uint64_t cap, mmj_salvage_report *out, uint64_t from,
                        uint64_t to)
{
    if (invalid && out->invalid < cap)
        invalid[out->invalid] = (mmj_byte_range){.offset = from, .length = to - from};
    out->invalid++;
}

/* Every 8-aligned offset after the header is tried as a record with any sequence; bytes between
 * records that validate are invalid, and after the last one only up to its last non-zero byte
 * (the zero-filled rest of a segment is not damage). */
static void walk(const kept_map *k, uint32_t salt_check, mmj_record *records, uint64_t cap_records,
                 mmj_byte_range *invalid, uint64_t cap_invalid, mmj_salvage_report *out)
{
    uint64_t off = MMJ_HEADER_SIZE, valid_end = MMJ_HEADER_SIZE;
    mmj_record rec;
    while (off < k->file_size) {   /* a record past the file's bytes would start with a zero word */
        int size = mmj_record_check_any_seq(k->base, k->size, off, salt_check, &rec);
        if (size <= 0) {
            off += 8;
            continue;
        }
        if (off > valid_end)
            put_invalid(invalid, cap_invalid, out, valid_end, off);
        if (records && out->records < cap_records) {
            rec.payload = NULL;     /* the mapping is gone when the caller reads it */
            rec.segment = out->index;
            records[out->records] = rec;
        }
        out->records++;
        off += (uint64_t)size;
        valid_end = off;
    }
    uint64_t dirty_end = mmj_nonzero_end(k->base, valid_end, k->file_size);
    if (dirty_end > valid_end)
        put_invalid(invalid, cap_invalid, out, valid_end, dirty_end);
}

int mmj_salvage_segment(const char *path, const uint8_t *salt, mmj_record *records, uint64_t cap_records,
                        mmj_byte_range *invalid, uint64_t cap_invalid, mmj_salvage_report *out, int *err)
{
    if (!path || !salt || !out)
        return MMJ_E_ARG;
    memset(out, 0, sizeof out[0]);
    if (err)
        *err = 0;
    struct stat st;
    int fd = open_kept(path, &st, err);
    if (fd < 0)
        return MMJ_E_IO;
    out->file_size = (uint64_t)st.st_size;
    uint8_t h[MMJ_HEADER_SIZE];
    if (out->file_size < MMJ_HEADER_SIZE) {
        close(fd);
        return MMJ_E_CORRUPT;
    }
    ssize_t got = pread(fd, h, sizeof h, 0);
    if (got != (ssize_t)sizeof h) {
        if (err)
            *err = got < 0 ? errno : EIO;    /* short: the file shrank under us */
        close(fd);
        return MMJ_E_IO;
    }
    mmj_seg_header hdr;
    int newer;
    out->header_reason = mmj_header_parse(h, salt, &hdr, &newer);
    if (!hdr.magic_ok || newer) {
        close(fd);
        return newer ? MMJ_E_VERSION : MMJ_E_CORRUPT;
    }
    out->version = hdr.version;
    out->index = hdr.index;      /* a damaged header's index is still the best guess */
    out->first_seq = hdr.first_seq;
    out->size = hdr.size;
    kept_map k;
    int rc = map_kept(fd, out->file_size, out->header_reason == MMJ_R_NONE ? hdr.size : 0, &k);
    if (rc != MMJ_OK && err)
        *err = errno;
    close(fd);
    if (rc != MMJ_OK)
        return rc;
    walk(&k, mmj_salt_check(salt, hdr.index), records, cap_records, invalid, cap_invalid, out);
    munmap((void *)k.base, (size_t)k.size);
    return MMJ_OK;
}
