/* Shared by writer, reader, tailer and verify: file names, journal.meta, segment headers, the
 * record validity rule (journal.h "A RECORD ... IS VALID IFF") and small POSIX helpers.
 *
 * Knows the on-disk format; knows nothing about record payload meaning or Python.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_internal.h"

static const char META_MAGIC[8] = {'M', 'M', 'J', 'M', 'E', 'T', 'A', '\n'};
static const char SEG_MAGIC[8] = {'M', 'M', 'J', 'S', 'E', 'G', '1', '\n'};

const char *mmj_strerror(int status)
{
    switch (status) {
    case MMJ_OK: return "ok";
    case MMJ_END: return "end of journal";
    case MMJ_AGAIN: return "no record before the timeout";
    case MMJ_E_ARG: return "bad argument";
    case MMJ_E_IO: return "system call failed";
    case MMJ_E_NOT_JOURNAL: return "not a journal directory";
    case MMJ_E_VERSION: return "journal written by a newer format version";
    case MMJ_E_LOCKED: return "journal is locked by another writer";
    case MMJ_E_CORRUPT: return "journal is corrupt";
    case MMJ_E_TOO_LARGE: return "record larger than a segment can hold";
    case MMJ_E_CLOSED: return "journal handle is closed";
    case MMJ_E_DISK_FULL: return "no space left to preallocate a segment";
    case MMJ_E_DURABILITY: return "msync/fsync failed; the writer refuses all further appends";
    case MMJ_E_NOT_FOUND: return "no record with that sequence";
    case MMJ_E_NOMEM: return "out of memory";
    case MMJ_E_PAYLOAD_SIZE: return "payload size does not match its record type";
    case MMJ_E_EXISTS: return "journal already exists";
    case MMJ_E_POSITION_LOST: return "the journal was cut back behind the tailer's position";
    case MMJ_E_SEGMENTS_MISSING: return "segments are missing at the end of the journal";
    default: return "unknown status";
    }
}

const char *mmj_reason_name(int reason)
{
    switch (reason) {
    case MMJ_R_NONE: return "none";
    case MMJ_R_TORN: return "torn record (unpublished bytes after the last record)";
    case MMJ_R_BAD_LENGTH: return "bad length word";
    case MMJ_R_BAD_SALT: return "bad salt check (stale bytes)";
    case MMJ_R_BAD_CRC: return "bad crc";
    case MMJ_R_SEQ_GAP: return "sequence discontinuity";
    case MMJ_R_BAD_CONTROL: return "bad control record";
    case MMJ_R_BAD_HEADER: return "bad segment header";
    case MMJ_R_MISSING_SEGMENT: return "missing segment";
    case MMJ_R_NO_EOS: return "segment not sealed but followed by another";
    case MMJ_R_CHAIN: return "hash chain mismatch (records altered or missing)";
    case MMJ_R_PREV_SEAL: return "previous seal hash mismatch";
    case MMJ_R_TRAILING: return "non-zero bytes after the end of the segment's records";
    default: return "unknown reason";
    }
}

uint64_t mmj_pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

void mmj_segment_name(char *buf, size_t cap, uint64_t index, int tmp)
{
    snprintf(buf, cap, "seg-%016llu.mmj%s", (unsigned long long)index, tmp ? ".tmp" : "");
}

uint32_t mmj_salt_check(const uint8_t *salt, uint64_t index)
{
    uint8_t buf[MMJ_SALT_SIZE + 8];
    memcpy(buf, salt, MMJ_SALT_SIZE);
    memcpy(buf + MMJ_SALT_SIZE, &index, 8);
    return mmj_crc32c(0, buf, sizeof buf);
}

void mmj_genesis(const uint8_t *salt, uint8_t *out)
{
    static const char tag[] = "mmj-genesis-v1";
    uint8_t buf[sizeof tag - 1 + MMJ_SALT_SIZE];
    memcpy(buf, tag, sizeof tag - 1);
    memcpy(buf + sizeof tag - 1, salt, MMJ_SALT_SIZE);
    mmj_blake2b_256(buf, sizeof buf, out);
}

int mmj_fsync_dir(int dirfd)
{
    return fsync(dirfd) == 0 ? MMJ_OK : MMJ_E_IO;
}

int mmj_fsync_parent(const char *path)
{
    char parent[4096];
    size_t n = strlen(path);
    if (n >= sizeof parent) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(parent, path, n + 1);
    while (n > 1 && parent[n - 1] == '/')   /* "a/b/" names b */
        parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash)
        strcpy(parent, ".");
    else if (slash == parent)
        parent[1] = 0;   /* "/b": the root */
    else
        *slash = 0;
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int mmj_open_dir(const char *dir, int *dirfd, int *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            *err = errno;
        return (errno == ENOENT || errno == ENOTDIR) ? MMJ_E_NOT_JOURNAL : MMJ_E_IO;
    }
    *dirfd = fd;
    return MMJ_OK;
}

int mmj_meta_read(int dirfd, uint8_t *salt, int *err)
{
    uint8_t meta[MMJ_META_SIZE];
    int fd = openat(dirfd, MMJ_META_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            *err = errno;
        return errno == ENOENT ? MMJ_E_NOT_JOURNAL : MMJ_E_IO;
    }
    ssize_t got = pread(fd, meta, sizeof meta, 0);
    int saved = errno;
    close(fd);
    if (got < 0) {
        if (err)
            *err = saved;
        return MMJ_E_IO;
    }
    if (got != (ssize_t)sizeof meta || memcmp(meta, META_MAGIC, 8) != 0)
        return MMJ_E_NOT_JOURNAL;
    uint32_t version, crc;
    memcpy(&version, meta + 8, 4);
    memcpy(&crc, meta + 60, 4);
    /* a newer version is believed only with an intact checksum; a flipped bit is corruption */
    if (crc != mmj_crc32c(0, meta, 60))
        return MMJ_E_CORRUPT;
    if (version > MMJ_FORMAT_VERSION)
        return MMJ_E_VERSION;
    if (version < MMJ_FORMAT_VERSION_MIN)
        return MMJ_E_CORRUPT;
    memcpy(salt, meta + 16, MMJ_SALT_SIZE);
    return MMJ_OK;
}

/* Write a small file atomically: <name>.tmp, fsync, rename, fsync the directory. */
int mmj_write_atomic(int dirfd, const char *name, const void *data, size_t len, int *err)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
        int saved = errno ? errno : EIO;
        close(fd);
        unlinkat(dirfd, tmp, 0);
        errno = saved;
        goto fail;
    }
    close(fd);
    if (renameat(dirfd, tmp, dirfd, name) != 0 || fsync(dirfd) != 0)
        goto fail;
    return MMJ_OK;
fail:
    if (err)
        *err = errno;
    return (errno == ENOSPC || errno == EDQUOT) ? MMJ_E_DISK_FULL : MMJ_E_IO;
}

int mmj_meta_create(int dirfd, uint8_t *salt, uint32_t version, int *err)
{
    uint8_t meta[MMJ_META_SIZE] = {0};
    size_t have = 0;
    while (have < MMJ_SALT_SIZE) {
        ssize_t n = getrandom(salt + have, MMJ_SALT_SIZE - have, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (err)
                *err = errno;
            return MMJ_E_IO;
        }
        have += (size_t)n;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t created = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    memcpy(meta, META_MAGIC, 8);
    memcpy(meta + 8, &version, 4);
    memcpy(meta + 16, salt, MMJ_SALT_SIZE);
    memcpy(meta + 32, &created, 8);
    uint32_t crc = mmj_crc32c(0, meta, 60);
    memcpy(meta + 60, &crc, 4);
    return mmj_write_atomic(dirfd, MMJ_META_NAME, meta, sizeof meta, err);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int mmj_list_segments(int dirfd, uint64_t **indices, size_t *count, int *err)
{
    int fd = dup(dirfd);
    if (fd < 0)
        goto fail;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        goto fail;
    }
    rewinddir(d);
    size_t n = 0, cap = 16;
    uint64_t *out = malloc(cap * sizeof *out);
    if (!out) {
        closedir(d);
        return MMJ_E_NOMEM;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (strlen(s) != 24 || memcmp(s, "seg-", 4) != 0 || memcmp(s + 20, ".mmj", 4) != 0)
            continue;
        uint64_t idx = 0;
        int digits = 1;
        for (int i = 4; i < 20; i++) {
            if (s[i] < '0' || s[i] > '9')
                digits = 0;
            idx = idx * 10 + (uint64_t)(s[i] - '0');
        }
        if (!digits)
            continue;
        if (n == cap) {
            uint64_t *grown = realloc(out, 2 * cap * sizeof *out);
            if (!grown) {
                free(out);
                closedir(d);
                return MMJ_E_NOMEM;
            }
            out = grown;
            cap *= 2;
        }
        out[n++] = idx;
    }
    closedir(d);
    qsort(out, n, sizeof *out, cmp_u64);
    *indices = out;
    *count = n;
    return MMJ_OK;
fail:
    if (err)
        *err = errno;
    return MMJ_E_IO;
}

int mmj_map_segment(int dirfd, uint64_t index, int writable, mmj_map *m, int *err)
{
    char name[64];
    mmj_segment_name(name, sizeof name, index, 0);
    memset(m, 0, sizeof *m);
    int fd = openat(dirfd, name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            *err = errno;
        return errno == ENOENT ? MMJ_E_NOT_FOUND : MMJ_E_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (err)
            *err = errno;
        close(fd);
        return MMJ_E_IO;
    }
    if ((uint64_t)st.st_size < MMJ_HEADER_SIZE + MMJ_SEGMENT_RESERVE) {
        close(fd);
        m->size = (uint64_t)st.st_size;
        m->index = index;
        return MMJ_E_CORRUPT;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        if (err)
            *err = errno;
        close(fd);
        return MMJ_E_IO;
    }
    close(fd);   /* the mapping keeps the file; no descriptor stays open per segment */
    m->base = p;
    m->size = (uint64_t)st.st_size;
    m->index = index;
    m->populated = 0;
    m->dev = (uint64_t)st.st_dev;
    m->ino = (uint64_t)st.st_ino;
    return MMJ_OK;
}

void mmj_unmap(mmj_map *m)
{
    if (m->base)
        munmap(m->base, m->size);
    m->base = NULL;
}

void mmj_header_build(uint8_t *h, uint32_t version, const uint8_t *salt, uint64_t index, uint64_t first_seq,
                      uint64_t size, const uint8_t *prev_seal)
{
    uint32_t hsize = MMJ_HEADER_SIZE;
    memset(h, 0, MMJ_HEADER_SIZE);
    memcpy(h, SEG_MAGIC, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &hsize, 4);
    memcpy(h + 16, salt, MMJ_SALT_SIZE);
    memcpy(h + 32, &index, 8);
    memcpy(h + 40, &first_seq, 8);
    memcpy(h + 48, &size, 8);
    memcpy(h + 56, prev_seal, MMJ_HASH_SIZE);
    uint32_t crc = mmj_crc32c(0, h, 124);
    memcpy(h + 124, &crc, 4);
}

int mmj_header_parse(const uint8_t *h, const uint8_t *salt, mmj_seg_header *out, int *version_newer)
{
    uint32_t crc;
    memset(out, 0, sizeof *out);
    *version_newer = 0;
    if (memcmp(h, SEG_MAGIC, 8) != 0)
        return MMJ_R_BAD_HEADER;
    out->magic_ok = 1;
    memcpy(&out->version, h + 8, 4);
    memcpy(&out->header_size, h + 12, 4);
    memcpy(&out->index, h + 32, 8);
    memcpy(&out->first_seq, h + 40, 8);
    memcpy(&out->size, h + 48, 8);
    memcpy(&crc, h + 124, 4);
    if (crc != mmj_crc32c(0, h, 124))
        return MMJ_R_BAD_HEADER;
    if (out->version > MMJ_FORMAT_VERSION) {   /* believed only with an intact checksum */
        *version_newer = 1;
        return MMJ_R_BAD_HEADER;
    }
    if (out->version < MMJ_FORMAT_VERSION_MIN || out->header_size != MMJ_HEADER_SIZE ||
        memcmp(h + 16, salt, MMJ_SALT_SIZE) != 0)
        return MMJ_R_BAD_HEADER;
    return MMJ_R_NONE;
}

int mmj_header_check(const mmj_map *m, const uint8_t *salt, uint64_t *first_seq, uint8_t *prev_seal,
                     int *version_newer, uint32_t *version_out)
{
    mmj_seg_header f;
    if (mmj_header_parse(m->base, salt, &f, version_newer) != MMJ_R_NONE || f.index != m->index ||
        f.size != m->size)
        return MMJ_R_BAD_HEADER;
    if (first_seq)
        *first_seq = f.first_seq;
    if (prev_seal)
        memcpy(prev_seal, m->base + 56, MMJ_HASH_SIZE);
    if (version_out)
        *version_out = f.version;
    return MMJ_R_NONE;
}

int mmj_record_check(const uint8_t *base, uint64_t size, uint64_t off, uint32_t salt_check,
                     uint64_t expect_seq, mmj_record *out)
{
    assert(off % 8 == 0);
    if (off + MMJ_RECORD_HEADER_SIZE > size)
        return -MMJ_R_BAD_LENGTH;
    const mmj_rec_hdr *h = (const mmj_rec_hdr *)(base + off);
    /* scans are chains of dependent header loads: start the next lines (and pages) early */
    __builtin_prefetch(base + off + MMJ_PREFETCH_AHEAD);
    __builtin_prefetch(base + off + MMJ_PREFETCH_AHEAD + 64);
    uint32_t word = __atomic_load_n(&h->word, __ATOMIC_ACQUIRE);
    if (word == 0)
        return 0;
    if (!(word & MMJ_FLAG_PUBLISHED) || (word & MMJ_FLAG_RESERVED))
        return -MMJ_R_BAD_LENGTH;
    uint32_t len = word & MMJ_LENGTH_MASK;
    uint64_t rsize = mmj_pad8(MMJ_RECORD_HEADER_SIZE + (uint64_t)len);
    if (off + rsize > size)
        return -MMJ_R_BAD_LENGTH;
    if (h->salt_check != salt_check)
        return -MMJ_R_BAD_SALT;
    uint32_t crc = mmj_crc32c_prefixed(salt_check, word, base + off + 8, rsize - 8);
    if (crc != h->crc)
        return -MMJ_R_BAD_CRC;
    if (h->seq != expect_seq)
        return -MMJ_R_SEQ_GAP;
    if (word & MMJ_FLAG_EOS) {
        if (len != 0 || h->rtype != 0 || (word & MMJ_FLAG_CONTROL))
            return -MMJ_R_BAD_CONTROL;
    } else if (word & MMJ_FLAG_CONTROL) {
        if ((h->rtype != MMJ_RTYPE_CHECKPOINT && h->rtype != MMJ_RTYPE_SEAL) || len != MMJ_CONTROL_PAYLOAD)
            return -MMJ_R_BAD_CONTROL;
    } else if (h->rtype == 0 || h->rtype == MMJ_RTYPE_CHECKPOINT || h->rtype == MMJ_RTYPE_SEAL) {
        return -MMJ_R_BAD_CONTROL;
    }
    if (out)
        mmj_record_fill(base, off, out);
    return (int)(rsize > 0x7fffffff ? 0x7fffffff : rsize);
}

int mmj_record_check_any_seq(const uint8_t *base, uint64_t size, uint64_t off, uint32_t salt_check,
                             mmj_record *out)
{
    if (off + MMJ_RECORD_HEADER_SIZE > size)
        return -MMJ_R_BAD_LENGTH;
    const mmj_rec_hdr *h = (const mmj_rec_hdr *)(base + off);
    /* the salt check first: most offsets inside damage fail it without a crc */
    if (h->salt_check != salt_check)
        return -MMJ_R_BAD_SALT;
    return mmj_record_check(base, size, off, salt_check, h->seq, out);
}

uint64_t mmj_record_fill(const uint8_t *base, uint64_t off, mmj_record *out)
{
    const mmj_rec_hdr *h = (const mmj_rec_hdr *)(base + off);
    uint32_t word = h->word;
    out->seq = h->seq;
    out->ts_ns = h->ts_ns;
    out->rtype = h->rtype;
    out->ts_source = h->ts_source;
    out->clock_state = h->clock_state;
    out->flags = word & (MMJ_FLAG_EOS | MMJ_FLAG_CONTROL);
    out->length = word & MMJ_LENGTH_MASK;
    out->payload = base + off + MMJ_RECORD_HEADER_SIZE;
    out->offset = off;
    return mmj_pad8(MMJ_RECORD_HEADER_SIZE + (uint64_t)out->length);
}

uint64_t mmj_nonzero_end(const uint8_t *base, uint64_t from, uint64_t size)
{
    /* Scan forward in words; fallocated tails are zero pages so this is a fast read. */
    uint64_t last = 0;
    uint64_t off = from;
    while (off < size && (off & 7)) {
        if (base[off])
            last = off + 1;
        off++;
    }
    for (; off + 8 <= size; off += 8) {
        uint64_t v;
        memcpy(&v, base + off, 8);
        if (v) {
            for (int i = 7; i >= 0; i--)
                if (base[off + (uint64_t)i]) {
                    last = off + (uint64_t)i + 1;
                    break;
                }
        }
    }
    for (; off < size; off++)
        if (base[off])
            last = off + 1;
    return last;
}

uint64_t mmj_first_nonzero(const uint8_t *base, uint64_t from, uint64_t size)
{
    uint64_t off = from;
    while (off < size && (off & 7)) {
        if (base[off])
            return off;
        off++;
    }
    for (; off + 8 <= size; off += 8) {
        uint64_t v;
        memcpy(&v, base + off, 8);
        if (v)
            break;
    }
    for (; off < size; off++)
        if (base[off])
            return off;
    return size;
}

int mmj_lock_read(int fd, int32_t *pid, int32_t *clean)
{
    mmj_lock_info info;
    mmj_lock_read_info(fd, &info);
    *pid = info.pid;
    *clean = info.state == MMJ_LOCK_CLOSED;
    return MMJ_OK;
}

int mmj_lock_probe(const char *dir, int32_t *live, int32_t *pid, int32_t *clean)
{
    int dirfd;
    if (!dir || !live || !pid || !clean)
        return MMJ_E_ARG;
    int rc = mmj_open_dir(dir, &dirfd, NULL);
    if (rc != MMJ_OK)
        return rc;
    *live = 0;
    *pid = 0;
    *clean = 0;
    int fd = openat(dirfd, MMJ_LOCK_NAME, O_RDONLY | O_CLOEXEC);
    close(dirfd);
    if (fd < 0)
        return errno == ENOENT ? MMJ_OK : MMJ_E_IO;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0)
        *live = fl.l_type != F_UNLCK;
    mmj_lock_read(fd, pid, clean);
    close(fd);
    return MMJ_OK;
}

int mmj_read_salt(const char *dir, uint8_t *out)
{
    int dirfd;
    if (!dir || !out)
        return MMJ_E_ARG;
    int rc = mmj_open_dir(dir, &dirfd, NULL);
    if (rc != MMJ_OK)
        return rc;
    rc = mmj_meta_read(dirfd, out, NULL);
    close(dirfd);
    return rc;
}

int64_t mmj_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int mmj_push_u64(uint64_t **items, uint64_t *n, uint64_t *cap, uint64_t value)
{
    if (*n == *cap) {
        uint64_t room = *cap ? 2 * *cap : 64;
        uint64_t *grown = realloc(*items, room * sizeof *grown);
        if (!grown)
            return MMJ_E_NOMEM;
        *items = grown;
        *cap = room;
    }
    (*items)[(*n)++] = value;
    return MMJ_OK;
}
