/* The single writer: lock, recovery on open, preallocated segments, appends with release
 * publication, checkpoints and seals, durability modes with a latched failure.
 *
 * Knows the on-disk format (journal.h) and POSIX; knows nothing about payload meaning or Python.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "journal_internal.h"
#include "journal_testhook.h"
#include "journal_writer_state.h"



static int fail_io(mmj_writer *w, int *err)
{
    w->last_errno = errno;
    if (err)
        *err = errno;
    return (errno == ENOSPC || errno == EDQUOT) ? MMJ_E_DISK_FULL : MMJ_E_IO;
}

/* What every call reports once the writer is latched: MMJ_E_CORRUPT after damage behind a
 * summary (journal_recheck.c; the damage is then told), MMJ_E_IO when that check could not read a
 * trusted segment, else MMJ_E_DURABILITY (a failed msync/fsync). */
static int latched(mmj_writer *w)
{
    if (w->damage_reason) {
        w->damage_told = 1;
        return MMJ_E_CORRUPT;
    }
    return w->check_failed ? MMJ_E_IO : MMJ_E_DURABILITY;
}

/* A failed msync/fsync (errno set): fatal and latched, whatever the errno (an fsync can fail
 * with ENOSPC too; it is never mistaken for a lack of space to retry later). */
static int latch(mmj_writer *w, int *err)
{
    w->failed_errno = w->last_errno = errno ? errno : EIO;
    w->sync_failed = 1;
    if (err)
        *err = w->failed_errno;
    return MMJ_E_DURABILITY;
}

/* msync [from, to) of the current segment; a failure latches the writer. A writer latched for
 * any other reason (damage, a check that could not read) still msyncs: what it published before
 * the latch was acknowledged. */
static int sync_range(mmj_writer *w, uint64_t from, uint64_t to)
{
    if (w->sync_failed)
        return latched(w);
    if (to <= from)
        return MMJ_OK;
    uint64_t start = from & ~(uint64_t)(w->page - 1);
    if (msync(w->seg.base + start, (size_t)(to - start), MS_SYNC) != 0)
        return latch(w, NULL);
    if (to > w->synced_off)
        w->synced_off = to;
    if (w->sync_hook)
        w->sync_hook(w->sync_ctx, w->seg.index, start, to);
    /* atomic stores: the helper thread's group tick reads both without the mutex */
    __atomic_store_n(&w->unsynced, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->last_sync_ns, mmj_now_ns(), __ATOMIC_RELAXED);
    return MMJ_OK;
}

static int durable(const mmj_writer *w)
{
    return w->opt.durability != MMJ_DUR_PAGECACHE;
}

/* fdatasync sealed segment `index` whole (the sync hook hears [from's page, its size)), then mark
 * its summary DURABLE (best effort: without one, the next writer after a crash syncs it again). A
 * failure latches the writer. */
static int sync_sealed(mmj_writer *w, uint64_t index, uint64_t from)
{
    char name[64];
    struct stat st;
    mmj_segment_name(name, sizeof name, index, 0);
    int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fdatasync(fd) != 0 || fstat(fd, &st) != 0) {
        int status = latch(w, NULL);
        if (fd >= 0)
            close(fd);
        return status;
    }
    close(fd);
    if (w->sync_hook)
        w->sync_hook(w->sync_ctx, index, from & ~(uint64_t)(w->page - 1), (uint64_t)st.st_size);
    mmj_footer_mark_durable(w->dirfd, index);
    return MMJ_OK;
}

/* fdatasync the sealed segments not known durable: those recovery found so (`cold`: a crashed or
 * unsynced pagecache writer's) and those rolled away since the last sync (pagecache mode seals
 * them without an msync), so that mmj_sync makes everything appended so far durable, not only the
 * current segment. A failure latches the writer. */
static int sync_retired(mmj_writer *w)
{
    if (w->sync_failed)
        return latched(w);
    for (uint64_t k = 0; k < w->n_cold; k++) {
        int rc = sync_sealed(w, w->cold[k], 0);
        if (rc != MMJ_OK)
            return rc;
    }
    w->n_cold = 0;
    for (; w->unsynced_retired && w->unsynced_seg < w->seg.index; w->unsynced_seg++) {
        int rc = sync_sealed(w, w->unsynced_seg, w->unsynced_from);
        if (rc != MMJ_OK)
            return rc;
        w->unsynced_from = 0;
    }
    w->unsynced_retired = 0;
    return MMJ_OK;
}

/* Write one record at w->off, publishing its word last. The caller checked the space. */
static void put_record(mmj_writer *w, uint32_t flags, uint32_t rtype, const void *payload, uint64_t len,
                       int64_t ts_ns, uint32_t ts_source, uint32_t clock_state)
{
    uint64_t rsize = mmj_pad8(MMJ_RECORD_HEADER_SIZE + len);
    assert(w->off + rsize <= w->seg.size);
    uint8_t *p = w->seg.base + w->off;
    mmj_rec_hdr *h = (mmj_rec_hdr *)p;
    h->seq = w->next_seq;
    h->ts_ns = ts_ns;
    h->rtype = (uint16_t)rtype;
    h->ts_source = (uint8_t)ts_source;
    h->clock_state = (uint8_t)clock_state;
    h->salt_check = w->salt_check;
    if (len)
        memcpy(p + MMJ_RECORD_HEADER_SIZE, payload, len);
    /* padding is zero: the file is zero-filled and recovery zeroes any discarded tail */
    uint32_t word = MMJ_FLAG_PUBLISHED | flags | (uint32_t)len;
    h->crc = mmj_crc32c_prefixed(w->salt_check, word, p + 8, rsize - 8);
    MMJ_TEST_HOOK(MMJ_HOOK_IN_APPEND, w->next_seq, w->seg.index);   /* a crash drill's kill point */
    __atomic_store_n(&h->word, word, __ATOMIC_RELEASE);
    w->off += rsize;
    __atomic_store_n(&w->pub_off, w->off, __ATOMIC_RELEASE);
}

#define MMJ_RUN_CHUNK 32   /* records written, checksummed and published together by put_run */

/* Write n data records of one fixed payload size back to back at w->off (the caller checked the
 * space): headers and payloads of a chunk first, then their CRCs (interleaved), then their words
 * in order, each published with release semantics as put_record does. Until its word is stored
 * a record is invisible (word 0), exactly as a record put_record has not finished. */
static void put_run(mmj_writer *w, uint32_t rtype, const char *payloads, uint64_t size, uint64_t n,
                    const int64_t *ts_ns, int64_t ts_scalar, uint32_t ts_source, uint32_t clock_state)
{
    uint64_t rsize = mmj_pad8(MMJ_RECORD_HEADER_SIZE + size);
    uint32_t word = MMJ_FLAG_PUBLISHED | (uint32_t)size;
    mmj_rec_hdr tmpl = {.rtype = (uint16_t)rtype, .ts_source = (uint8_t)ts_source,
                        .clock_state = (uint8_t)clock_state, .salt_check = w->salt_check, .ts_ns = ts_scalar};
    assert(w->off + n * rsize <= w->seg.size);
    for (uint64_t done = 0; done < n;) {
        uint64_t chunk = n - done < MMJ_RUN_CHUNK ? n - done : MMJ_RUN_CHUNK;
        uint8_t *first = w->seg.base + w->off;
        for (uint64_t k = 0; k < chunk; k++) {
            uint8_t *p = first + k * rsize;
            tmpl.seq = w->next_seq + k;
            if (ts_ns)
                tmpl.ts_ns = ts_ns[done + k];
            /* all but the word (still 0 in the zero-filled file) and the CRC */
            memcpy(p + 8, (const uint8_t *)&tmpl + 8, MMJ_RECORD_HEADER_SIZE - 8);
            memcpy(p + MMJ_RECORD_HEADER_SIZE, payloads + (done + k) * size, size);
        }
        mmj_crc32c_blocks(w->salt_check, word, first, rsize, 8, rsize - 8, chunk, 4);
        for (uint64_t k = 0; k < chunk; k++)
            __atomic_store_n(&((mmj_rec_hdr *)(first + k * rsize))->word, word, __ATOMIC_RELEASE);
        w->off += chunk * rsize;
        w->next_seq += chunk;
        w->seg_data += chunk;
        w->since_anchor += chunk;
        __atomic_store_n(&w->pub_off, w->off, __ATOMIC_RELEASE);
        done += chunk;
    }
}

/* A CHECKPOINT or SEAL: hash of the chain since the anchor; the anchor moves to this record. */
static void put_control(mmj_writer *w, uint32_t rtype, uint8_t *hash_out)
{
    uint8_t payload[MMJ_CONTROL_PAYLOAD];
    pthread_mutex_lock(&w->hash_mu);
    mmj_ahead_hash(w, w->off, payload);   /* the helper has hashed most of it already */
    mmj_ahead_reset(w, payload, w->off);
    pthread_mutex_unlock(&w->hash_mu);
    memcpy(payload + MMJ_HASH_SIZE, &w->seg_data, 8);
    w->since_anchor = 0;
    put_record(w, MMJ_FLAG_CONTROL, rtype, payload, sizeof payload, 0, 0, 0);
    if (hash_out)
        memcpy(hash_out, payload, MMJ_HASH_SIZE);
}

/* Map the preallocated file fd (named tmp, S bytes), write the header of segment `index`, make
 * it durable and rename it to its segment name. Closes fd; unlinks tmp on failure. */
static int finish_segment(mmj_writer *w, int fd, const char *tmp, uint64_t index, uint64_t first_seq,
                          const uint8_t *prev_seal, uint8_t *mapped, uint64_t populated, mmj_map *out, int *err)
{
    char name[64];
    mmj_segment_name(name, sizeof name, index, 0);
    uint64_t size = w->opt.segment_size;
    void *p = mapped ? mapped : mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int status = fail_io(w, err);
        close(fd);
        unlinkat(w->dirfd, tmp, 0);
        return status;
    }
    mmj_header_build(p, w->opt.format_version, w->salt, index, first_seq, size, prev_seal);
    if (durable(w) && fsync(fd) != 0) {
        int status = latch(w, err);
        munmap(p, (size_t)size);
        close(fd);
        return status;
    }
    close(fd);
    if (renameat(w->dirfd, tmp, w->dirfd, name) != 0) {
        int status = fail_io(w, err);
        munmap(p, (size_t)size);
        unlinkat(w->dirfd, tmp, 0);
        return status;
    }
    if (fsync(w->dirfd) != 0) {
        int status = latch(w, err);
        munmap(p, (size_t)size);
        return status;
    }
    if (durable(w) && w->sync_hook)   /* header and zeros fsynced, the name made durable */
        w->sync_hook(w->sync_ctx, index, 0, size);
    out->base = p;
    out->size = size;
    out->index = index;
    out->populated = mapped ? populated : 0;
    out->version = w->opt.format_version;
    return MMJ_OK;
}

/* Create file `tmp` preallocated to the segment size; the open descriptor in *fd. */
static int preallocate(mmj_writer *w, const char *tmp, int *fd, int *err)
{
    *fd = openat(w->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0)
        return fail_io(w, err);
    int rc = posix_fallocate(*fd, 0, (off_t)w->opt.segment_size);
    if (rc != 0) {
        errno = rc;
        int status = fail_io(w, err);
        close(*fd);
        unlinkat(w->dirfd, tmp, 0);
        return status;
    }
    return MMJ_OK;
}

/* The helper's file for segment `index` (mmj_ahead_take_next), waiting a bounded time for one it
 * is preparing right now rather than preallocating a second file beside it; -1 if there is none
 * (or it is still not done after MMJ_ROLL_WAIT_NS, or an earlier roll already waited that long
 * for it: the helper drops it when it finishes). */
static int take_prepared(mmj_writer *w, uint64_t index, uint8_t **mapped, uint64_t *populated)
{
    pthread_mutex_lock(&w->hash_mu);
    mmj_ahead_wait_next(w, MMJ_ROLL_WAIT_NS);
    int fd = mmj_ahead_take_next(w, index, mapped, populated);
    pthread_mutex_unlock(&w->hash_mu);
    return fd;
}

/* Create, preallocate and map segment `index` under a temp name, then rename it in place. */
static int create_segment(mmj_writer *w, uint64_t index, uint64_t first_seq, const uint8_t *prev_seal,
                          mmj_map *out, int *err)
{
    char tmp[64];
    mmj_segment_name(tmp, sizeof tmp, index, 1);
    uint8_t *mapped = NULL;
    uint64_t populated = 0;
    int fd = take_prepared(w, index, &mapped, &populated);
    if (fd < 0) {
        int rc = preallocate(w, tmp, &fd, err);
        if (rc == MMJ_E_DISK_FULL) {
            /* the space may be in the file the helper is still preparing: wait for it again */
            fd = take_prepared(w, index, &mapped, &populated);
            rc = fd < 0 ? MMJ_E_DISK_FULL : MMJ_OK;
        }
        if (rc != MMJ_OK)
            return rc;
    }
    return finish_segment(w, fd, tmp, index, first_seq, prev_seal, mapped, populated, out, err);
}

/* Turn the reserve file into segment `index`: rename it to the segment's temp name, then finish
 * it like a new segment. A crash in between leaves seg-N.mmj.tmp, which recovery deletes. */
static int take_reserve(mmj_writer *w, uint64_t index, uint64_t first_seq, const uint8_t *prev_seal, mmj_map *out)
{
    char tmp[64];
    struct stat st;
    mmj_segment_name(tmp, sizeof tmp, index, 1);
    w->reserve_ready = 0;
    if (renameat(w->dirfd, MMJ_RESERVE_NAME, w->dirfd, tmp) != 0)
        return fail_io(w, NULL);
    int fd = openat(w->dirfd, tmp, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int status = fail_io(w, NULL);
        unlinkat(w->dirfd, tmp, 0);
        return status;
    }
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != w->opt.segment_size) {
        close(fd);
        unlinkat(w->dirfd, tmp, 0);
        w->last_errno = ENOSPC;
        return MMJ_E_DISK_FULL;
    }
    int rc = finish_segment(w, fd, tmp, index, first_seq, prev_seal, NULL, 0, out, NULL);
    if (rc == MMJ_OK)
        w->in_reserve = 1;
    return rc;
}

/* Preallocate a fresh reserve file (temp name, then rename). */
static int create_reserve(mmj_writer *w, int *err)
{
    int fd;
    int rc = preallocate(w, MMJ_RESERVE_TMP, &fd, err);
    if (rc != MMJ_OK)
        return rc;
    /* a failed fsync is fatal and latched (even with ENOSPC): only fallocate's ENOSPC means
     * low space, which retry_space may try again */
    if (durable(w) && fsync(fd) != 0) {
        rc = latch(w, err);
        close(fd);
        unlinkat(w->dirfd, MMJ_RESERVE_TMP, 0);
        return rc;
    }
    close(fd);
    if (renameat(w->dirfd, MMJ_RESERVE_TMP, w->dirfd, MMJ_RESERVE_NAME) != 0) {
        rc = fail_io(w, err);
        unlinkat(w->dirfd, MMJ_RESERVE_TMP, 0);
        return rc;
    }
    if (fsync(w->dirfd) != 0)
        return latch(w, err);
    w->reserve_ready = 1;
    return MMJ_OK;
}

/* At open, before recovery: keep a reserve file of the right size (it is never written while it
 * is the reserve, so it is still zero-filled); drop one of another size or a leftover temp. */
static void probe_reserve(mmj_writer *w)
{
    struct stat st;
    unlinkat(w->dirfd, MMJ_RESERVE_TMP, 0);
    unlinkat(w->dirfd, MMJ_NEXT_TMP, 0);   /* a next segment preallocated by a crashed writer */
    if (fstatat(w->dirfd, MMJ_RESERVE_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == w->opt.segment_size &&
            (uint64_t)st.st_blocks * 512 >= w->opt.segment_size)
            w->reserve_ready = 1;
        else
            unlinkat(w->dirfd, MMJ_RESERVE_NAME, 0);
    }
}

/* At open, after recovery: make a reserve if there is none; without space for it the journal
 * starts in low-space state. */
static int ensure_reserve(mmj_writer *w, int *err)
{
    if (w->reserve_ready)
        return MMJ_OK;
    int rc = create_reserve(w, err);
    if (rc == MMJ_E_DISK_FULL) {
        w->low_space = 1;
        if (err)
            *err = 0;
        return MMJ_OK;
    }
    return rc;
}

/* Without the helper thread (before it starts, or if it could not), prefault inline. */
static void prefault_ahead(mmj_writer *w)
{
    if (!w->helper_running)
        while (mmj_ahead_prefault(w, w->off))
            ;
}

static void start_segment(mmj_writer *w, const mmj_map *m, const uint8_t *prev_seal)
{
    w->seg = *m;
    w->salt_check = mmj_salt_check(w->salt, m->index);
    w->off = MMJ_HEADER_SIZE;
    w->seg_data = 0;
    mmj_ahead_reset(w, prev_seal, 0);
    w->since_anchor = 0;
    w->synced_off = MMJ_HEADER_SIZE;
    __atomic_store_n(&w->unsynced, 0, __ATOMIC_RELAXED);
    w->prefaulted = m->populated;
    w->next_failed = 0;
    __atomic_store_n(&w->pub_off, w->off, __ATOMIC_RELEASE);
    prefault_ahead(w);
}

/* Seal the current segment (SEAL + EOS) and make sure it is durable in durable modes. */
static int seal_current(mmj_writer *w, const uint8_t *seal_hash_expected, uint8_t *seal_out)
{
    uint8_t seal[MMJ_HASH_SIZE];
    uint64_t seal_off = w->off, records = w->seg_data;
    assert(w->off + MMJ_SEGMENT_RESERVE <= w->seg.size);
    put_control(w, MMJ_RTYPE_SEAL, seal);
    if (seal_hash_expected)
        assert(memcmp(seal, seal_hash_expected, MMJ_HASH_SIZE) == 0);
    put_record(w, MMJ_FLAG_EOS, 0, NULL, 0, 0, 0, 0);
    if (seal_out)
        memcpy(seal_out, seal, MMJ_HASH_SIZE);
    if (durable(w)) {
        int rc = sync_range(w, w->synced_off, w->off);
        if (rc != MMJ_OK)
            return rc;
    }
    /* the summary after the seal is durable; failing to write it only costs readers a scan.
     * DURABLE iff msyncs (all from synced_off on, the first from the header's page) covered the
     * segment through its EOS: only then may a recovering writer skip scanning it */
    mmj_footer_write(w->dirfd, w->seg.index, w->next_seq - records, records, seal_off, seal,
                     w->synced_off >= w->off);
    return MMJ_OK;
}

/* End the current segment and continue in a new one. The new segment exists before the old
 * one is sealed, so a tailer that reads EOS always finds its successor. */
static int roll(mmj_writer *w, int reserve)
{
    uint8_t seal[MMJ_HASH_SIZE];
    mmj_map next;
    pthread_mutex_lock(&w->hash_mu);
    mmj_ahead_hash(w, w->off, seal);
    w->rolling = 1;   /* until start_segment, w->seg is the old segment: the helper must not prepare */
    pthread_mutex_unlock(&w->hash_mu);
    int rc = create_segment(w, w->seg.index + 1, w->next_seq, seal, &next, NULL);
    if (rc == MMJ_E_DISK_FULL) {
        /* no ordinary space: low-space state; a risk-reducing append may take the reserve */
        w->low_space = 1;
        w->need_roll = 1;
        if (reserve && w->reserve_ready)
            rc = take_reserve(w, w->seg.index + 1, w->next_seq, seal, &next);
    } else if (rc == MMJ_OK) {
        w->in_reserve = 0;
    }
    if (rc != MMJ_OK) {
        pthread_mutex_lock(&w->hash_mu);
        w->rolling = 0;
        pthread_mutex_unlock(&w->hash_mu);
        return rc;
    }
    MMJ_TEST_HOOK(MMJ_HOOK_MID_ROLL, w->next_seq, next.index);   /* a crash drill's kill point */
    rc = seal_current(w, seal, NULL);
    if (!durable(w) && !w->unsynced_retired) {   /* sealed without an msync: mmj_sync fsyncs it */
        w->unsynced_retired = 1;
        w->unsynced_seg = w->seg.index;
        w->unsynced_from = w->synced_off;
    }
    pthread_mutex_lock(&w->hash_mu);   /* the helper must not touch the old mapping any more */
    pthread_mutex_lock(&w->fault_mu);
    mmj_ahead_retire(w, &w->seg);
    start_segment(w, &next, seal);
    w->rolling = 0;
    pthread_mutex_unlock(&w->fault_mu);
    pthread_mutex_unlock(&w->hash_mu);
    return rc;
}

static int make_room(mmj_writer *w, uint64_t rsize, int reserve)
{
    if (rsize + MMJ_SEGMENT_RESERVE > w->opt.segment_size - MMJ_HEADER_SIZE)
        return MMJ_E_TOO_LARGE;
    if (w->off + rsize + MMJ_SEGMENT_RESERVE > w->seg.size)
        return roll(w, reserve);
    return MMJ_OK;
}

static int write_checkpoint(mmj_writer *w, int reserve)
{
    uint64_t rsize = mmj_pad8(MMJ_RECORD_HEADER_SIZE + MMJ_CONTROL_PAYLOAD);
    if (w->off + rsize + MMJ_SEGMENT_RESERVE > w->seg.size)
        return roll(w, reserve);   /* the SEAL anchors the chain just as well */
    put_control(w, MMJ_RTYPE_CHECKPOINT, NULL);
    return MMJ_OK;
}

/* After an append call: checkpoint if due, then the durability mode's msync. */
static int after_append(mmj_writer *w, uint64_t records, int reserve)
{
    int rc = MMJ_OK;
    prefault_ahead(w);
    if (w->opt.checkpoint_every && w->since_anchor >= w->opt.checkpoint_every)
        rc = write_checkpoint(w, reserve);
    /* the records are published: no space for the checkpoint's roll only postpones it */
    if (rc == MMJ_E_DISK_FULL)
        rc = MMJ_OK;
    if (rc != MMJ_OK)
        return rc;
    switch (w->opt.durability) {
    case MMJ_DUR_SYNC:
        return sync_range(w, w->synced_off, w->off);
    case MMJ_DUR_GROUP:
        __atomic_store_n(&w->unsynced, w->unsynced + records, __ATOMIC_RELAXED);   /* the tick reads it */
        if (w->unsynced >= w->opt.group_records ||
            mmj_now_ns() - w->last_sync_ns >= (int64_t)w->opt.group_us * 1000)
            return sync_range(w, w->synced_off, w->off);
        return MMJ_OK;
    default:
        return MMJ_OK;
    }
}

int mmj_writer_group_tick(mmj_writer *w)
{
    /* a racy first look (the fields change under the mutex): a stale value only moves the msync
     * to the next tick; no lock is taken while nothing waits for one */
    if (w->opt.durability != MMJ_DUR_GROUP || !__atomic_load_n(&w->unsynced, __ATOMIC_RELAXED))
        return 0;
    int64_t due = __atomic_load_n(&w->last_sync_ns, __ATOMIC_RELAXED) + (int64_t)w->opt.group_us * 1000;
    if (mmj_now_ns() < due || pthread_mutex_trylock(&w->mutex) != 0)
        return 0;   /* busy: the holder is appending (and checks the budget itself) or syncing */
    int did = 0;
    if (!w->shut && !w->sync_failed && w->unsynced && mmj_now_ns() >= w->last_sync_ns + (int64_t)w->opt.group_us * 1000) {
        sync_range(w, w->synced_off, w->off);   /* a failure latches, as at an append */
        did = 1;
    }
    pthread_mutex_unlock(&w->mutex);
    return did;
}

static int check_type(const mmj_writer *w, uint32_t rtype, uint64_t len)
{
    if (rtype == 0 || rtype == MMJ_RTYPE_CHECKPOINT || rtype == MMJ_RTYPE_SEAL || rtype > 0xffff)
        return MMJ_E_ARG;
    if (len > MMJ_MAX_PAYLOAD)
        return MMJ_E_TOO_LARGE;
    if (w->type_size[rtype] && w->type_size[rtype] != len)
        return MMJ_E_PAYLOAD_SIZE;
    return MMJ_OK;
}

/* Ordinary appends are refused in low-space state; a reserve append may go on. */
static int space_refused(mmj_writer *w, int reserve)
{
    if (w->low_space && !reserve) {
        w->last_errno = ENOSPC;
        return 1;
    }
    return 0;
}

static int64_t append_locked(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len, int64_t ts_ns,
                             uint32_t ts_source, uint32_t clock_state, int reserve)
{
    if (w->failed_errno)
        return latched(w);
    if (space_refused(w, reserve))
        return MMJ_E_DISK_FULL;
    int rc = check_type(w, rtype, len);
    if (rc == MMJ_OK && ((len && !payload) || ts_source > 0xff || clock_state > 0xff))
        rc = MMJ_E_ARG;
    if (rc == MMJ_OK)
        rc = make_room(w, mmj_pad8(MMJ_RECORD_HEADER_SIZE + len), reserve);
    if (rc != MMJ_OK)
        return rc;
    uint64_t seq = w->next_seq;
    put_record(w, 0, rtype, payload, len, ts_ns, ts_source, clock_state);
    w->next_seq++;
    w->seg_data++;
    w->since_anchor++;
    rc = after_append(w, 1, reserve);
    /* the record is published; a failed msync is reported (and latched) instead of its seq */
    return rc == MMJ_OK ? (int64_t)seq : rc;
}

/* A batch that stops on error rc after k records were published (*written is k): those records
 * are in the journal, so they still get their checkpoint and their mode's msync. When that msync
 * fails the writer is latched failed, and that is what the batch reports: the caller must learn
 * that nothing more will be taken (and that the k records may not be durable), not only why the
 * rest did not fit. */
static int batch_stopped(mmj_writer *w, uint64_t k, int reserve, int rc)
{
    int done = k ? after_append(w, k, reserve) : MMJ_OK;
    return done == MMJ_E_DURABILITY ? done : rc;
}

static int batch_locked(mmj_writer *w, uint32_t rtype, const char *buf, uint64_t size, const uint64_t *offsets,
                        uint64_t count, const int64_t *ts_ns, int64_t ts_scalar, uint32_t ts_source,
                        uint32_t clock_state, uint64_t *first_seq, uint64_t *written, int reserve)
{
    if (w->failed_errno)
        return latched(w);
    if (space_refused(w, reserve))
        return MMJ_E_DISK_FULL;
    if ((count && !buf) || ts_source > 0xff || clock_state > 0xff)
        return MMJ_E_ARG;
    /* validate every record before writing any, so bad input writes nothing */
    for (uint64_t k = 0; k < count; k++) {
        uint64_t len = offsets ? offsets[k + 1] - offsets[k] : size;
        if (offsets && offsets[k + 1] < offsets[k])
            return MMJ_E_ARG;
        int rc = check_type(w, rtype, len);
        if (rc == MMJ_OK && mmj_pad8(MMJ_RECORD_HEADER_SIZE + len) + MMJ_SEGMENT_RESERVE >
                                w->opt.segment_size - MMJ_HEADER_SIZE)
            rc = MMJ_E_TOO_LARGE;
        if (rc != MMJ_OK)
            return rc;
        if (!offsets)
            break;
    }
    if (first_seq)
        *first_seq = w->next_seq;
    if (!offsets) {
        /* fixed size: as many records as the segment takes in one run, then roll */
        uint64_t rsize = mmj_pad8(MMJ_RECORD_HEADER_SIZE + size);
        for (uint64_t k = 0; k < count;) {
            int rc = make_room(w, rsize, reserve);
            if (rc != MMJ_OK)
                return batch_stopped(w, k, reserve, rc);
            uint64_t fit = (w->seg.size - MMJ_SEGMENT_RESERVE - w->off) / rsize;
            uint64_t run = count - k < fit ? count - k : fit;
            put_run(w, rtype, buf + k * size, size, run, ts_ns ? ts_ns + k : NULL, ts_scalar, ts_source,
                    clock_state);
            k += run;
            if (written)
                *written = k;
        }
        return count ? after_append(w, count, reserve) : MMJ_OK;
    }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t start = offsets ? offsets[k] : k * size;
        uint64_t len = offsets ? offsets[k + 1] - offsets[k] : size;
        int rc = make_room(w, mmj_pad8(MMJ_RECORD_HEADER_SIZE + len), reserve);
        if (rc != MMJ_OK)
            return batch_stopped(w, k, reserve, rc);
        put_record(w, 0, rtype, buf + start, len, ts_ns ? ts_ns[k] : ts_scalar, ts_source, clock_state);
        w->next_seq++;
        w->seg_data++;
        w->since_anchor++;
        if (written)
            *written = k + 1;
    }
    return count ? after_append(w, count, reserve) : MMJ_OK;
}

/* Whether appending a record of len payload bytes could block (mmj_append_nowait): an msync
 * (group and sync modes), or a roll (a wait for the helper's next segment, a posix_fallocate),
 * for the record or for the CHECKPOINT that may follow it. */
static int could_block(const mmj_writer *w, uint64_t len)
{
    if (durable(w))
        return 1;
    uint64_t end = w->off + mmj_pad8(MMJ_RECORD_HEADER_SIZE + len) + MMJ_SEGMENT_RESERVE;
    if (w->opt.checkpoint_every && w->since_anchor + 1 >= w->opt.checkpoint_every)
        end += mmj_pad8(MMJ_RECORD_HEADER_SIZE + MMJ_CONTROL_PAYLOAD);
    return end > w->seg.size;
}

static int64_t append_with(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len, int64_t ts_ns,
                           uint32_t ts_source, uint32_t clock_state, int reserve, int nowait)
{
    if (!w)
        return MMJ_E_CLOSED;
    if (!nowait)
        pthread_mutex_lock(&w->mutex);
    else if (pthread_mutex_trylock(&w->mutex) != 0)
        return 0;
    int64_t rc = w->shut ? MMJ_E_CLOSED
                 : nowait && len <= MMJ_MAX_PAYLOAD && could_block(w, len)
                     ? 0
                     : append_locked(w, rtype, payload, len, ts_ns, ts_source, clock_state, reserve);
    pthread_mutex_unlock(&w->mutex);
    if (rc)
        mmj_notify_wake(w->notify);
    return rc;
}

int64_t mmj_append(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len, int64_t ts_ns,
                   uint32_t ts_source, uint32_t clock_state)
{
    return append_with(w, rtype, payload, len, ts_ns, ts_source, clock_state, 0, 0);
}

int64_t mmj_append_nowait(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len, int64_t ts_ns,
                          uint32_t ts_source, uint32_t clock_state)
{
    return append_with(w, rtype, payload, len, ts_ns, ts_source, clock_state, 0, 1);
}

int64_t mmj_append_reserve(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len, int64_t ts_ns,
                           uint32_t ts_source, uint32_t clock_state)
{
    return append_with(w, rtype, payload, len, ts_ns, ts_source, clock_state, 1, 0);
}

int64_t mmj_append_reserve_nowait(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len,
                                  int64_t ts_ns, uint32_t ts_source, uint32_t clock_state)
{
    return append_with(w, rtype, payload, len, ts_ns, ts_source, clock_state, 1, 1);
}

int mmj_append_batch_ex(mmj_writer *w, uint32_t rtype, const char *buf, uint64_t size, const uint64_t *offsets,
                        uint64_t count, const int64_t *ts_ns, int64_t ts_scalar, uint32_t ts_source,
                        uint32_t clock_state, uint64_t *first_seq, uint64_t *written, int reserve)
{
    if (written)
        *written = 0;
    if (!w)
        return MMJ_E_CLOSED;
    pthread_mutex_lock(&w->mutex);
    int rc = w->shut ? MMJ_E_CLOSED
                     : batch_locked(w, rtype, buf, size, offsets, count, ts_ns, ts_scalar, ts_source, clock_state,
                                    first_seq, written, reserve);
    pthread_mutex_unlock(&w->mutex);
    mmj_notify_wake(w->notify);
    return rc;
}

int mmj_append_batch(mmj_writer *w, uint32_t rtype, const char *buf, uint64_t size, const uint64_t *offsets,
                     uint64_t count, const int64_t *ts_ns, int64_t ts_scalar, uint32_t ts_source,
                     uint32_t clock_state, uint64_t *first_seq, uint64_t *written)
{
    return mmj_append_batch_ex(w, rtype, buf, size, offsets, count, ts_ns, ts_scalar, ts_source, clock_state,
                               first_seq, written, 0);
}

int mmj_writer_space_low(const mmj_writer *w)
{
    return w ? w->low_space : 0;
}

/* Enough free space for what retry_space must allocate? (a cheap test before fallocate) */
static int space_available(mmj_writer *w, uint64_t need)
{
    struct statvfs sv;
    if (fstatvfs(w->dirfd, &sv) != 0)
        return 1;   /* unknown: let fallocate decide */
    return (uint64_t)sv.f_bavail * sv.f_frsize >= need;
}

int mmj_writer_retry_space(mmj_writer *w)
{
    if (!w)
        return MMJ_E_CLOSED;
    pthread_mutex_lock(&w->mutex);
    if (!w->shut)
        mmj_recheck_mark(w);   /* a DAMAGED marker a full disk refused: space may be back */
    int rc = w->shut ? MMJ_E_CLOSED : w->failed_errno ? latched(w) : MMJ_OK;
    int must_roll = w->need_roll || w->in_reserve;
    uint64_t need = (w->reserve_ready ? 0 : w->opt.segment_size) + (must_roll ? w->opt.segment_size : 0);
    if (rc == MMJ_OK && w->low_space && !space_available(w, need)) {
        w->last_errno = ENOSPC;
        rc = MMJ_E_DISK_FULL;
    }
    if (rc == MMJ_OK && w->low_space && !w->reserve_ready)
        rc = create_reserve(w, NULL);
    if (rc == MMJ_OK && w->low_space && must_roll)
        rc = roll(w, 0);
    if (rc == MMJ_OK && w->low_space) {
        w->low_space = w->need_roll = w->in_reserve = 0;
        prefault_ahead(w);
    }
    pthread_mutex_unlock(&w->mutex);
    return rc;
}

int mmj_sync(mmj_writer *w)
{
    if (!w)
        return MMJ_E_CLOSED;
    pthread_mutex_lock(&w->mutex);
    int rc = w->shut ? MMJ_E_CLOSED : sync_retired(w);
    if (rc == MMJ_OK)
        rc = sync_range(w, w->synced_off, w->off);
    if (rc == MMJ_OK && w->failed_errno)
        rc = latched(w);   /* synced what was acknowledged; the latch is still reported (and told) */
    pthread_mutex_unlock(&w->mutex);
    return rc;
}

int mmj_checkpoint(mmj_writer *w)
{
    if (!w)
        return MMJ_E_CLOSED;
    pthread_mutex_lock(&w->mutex);
    int rc = w->shut ? MMJ_E_CLOSED : w->failed_errno ? latched(w) : write_checkpoint(w, 0);
    if (rc == MMJ_OK && durable(w))
        rc = sync_range(w, w->synced_off, w->off);
    pthread_mutex_unlock(&w->mutex);
    return rc;
}

int mmj_writer_set_type_size(mmj_writer *w, uint32_t rtype, uint32_t size)
{
    if (!w)
        return MMJ_E_CLOSED;
    if (rtype > 0xffff || size > MMJ_MAX_PAYLOAD)
        return MMJ_E_ARG;
    w->type_size[rtype] = size;
    return MMJ_OK;
}

uint64_t mmj_writer_next_seq(const mmj_writer *w)
{
    return w ? w->next_seq : 0;
}

uint64_t mmj_writer_segment(const mmj_writer *w)
{
    return w ? w->seg.index : 0;
}

void mmj_writer_salt(const mmj_writer *w, uint8_t *out)
{
    if (w && out)
        memcpy(out, w->salt, MMJ_SALT_SIZE);
}

int mmj_writer_set_sync_hook(mmj_writer *w, mmj_sync_hook hook, void *ctx)
{
    if (!w)
        return MMJ_E_CLOSED;
    pthread_mutex_lock(&w->mutex);
    w->sync_hook = hook;
    w->sync_ctx = ctx;
    pthread_mutex_unlock(&w->mutex);
    return MMJ_OK;
}

int mmj_writer_damage(mmj_writer *w, uint64_t *segment, uint64_t *offset, uint64_t *seq)
{
    if (!w)
        return MMJ_R_NONE;
    pthread_mutex_lock(&w->mutex);
    int reason = w->damage_reason;
    w->damage_told |= reason != MMJ_R_NONE;
    *segment = w->damage_segment;
    *offset = w->damage_offset;
    *seq = w->damage_seq;
    pthread_mutex_unlock(&w->mutex);
    return reason;
}

int mmj_writer_errno(const mmj_writer *w)
{
    return w ? (w->failed_errno ? w->failed_errno : w->last_errno) : 0;
}

static int write_lock_text(mmj_writer *w, const char *text)
{
    size_t n = strlen(text);
    if (ftruncate(w->lockfd, 0) == 0 && pwrite(w->lockfd, text, n, 0) == (ssize_t)n && fsync(w->lockfd) == 0)
        return MMJ_OK;
    return MMJ_E_IO;
}

/* LOCK names the journal's end (journal.h THE END OF THE JOURNAL): `state` (MMJ_LOCK_*) of segment
 * seg; closed also with the next sequence and the seal hash. */
static int write_lock_state(mmj_writer *w, int state, uint64_t seg, const uint8_t *seal)
{
    char buf[256];
    mmj_lock_format(buf, sizeof buf, state, seg, w->next_seq, seal);
    return write_lock_text(w, buf);
}

#define MMJ_TMPFS_MAGIC 0x01021994   /* statfs f_type of tmpfs (linux/magic.h) */

/* A segment sealed at close is never written again: give back the blocks preallocated past its
 * EOS (read, they are zeros either way, and the file keeps its size), so that each clean
 * open/close of a journal costs the pages it wrote, not a whole segment of disk. Not on tmpfs:
 * there a reader's fault on a hole allocates a page, which SIGBUSes on a full mount, while on a
 * disk filesystem it reads zeros without allocating. Best effort: a filesystem without hole
 * punching keeps the blocks. */
static void release_unused_tail(mmj_writer *w)
{
    uint64_t start = (w->off + w->page - 1) & ~(uint64_t)(w->page - 1);
    if (start >= w->seg.size)
        return;
    char name[64];
    mmj_segment_name(name, sizeof name, w->seg.index, 0);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct statfs fs;
    if (fstatfs(fd, &fs) == 0 && fs.f_type != MMJ_TMPFS_MAGIC)
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start, (off_t)(w->seg.size - start));
    close(fd);
}

int mmj_writer_shutdown(mmj_writer *w)
{
    if (!w)
        return MMJ_OK;
    /* under the writer mutex: an append in progress finishes first, and every call after this one
     * sees `shut` and returns MMJ_E_CLOSED instead of touching the unmapped segment */
    pthread_mutex_lock(&w->mutex);
    if (w->shut) {
        pthread_mutex_unlock(&w->mutex);
        return MMJ_E_CLOSED;
    }
    int rc = MMJ_OK;
    /* a segment sealed now (and the next open's) would follow segments nobody checked: a writer
     * closed right after its open would hide damage behind a trusted summary for good */
    mmj_recheck_finish(w);
    mmj_ahead_stop(w);
    mmj_ahead_drop_next(w);
    uint8_t seal[MMJ_HASH_SIZE];
    uint64_t last = w->seg.index;
    int sealed = 0;
    if (w->seg.base) {
        if (!w->failed_errno) {
            /* LOCK names the segment before it is sealed: a sealed last segment is an end only
             * when LOCK says so (otherwise segments after it were removed); if LOCK cannot say
             * so, the segment stays unsealed and the next writer continues it, as after a crash */
            rc = write_lock_state(w, MMJ_LOCK_CLOSING, last, NULL);
            if (rc == MMJ_OK)
                rc = seal_current(w, NULL, seal);   /* in durable modes its msync covers the SEAL and EOS */
            sealed = rc == MMJ_OK;
            if (rc == MMJ_OK)
                release_unused_tail(w);
        } else {
            /* not sealed either way; damage a call has reported (an append, mmj_writer_damage)
             * is not reported again; damage no call has reported (found by this close, or by the
             * check after the last call) is: the caller's records may follow it; so is a DAMAGED
             * marker still missing (the next open would not fail closed without it). What was
             * published before a latch other than a failed msync was acknowledged: msynced. */
            int synced = !w->sync_failed && durable(w) ? sync_range(w, w->synced_off, w->off) : MMJ_OK;
            int marked = mmj_recheck_mark(w);
            if (!w->damage_reason)
                rc = latched(w);
            else if (marked != MMJ_OK || !w->damage_told)
                rc = MMJ_E_CORRUPT;
            else
                rc = synced == MMJ_OK ? MMJ_OK : MMJ_E_DURABILITY;
        }
        mmj_unmap(&w->seg);
    }
    mmj_notify_wake(w->notify);   /* tailers see the SEAL and EOS now */
    if (sealed)
        write_lock_state(w, MMJ_LOCK_CLOSED, last, seal);
    close(w->lockfd);   /* releases the OFD lock */
    close(w->dirfd);
    w->lockfd = w->dirfd = -1;
    w->shut = 1;
    pthread_mutex_unlock(&w->mutex);
    return rc;
}

void mmj_writer_free(mmj_writer *w)
{
    if (!w)
        return;
    /* the notify word stays mapped until here: an append that published just before the shutdown
     * wakes tailers after releasing the mutex */
    mmj_notify_unmap(w->notify);
    pthread_mutex_destroy(&w->mutex);
    mmj_ahead_destroy(w);
    free(w->cold);
    free(w->trusted);
    free(w);
}

int mmj_writer_close(mmj_writer *w)
{
    if (!w)
        return MMJ_OK;
    int rc = mmj_writer_shutdown(w);
    mmj_writer_free(w);
    return rc;
}

int mmj_writer_abandon(mmj_writer *w)
{
    if (!w)
        return MMJ_OK;
    /* no seal, no lock-file update: the process that opened the writer still owns the journal;
     * the helper thread was not copied by fork (its mutex may look locked: left as it is) */
    mmj_unmap(&w->seg);
    mmj_unmap(&w->retired);
    mmj_notify_unmap(w->notify);
    if (w->next_fd >= 0) {   /* next.mmj.tmp stays: it is the parent's */
        munmap(w->next_base, (size_t)w->opt.segment_size);
        close(w->next_fd);
    }
    close(w->lockfd);
    close(w->dirfd);
    pthread_mutex_destroy(&w->mutex);
    free(w->cold);
    free(w->trusted);
    free(w);
    return MMJ_OK;
}

/* ---- open and recovery ------------------------------------------------------------------ */

/* Take the writer lock on LOCK; *made = 1 if this open created the file. A creation that fails
 * removes the LOCK it made (remove_created), so the lock taken must be on the file LOCK still names:
 * one locked after its name was removed is let go and LOCK opened again. */
static int take_lock(mmj_writer *w, mmj_recovery *rep, int *made, int *err)
{
    for (;;) {
        *made = 1;
        w->lockfd = openat(w->dirfd, MMJ_LOCK_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->lockfd < 0 && errno == EEXIST) {
            *made = 0;
            w->lockfd = openat(w->dirfd, MMJ_LOCK_NAME, O_RDWR | O_CLOEXEC);
            if (w->lockfd < 0 && errno == ENOENT)
                continue;   /* removed in between */
        }
        if (w->lockfd < 0)
            return fail_io(w, err);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        if (fcntl(w->lockfd, F_OFD_SETLK, &fl) != 0) {
            *made = 0;   /* another writer's now: not ours to remove */
            if (errno == EAGAIN || errno == EACCES)
                return MMJ_E_LOCKED;
            return fail_io(w, err);
        }
        struct stat held, named;
        if (fstat(w->lockfd, &held) != 0)
            return fail_io(w, err);
        if (fstatat(w->dirfd, MMJ_LOCK_NAME, &named, AT_SYMLINK_NOFOLLOW) == 0 && named.st_ino == held.st_ino &&
            named.st_dev == held.st_dev)
            break;
        close(w->lockfd);
        w->lockfd = -1;
    }
    mmj_lock_read(w->lockfd, &rep->previous_pid, &rep->previous_clean);
    return MMJ_OK;
}

static void remove_tmp_files(mmj_writer *w, const uint64_t *idx, size_t n)
{
    /* a crash between create and rename leaves seg-N.mmj.tmp; it never held records */
    char tmp[64];
    uint64_t next = n ? idx[n - 1] + 1 : 0;
    for (uint64_t i = 0; i <= next; i++) {
        mmj_segment_name(tmp, sizeof tmp, i, 1);
        unlinkat(w->dirfd, tmp, 0);
        mmj_footer_name(tmp, sizeof tmp, i, 1);
        unlinkat(w->dirfd, tmp, 0);
    }
}

/* Count the valid-looking data records of a segment that recovery is about to delete; OUT
 * *blank (if not NULL): 1 iff its header is valid and every byte after it is zero (a roll cut
 * short), the only kind of segment recovery deletes rather than keeps. */
static uint64_t count_records(mmj_writer *w, uint64_t index, int *blank)
{
    mmj_map m;
    uint64_t first, n = 0;
    int newer;
    if (blank)
        *blank = 0;
    if (mmj_map_segment(w->dirfd, index, 0, &m, NULL) != MMJ_OK)
        return 0;
    if (mmj_header_check(&m, w->salt, &first, NULL, &newer, NULL) == MMJ_R_NONE) {
        uint32_t k = mmj_salt_check(w->salt, index);
        uint64_t off = MMJ_HEADER_SIZE, seq = first;
        mmj_record rec;
        int size;
        while ((size = mmj_record_check(m.base, m.size, off, k, seq, &rec)) > 0) {
            if (!(rec.flags & (MMJ_FLAG_CONTROL | MMJ_FLAG_EOS))) {
                n++;
                seq++;
            }
            off += (uint64_t)size;
        }
        if (blank)      /* nothing at all after the header (a damaged first word is not blank) */
            *blank = n == 0 && !mmj_nonzero_end(m.base, MMJ_HEADER_SIZE, m.size);
    }
    mmj_unmap(&m);
    return n;
}

/* Open discarded/r<N> once per recovery (journal.h DISCARDED DATA). */
static int discard_ready(mmj_writer *w, mmj_discard *keep, mmj_recovery *rep, int *err)
{
    if (keep->fd >= 0)
        return MMJ_OK;
    if (mmj_discard_open(w->dirfd, keep) != MMJ_OK)
        return fail_io(w, err);
    rep->discarded_run = keep->run;
    return MMJ_OK;
}

/* Segments idx[from..n) leave the journal: deleted if blank (a roll cut short leaves one), else
 * moved to discarded/r<N> (records, or a damaged header in front of them). */
static int remove_segments(mmj_writer *w, const uint64_t *idx, size_t from, size_t n, mmj_recovery *rep,
                           mmj_discard *keep, int *err)
{
    char name[64];
    if (from >= n)
        return MMJ_OK;
    for (size_t i = from; i < n; i++) {
        int blank;
        rep->records_discarded += count_records(w, idx[i], &blank);
        if (!blank) {
            int rc = discard_ready(w, keep, rep, err);
            if (rc != MMJ_OK)
                return rc;
            if (mmj_discard_move(keep, w->dirfd, idx[i]) != MMJ_OK)
                return fail_io(w, err);
            rep->segments_kept++;
        } else {
            mmj_footer_remove(w->dirfd, idx[i]);
            mmj_segment_name(name, sizeof name, idx[i], 0);
            if (unlinkat(w->dirfd, name, 0) != 0)
                return fail_io(w, err);
        }
        rep->segments_removed++;
    }
    if (mmj_discard_close(keep) != MMJ_OK || fsync(w->dirfd) != 0)
        return fail_io(w, err);
    return MMJ_OK;
}

/* The data records after offset `end` (where segment m's data stopped) up to `dirty_end` that
 * still validate (CRC and salt check; any sequence): records written after the one that failed,
 * as pages written back out of order at a power loss leave them. A crash's torn tail holds at
 * most the record being written and bytes that never validate. */
static uint64_t valid_records_after(mmj_writer *w, const mmj_map *m, uint64_t end, uint64_t dirty_end)
{
    uint32_t k = mmj_salt_check(w->salt, m->index);
    uint64_t n = 0;
    mmj_record rec;
    for (uint64_t off = end + 8; off + MMJ_RECORD_HEADER_SIZE <= dirty_end;) {
        int size = mmj_record_check_any_seq(m->base, m->size, off, k, &rec);
        if (size > 0) {
            n += !(rec.flags & (MMJ_FLAG_CONTROL | MMJ_FLAG_EOS));
            off += (uint64_t)size;
        } else {
            off += 8;
        }
    }
    return n;
}

/* Whether what follows the first invalid record of segment idx[i] is damage rather than a torn
 * tail: the segment was sealed (it has a summary), a record after it still validates
 * (`records_after`, valid_records_after's count), or a later segment is not blank. */
static int damaged_not_torn(mmj_writer *w, const uint64_t *idx, size_t i, size_t n, uint64_t records_after)
{
    uint8_t f[MMJ_FOOTER_SIZE];
    int blank;
    if (mmj_footer_read(w->dirfd, idx[i], f) != MMJ_E_NOT_FOUND || records_after)
        return 1;
    for (size_t j = i + 1; j < n; j++)
        if (count_records(w, idx[j], &blank) || !blank)
            return 1;
    return 0;
}

/* Scan segment m from its header: fills the writer's chain state; returns 1 if sealed (EOS seen),
 * 0 if the data ended (zero word or invalid record: *bad_reason says which) at *end. */
static int scan_segment(mmj_writer *w, const mmj_map *m, uint64_t first_seq, const uint8_t *prev_seal,
                        uint64_t *end, int *bad_reason, uint8_t *seal_hash)
{
    uint32_t k = mmj_salt_check(w->salt, m->index);
    uint64_t off = MMJ_HEADER_SIZE, seq = first_seq;
    mmj_record rec;
    int last_was_seal = 0;
    w->seg_data = 0;
    w->anchor_off = 0;
    w->since_anchor = 0;
    memcpy(w->anchor_hash, prev_seal, MMJ_HASH_SIZE);
    *bad_reason = MMJ_R_NONE;
    for (;;) {
        int size = mmj_record_check(m->base, m->size, off, k, seq, &rec);
        if (size <= 0) {
            *bad_reason = size < 0 ? -size : MMJ_R_NONE;
            break;
        }
        if (rec.flags & MMJ_FLAG_EOS) {
            if (!last_was_seal) {
                *bad_reason = MMJ_R_BAD_CONTROL;
                break;
            }
            *end = off + (uint64_t)size;
            w->next_seq = seq;
            return 1;
        }
        if (rec.flags & MMJ_FLAG_CONTROL) {
            /* trust the stored link here; verify() recomputes the whole chain */
            memcpy(w->anchor_hash, rec.payload, MMJ_HASH_SIZE);
            w->anchor_off = off;
            w->since_anchor = 0;
            if (rec.rtype == MMJ_RTYPE_SEAL)
                memcpy(seal_hash, rec.payload, MMJ_HASH_SIZE);
            last_was_seal = rec.rtype == MMJ_RTYPE_SEAL;
        } else {
            if (last_was_seal) {   /* a SEAL must be followed by the EOS marker */
                *bad_reason = MMJ_R_BAD_CONTROL;
                break;
            }
            seq++;
            w->seg_data++;
            w->since_anchor++;
        }
        off += (uint64_t)size;
    }
    if (last_was_seal) {
        /* a SEAL without its EOS: drop the SEAL too, recovery seals the segment again */
        off = w->anchor_off;
        w->anchor_off = 0;
    }
    *end = off;
    w->next_seq = seq;
    return 0;
}

static void rescan_anchor(mmj_writer *w, const uint8_t *prev_seal)
{
    /* After dropping a dangling SEAL, find the last CHECKPOINT before it again. */
    uint32_t k = w->salt_check;
    uint64_t off = MMJ_HEADER_SIZE;
    uint64_t seq = 0;
    mmj_record rec;
    memcpy(w->anchor_hash, prev_seal, MMJ_HASH_SIZE);
    w->anchor_off = 0;
    w->since_anchor = 0;
    memcpy(&seq, w->seg.base + 40, 8);
    while (off < w->off) {
        int size = mmj_record_check(w->seg.base, w->seg.size, off, k, seq, &rec);
        assert(size > 0);
        if (rec.flags & MMJ_FLAG_CONTROL) {
            memcpy(w->anchor_hash, rec.payload, MMJ_HASH_SIZE);
            w->anchor_off = off;
            w->since_anchor = 0;
        } else {
            seq++;
            w->since_anchor++;
        }
        off += (uint64_t)size;
    }
}

/* What a segment's summary tells recovery (journal.h WRITER RECOVERY). */
enum { SUM_MISSING, SUM_UNBELIEVED, SUM_BELIEVED, SUM_DURABLE };

/* SUM_DURABLE: the summary is believed and DURABLE, the segment needs no scan, and the next
 * sequence and the seal hash (into prev_seal) come from the summary. */
static int summary_state(mmj_writer *w, const mmj_map *m, uint64_t first_seq, uint8_t *prev_seal)
{
    uint8_t f[MMJ_FOOTER_SIZE];
    mmj_footer info;
    int rc = mmj_footer_read(w->dirfd, m->index, f);
    if (rc == MMJ_E_NOT_FOUND)
        return SUM_MISSING;
    if (rc != MMJ_OK || mmj_footer_check(f, m, mmj_salt_check(w->salt, m->index), first_seq, &info) != MMJ_OK)
        return SUM_UNBELIEVED;
    if (!info.durable)
        return SUM_BELIEVED;
    w->next_seq = first_seq + info.records;
    memcpy(prev_seal, info.seal_hash, MMJ_HASH_SIZE);
    return SUM_DURABLE;
}

/* A sealed segment that recovery scanned (its summary is not DURABLE, missing or not believed) is
 * not known to be durable: note it for sync_retired, and give it the summary it lacks (not
 * DURABLE yet), which the sync then marks. A summary not believed (torn by a power cut, or not
 * this segment's) is replaced from the scan like a missing one: kept, it would make every later
 * writer sync and scan the segment again (verify ignores summaries: no evidence is lost). */
static int note_cold(mmj_writer *w, uint64_t index, uint64_t first_seq, int summary, const uint8_t *seal)
{
    if (mmj_push_u64(&w->cold, &w->n_cold, &w->cap_cold, index) != MMJ_OK)
        return MMJ_E_NOMEM;
    /* scan_segment left the anchor at the SEAL and seg_data at the segment's data records */
    if (summary == SUM_MISSING || summary == SUM_UNBELIEVED)
        mmj_footer_write(w->dirfd, index, first_seq, w->seg_data, w->anchor_off, seal, 0);
    return MMJ_OK;
}

/* A segment sealed by a clean close gave back its blocks past the EOS (release_unused_tail); if
 * that EOS never reached the disk, recovery continues writing in the segment: allocate it whole
 * again first, so that no store meets a hole (a SIGBUS on a full disk). Short of space, the
 * reserve file is given up for it (the journal opens in low-space state: ensure_reserve cannot
 * make a new one); without one the open fails with MMJ_E_DISK_FULL, nothing written lost. */
static int reallocate_holes(mmj_writer *w, uint64_t index, int *err)
{
    char name[64];
    struct stat st;
    mmj_segment_name(name, sizeof name, index, 0);
    int fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail_io(w, err);
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = errno;
    else if ((uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size) {
        rc = posix_fallocate(fd, 0, st.st_size);
        if ((rc == ENOSPC || rc == EDQUOT) && w->reserve_ready && unlinkat(w->dirfd, MMJ_RESERVE_NAME, 0) == 0) {
            w->reserve_ready = 0;
            rc = posix_fallocate(fd, 0, st.st_size);
        }
    }
    close(fd);
    if (rc == 0)
        return MMJ_OK;
    errno = rc;
    return fail_io(w, err);
}

/* Recovery refuses a journal whose LOCK names more than its directory holds (journal.h THE END
 * OF THE JOURNAL): segment `missing` onwards were removed from the end; nothing is changed. */
static int refuse_missing(mmj_recovery *rep, uint64_t missing, uint64_t next_seq, uint64_t *idx)
{
    rep->reason = MMJ_R_MISSING_SEGMENT;
    rep->segment = missing;
    rep->offset = 0;
    rep->seq = next_seq;
    free(idx);
    return MMJ_E_SEGMENTS_MISSING;
}

static int recover(mmj_writer *w, mmj_recovery *rep, int *err)
{
    uint64_t *idx = NULL, missing = 0;
    size_t n = 0;
    mmj_lock_info lock;
    mmj_lock_read_info(w->lockfd, &lock);
    int rc = mmj_damage_read(w->dirfd, rep);   /* a check found damage: closed until an operator acts */
    if (rc == MMJ_OK)
        rc = mmj_list_segments(w->dirfd, &idx, &n, err);
    if (rc != MMJ_OK)
        return rc;
    mmj_end end = {.segments = n, .last_index = n ? idx[n - 1] : 0};
    if (mmj_lock_end_check(&lock, &end, &missing) != MMJ_R_NONE)   /* fewer segments than LOCK names */
        return refuse_missing(rep, missing, 1, idx);
    remove_tmp_files(w, idx, n);
    uint8_t prev_seal[MMJ_HASH_SIZE];
    mmj_genesis(w->salt, prev_seal);
    uint64_t expect_index = 0;
    w->next_seq = 1;
    int have_open = 0;   /* an unsealed segment stays mapped as w->seg */
    mmj_discard keep = {-1, 0};
    size_t i;
    for (i = 0; i < n; i++) {
        mmj_map m;
        uint64_t first_seq = 0, end = 0;
        uint8_t hdr_prev[MMJ_HASH_SIZE], seal[MMJ_HASH_SIZE];
        int newer = 0, bad = MMJ_R_NONE;
        if (idx[i] != expect_index) {
            rep->reason = MMJ_R_MISSING_SEGMENT;
            rep->segment = expect_index;
            rep->offset = 0;
            rep->seq = w->next_seq;
            break;
        }
        rc = mmj_map_segment(w->dirfd, idx[i], 1, &m, err);
        if (rc == MMJ_E_CORRUPT) {
            bad = MMJ_R_BAD_HEADER;
        } else if (rc != MMJ_OK) {
            free(idx);
            return rc;
        } else {
            bad = mmj_header_check(&m, w->salt, &first_seq, hdr_prev, &newer, &m.version);
            if (newer) {
                mmj_unmap(&m);
                free(idx);
                return MMJ_E_VERSION;
            }
            if (bad == MMJ_R_NONE && (first_seq != w->next_seq || memcmp(hdr_prev, prev_seal, MMJ_HASH_SIZE)))
                bad = MMJ_R_BAD_HEADER;
        }
        if (bad != MMJ_R_NONE) {
            mmj_unmap(&m);
            rep->reason = bad;
            rep->segment = idx[i];
            rep->offset = 0;
            rep->seq = w->next_seq;
            break;
        }
        int summary = summary_state(w, &m, first_seq, prev_seal);
        if (summary == SUM_DURABLE) {
            mmj_unmap(&m);
            /* not scanned: its records are checked after the open (DAMAGE BEHIND A SUMMARY) */
            if (mmj_push_u64(&w->trusted, &w->n_trusted, &w->cap_trusted, idx[i]) != MMJ_OK ||
                mmj_push_u64(&w->trusted, &w->n_trusted, &w->cap_trusted, first_seq) != MMJ_OK) {
                mmj_discard_close(&keep);
                free(idx);
                return MMJ_E_NOMEM;
            }
            expect_index++;
            continue;
        }
        int sealed = scan_segment(w, &m, first_seq, prev_seal, &end, &bad, seal);
        if (sealed) {
            mmj_unmap(&m);
            memcpy(prev_seal, seal, MMJ_HASH_SIZE);
            expect_index++;
            rc = note_cold(w, idx[i], first_seq, summary, seal);
            if (rc != MMJ_OK) {
                mmj_discard_close(&keep);
                free(idx);
                return rc;
            }
            continue;
        }
        /* the data of this segment ends at `end`: zero whatever follows, keep it as current */
        uint64_t dirty_end = mmj_nonzero_end(m.base, end, m.size);
        uint64_t records_after = dirty_end > end ? valid_records_after(w, &m, end, dirty_end) : 0;
        rep->records_discarded += records_after;
        if (dirty_end > end && damaged_not_torn(w, idx, i, n, records_after)) {
            rc = discard_ready(w, &keep, rep, err);
            if (rc == MMJ_OK && mmj_discard_copy(&keep, idx[i], m.base, dirty_end) != MMJ_OK)
                rc = fail_io(w, err);
            if (rc != MMJ_OK) {
                mmj_discard_close(&keep);
                mmj_unmap(&m);
                free(idx);
                return rc;
            }
            mmj_discard_summary(&keep, w->dirfd, idx[i]);   /* it describes the copy now */
            if (fsync(w->dirfd) != 0) {    /* the summary's move, before the repair */
                mmj_discard_close(&keep);
                mmj_unmap(&m);
                free(idx);
                return fail_io(w, err);
            }
        }
        mmj_footer_remove(w->dirfd, idx[i]);
        if (bad != MMJ_R_NONE || dirty_end) {
            rep->reason = bad != MMJ_R_NONE ? bad : MMJ_R_TORN;
            rep->segment = idx[i];
            rep->offset = end;
            rep->seq = w->next_seq;
            rep->bytes_discarded = dirty_end > end ? dirty_end - end : 0;
            if (dirty_end > end) {
                memset(m.base + end, 0, dirty_end - end);
                if (msync(m.base, (size_t)m.size, MS_SYNC) != 0) {
                    mmj_discard_close(&keep);
                    mmj_unmap(&m);
                    free(idx);
                    return fail_io(w, err);
                }
            }
        } else if (i + 1 < n) {
            rep->reason = MMJ_R_NO_EOS;
            rep->segment = idx[i];
            rep->offset = end;
            rep->seq = w->next_seq;
        }
        rc = reallocate_holes(w, idx[i], err);   /* before anything is written or prefaulted in it */
        if (rc != MMJ_OK) {
            mmj_discard_close(&keep);
            mmj_unmap(&m);
            free(idx);
            return rc;
        }
        uint64_t anchor_off = w->anchor_off, seg_data = w->seg_data, since_anchor = w->since_anchor;
        uint8_t anchor_hash[MMJ_HASH_SIZE];
        memcpy(anchor_hash, w->anchor_hash, MMJ_HASH_SIZE);
        start_segment(w, &m, prev_seal);   /* zeroes seg_data and since_anchor: restored below */
        w->off = end;
        w->seg_data = seg_data;
        if (anchor_off) {
            w->anchor_off = anchor_off;
            w->since_anchor = since_anchor;   /* the next CHECKPOINT stays checkpoint_every after the last */
            memcpy(w->anchor_hash, anchor_hash, MMJ_HASH_SIZE);
        } else {
            rescan_anchor(w, prev_seal);
        }
        mmj_ahead_reset(w, w->anchor_hash, w->anchor_off);
        __atomic_store_n(&w->pub_off, w->off, __ATOMIC_RELEASE);
        prefault_ahead(w);
        have_open = 1;
        i++;
        break;
    }
    if (i == n && !have_open && n) {
        /* every segment is sealed: an end only a clean close leaves, and only where LOCK says */
        end.last_sealed = 1;
        end.next_seq = w->next_seq;
        end.seal = prev_seal;
        if (mmj_lock_end_check(&lock, &end, &missing) != MMJ_R_NONE) {
            mmj_discard_close(&keep);
            return refuse_missing(rep, missing, w->next_seq, idx);
        }
    }
    if (i < n) {
        /* segments leave the end LOCK may name: until this writer's LOCK names its own, a crash
         * must not make the next open take their removal for segments missing */
        char text[64];
        snprintf(text, sizeof text, "pid %d recovering\n", (int)getpid());
        (void)write_lock_text(w, text);
    }
    rc = remove_segments(w, idx, i, n, rep, &keep, err);
    if (mmj_discard_close(&keep) != MMJ_OK && rc == MMJ_OK)
        rc = fail_io(w, err);
    free(idx);
    if (rc != MMJ_OK) {
        if (have_open)
            mmj_unmap(&w->seg);
        return rc;
    }
    if (have_open && w->seg.version == w->opt.format_version) {
        /* continue in the crashed segment: its tail is repaired (zeroed and msynced), its chain
         * anchor found, and synced_off is back at the header, so the first msync of this writer
         * covers the records a crashed pagecache-mode writer left only in the page cache */
        rep->continued_segment = w->seg.index + 1;
        return MMJ_OK;
    }
    if (have_open) {
        /* a segment of another format version (an older writer's, or one this writer is told not
         * to write yet) is sealed with its own chain and the journal continues in a fresh one:
         * a segment never mixes chain versions, so verify and readers need no per-record rule */
        rep->sealed_segment = w->seg.index + 1;
        rc = roll(w, 1);
        if (rc != MMJ_OK)
            mmj_unmap(&w->seg);
        return rc;
    }
    mmj_map m;
    rc = create_segment(w, expect_index, w->next_seq, prev_seal, &m, err);
    if (rc == MMJ_E_DISK_FULL && w->reserve_ready) {
        w->low_space = w->need_roll = 1;
        rc = take_reserve(w, expect_index, w->next_seq, prev_seal, &m);
    }
    if (rc == MMJ_OK)
        start_segment(w, &m, prev_seal);
    return rc;
}

/* Create only in a directory without journal files, never adopting foreign segments: MMJ_OK
 * if it has neither segments nor journal.meta, else MMJ_E_NOT_JOURNAL (or a listing error). */
static int no_journal_files(mmj_writer *w, int *err)
{
    uint64_t *idx = NULL;
    size_t n = 0;
    int rc = mmj_list_segments(w->dirfd, &idx, &n, err);
    free(idx);
    if (rc == MMJ_OK && (n || faccessat(w->dirfd, MMJ_META_NAME, F_OK, 0) == 0))
        rc = MMJ_E_NOT_JOURNAL;
    return rc;
}

/* With the lock held, decide again whether there is a journal: another writer may have created
 * it (and closed it) since the first look, and its salt and segments must not be replaced. */
static int create_locked(mmj_writer *w, mmj_recovery *rep, int *err)
{
    int rc = mmj_meta_read(w->dirfd, w->salt, err);
    if (rc != MMJ_E_NOT_JOURNAL)
        return rc;   /* MMJ_OK: created meanwhile, opened as it is */
    rc = no_journal_files(w, err);
    if (rc == MMJ_OK) {
        rc = mmj_meta_create(w->dirfd, w->salt, w->opt.format_version, err);
        rep->created = 1;
    }
    return rc;
}

static int valid_options(mmj_options *o)
{
    if (!o->segment_size)
        o->segment_size = MMJ_DEFAULT_SEGMENT_SIZE;
    if (!o->group_records)
        o->group_records = MMJ_DEFAULT_GROUP_RECORDS;
    if (!o->group_us)
        o->group_us = MMJ_DEFAULT_GROUP_US;
    if (!o->checkpoint_every)
        o->checkpoint_every = MMJ_DEFAULT_CHECKPOINT_EVERY;
    if (!o->format_version)
        o->format_version = MMJ_FORMAT_VERSION;
    return o->segment_size >= MMJ_MIN_SEGMENT_SIZE && o->segment_size % 4096 == 0 &&
           o->format_version >= MMJ_FORMAT_VERSION_MIN && o->format_version <= MMJ_FORMAT_VERSION &&
           o->durability >= MMJ_DUR_PAGECACHE && o->durability <= MMJ_DUR_SYNC;
}

/* A creation that failed after it made files removes exactly those (journal.h DIRECTORY: a failed
 * create leaves nothing), so the next attempt finds no journal and no lock: a new journal's
 * segment files and summaries (the directory held none: no_journal_files under the lock), the
 * journal.meta it wrote (`meta`), the LOCK it made (`lock`, still held: removed before it is let
 * go), then the directory itself if it made it (`dir_made`; only when empty). The caller's error
 * and errno stand; the removals are made durable as best they can be. */
static void remove_created(mmj_writer *w, const char *dir, int meta, int lock, int dir_made)
{
    char name[64];
    uint64_t *idx = NULL;
    size_t n = 0;
    int saved = errno;
    if (meta && mmj_list_segments(w->dirfd, &idx, &n, NULL) == MMJ_OK) {
        for (size_t i = 0; i < n; i++) {
            mmj_footer_remove(w->dirfd, idx[i]);
            mmj_segment_name(name, sizeof name, idx[i], 0);
            unlinkat(w->dirfd, name, 0);
        }
    }
    free(idx);
    if (meta)
        unlinkat(w->dirfd, MMJ_META_NAME, 0);
    if (lock)
        unlinkat(w->dirfd, MMJ_LOCK_NAME, 0);
    (void)mmj_fsync_dir(w->dirfd);
    if (dir_made && rmdir(dir) == 0)
        (void)mmj_fsync_parent(dir);
    errno = saved;
}

int mmj_writer_open(const char *dir, const mmj_options *opt, mmj_writer **out, mmj_recovery *report, int *err)
{
    mmj_recovery local;
    mmj_recovery *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (err)
        *err = 0;
    if (!dir || !out)
        return MMJ_E_ARG;
    *out = NULL;
    mmj_writer *w = calloc(1, sizeof *w);
    if (!w)
        return MMJ_E_NOMEM;
    if (opt)
        w->opt = *opt;
    pthread_mutex_init(&w->mutex, NULL);
    mmj_ahead_init(w);
    w->lockfd = -1;
    w->dirfd = -1;
    w->next_fd = -1;
    w->page = (size_t)sysconf(_SC_PAGESIZE);
    w->last_sync_ns = mmj_now_ns();
    int rc = MMJ_E_ARG, made_dir = 0, made_lock = 0;
    if (!valid_options(&w->opt))
        goto fail;
    if (w->opt.create) {
        if (mkdir(dir, 0755) == 0) {
            made_dir = 1;
            /* the new directory's name must survive a power cut before the journal's files do */
            if (mmj_fsync_parent(dir) != 0) {
                rc = fail_io(w, err);
                goto fail;
            }
        } else if (errno != EEXIST) {
            rc = fail_io(w, err);
            goto fail;
        }
    }
    rc = mmj_open_dir(dir, &w->dirfd, err);
    if (rc != MMJ_OK)
        goto fail;
    rc = mmj_meta_read(w->dirfd, w->salt, err);
    if (rc == MMJ_E_NOT_JOURNAL && w->opt.create) {
        rc = no_journal_files(w, err);
        if (rc == MMJ_OK)
            rc = take_lock(w, rep, &made_lock, err);
        if (rc == MMJ_OK)
            rc = create_locked(w, rep, err);
    } else if (rc == MMJ_OK) {
        rc = take_lock(w, rep, &made_lock, err);
    }
    if (rc != MMJ_OK)
        goto fail;
    probe_reserve(w);
    rc = recover(w, rep, err);
    /* group/sync modes acknowledge nothing that is not durable: what a crashed or unsynced
     * pagecache writer sealed is made durable before the first append (pagecache: at mmj_sync) */
    if (rc == MMJ_OK && durable(w) && (rc = sync_retired(w)) != MMJ_OK && err)
        *err = w->failed_errno;
    if (rc == MMJ_OK)
        rc = ensure_reserve(w, err);
    if (rc == MMJ_OK)
        mmj_recheck_prepare(w);
    if (rc != MMJ_OK) {
        if (w->seg.base)
            mmj_unmap(&w->seg);
        goto fail;
    }
    /* best effort, as before LOCK named segments: a LOCK left naming less only checks less */
    (void)write_lock_state(w, MMJ_LOCK_OPEN, w->seg.index, NULL);
    w->notify = mmj_notify_map(w->dirfd, 1);
    mmj_notify_reset(w->notify);   /* a tailer killed while waiting must not cost every append */
    mmj_ahead_start(w);
    mmj_recheck_start(w);
    if (err)
        *err = 0;   /* a creating open's mmj_meta_read left ENOENT there */
    *out = w;
    return MMJ_OK;
fail:
    if (w->dirfd >= 0 && (rep->created || made_dir || made_lock)) {
        remove_created(w, dir, rep->created, made_lock, made_dir);   /* what this open made, only */
        rep->created = 0;
    }
    if (w->lockfd >= 0)
        close(w->lockfd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    pthread_mutex_destroy(&w->mutex);
    mmj_ahead_destroy(w);
    free(w->cold);
    free(w->trusted);
    free(w);
    return rc;
}
