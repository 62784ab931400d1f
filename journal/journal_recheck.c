/* The check, after a writer's open, of the sealed segments its recovery did not scan because their
 * summary was believed and DURABLE (journal.h DAMAGE BEHIND A SUMMARY): a thread of its own walks
 * their records (RECORD rules) while the writer appends, and a closing writer walks what is left
 * alongside it before it seals. Damage latches the writer (every later append fails with
 * MMJ_E_CORRUPT) and leaves the DAMAGED file, which makes every later open fail closed until an
 * operator removes it; a full disk cannot refuse that marker (DAMAGED.room, preallocated at open).
 * A segment that cannot be mapped (EMFILE, ENOMEM, EIO) is not damage: it is tried again, and if
 * it stays unreadable the writer latches as an I/O error, with no marker.
 *
 * Knows the record rules and the writer's latch; nothing of payloads or of the append path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_writer_state.h"

#define MMJ_RECHECK_STEP (1u << 20)   /* bytes walked between looks for earlier damage */
#define MMJ_WALK_IO (-2)                /* walk(): the segment could not be mapped (errno in *err) */
/* How long a walk retries a segment it cannot map (EMFILE, ENOMEM, EIO: the process or the device,
 * not the records) before the writer latches as an I/O error, and its longest pause between tries */
#define MMJ_RECHECK_RETRY_NS 1000000000LL
#define MMJ_RECHECK_PAUSE_NS 50000000LL

/* Walk trusted segment number k (w->trusted pair k) from its header: MMJ_R_NONE if its records
 * lead to its EOS, else the reason at *off (expected sequence *seq); -1 if abandoned because an
 * earlier trusted segment was found damaged meanwhile (only the first damage is reported);
 * MMJ_WALK_IO with *err if it could not be mapped for a reason that says nothing of its bytes. */
static int walk(mmj_writer *w, uint64_t k, uint64_t *off, uint64_t *seq, int *err)
{
    uint64_t index = w->trusted[2 * k];
    uint64_t first = 0;
    int newer = 0;
    mmj_map m;
    *off = 0;
    *seq = w->trusted[2 * k + 1];
    *err = 0;
    int rc = mmj_map_segment(w->dirfd, index, 0, &m, err);
    if (rc == MMJ_E_NOT_FOUND)
        return MMJ_R_MISSING_SEGMENT;   /* it was there at open: removed since */
    if (rc == MMJ_E_CORRUPT)
        return MMJ_R_BAD_HEADER;        /* shorter than a header and a SEAL: truncated since */
    if (rc != MMJ_OK) {
        if (!*err)
            *err = EIO;
        return MMJ_WALK_IO;
    }
    /* the header was checked at open; a file replaced or overwritten since is damage */
    if (mmj_header_check(&m, w->salt, &first, NULL, &newer, NULL) != MMJ_R_NONE || first != *seq) {
        mmj_unmap(&m);
        return MMJ_R_BAD_HEADER;
    }
    uint32_t salt_k = mmj_salt_check(w->salt, index);
    uint64_t next_look = MMJ_RECHECK_STEP;
    int reason = MMJ_R_NONE;
    mmj_record rec;
    for (*off = MMJ_HEADER_SIZE;;) {
        int size = mmj_record_check(m.base, m.size, *off, salt_k, *seq, &rec);
        if (size <= 0) {
            reason = size < 0 ? -size : MMJ_R_NO_EOS;
            break;
        }
        if (rec.flags & MMJ_FLAG_EOS)
            break;
        if (!(rec.flags & MMJ_FLAG_CONTROL))
            (*seq)++;
        *off += (uint64_t)size;
        if (*off >= next_look) {
            next_look += MMJ_RECHECK_STEP;
            if (__atomic_load_n(&w->recheck_damaged, __ATOMIC_ACQUIRE) < k) {
                reason = -1;
                break;
            }
        }
    }
    mmj_unmap(&m);
    return reason;
}

/* walk(), tried again while the segment cannot be mapped, with pauses growing from 1 ms, for at
 * most MMJ_RECHECK_RETRY_NS: a descriptor or memory shortage of a moment is not the journal's
 * fault, and neither is damage. Still failing: MMJ_WALK_IO with the last errno in *err. */
static int walk_retrying(mmj_writer *w, uint64_t k, uint64_t *off, uint64_t *seq, int *err)
{
    int64_t give_up = mmj_now_ns() + MMJ_RECHECK_RETRY_NS;
    struct timespec pause = {0, 1000000};
    for (;;) {
        int reason = walk(w, k, off, seq, err);
        if (reason != MMJ_WALK_IO || mmj_now_ns() >= give_up)
            return reason;
        nanosleep(&pause, NULL);
        if (pause.tv_nsec < MMJ_RECHECK_PAUSE_NS)
            pause.tv_nsec *= 2;
    }
}

/* Claim trusted segments one at a time (the check thread and a closing writer share the claims,
 * which go in order) and walk them, until none is left or one at or before the claim is known
 * damaged. The first damage this walker found goes to *f (reason MMJ_R_NONE: none); a segment
 * that stayed unreadable is not damage: the first such errno goes to recheck_errno, and the walk
 * goes on with the next segment. */
static void walk_claimed(mmj_writer *w, mmj_damage *f)
{
    f->reason = MMJ_R_NONE;
    for (;;) {
        uint64_t k = __atomic_fetch_add(&w->recheck_next, 1, __ATOMIC_ACQ_REL);
        if (k >= w->n_trusted / 2 || k >= __atomic_load_n(&w->recheck_damaged, __ATOMIC_ACQUIRE))
            return;
        uint64_t off, seq;
        int e, none = 0;
        int reason = walk_retrying(w, k, &off, &seq, &e);
        if (reason == MMJ_WALK_IO) {
            __atomic_compare_exchange_n(&w->recheck_errno, &none, e, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
            continue;
        }
        if (reason < 0)
            return;
        if (reason != MMJ_R_NONE) {
            *f = (mmj_damage){reason, k, w->trusted[2 * k], off, seq};
            uint64_t seen = __atomic_load_n(&w->recheck_damaged, __ATOMIC_ACQUIRE);
            while (k < seen && !__atomic_compare_exchange_n(&w->recheck_damaged, &seen, k, 0, __ATOMIC_ACQ_REL,
                                                            __ATOMIC_ACQUIRE)) {
            }
            return;
        }
    }
}

void mmj_recheck_prepare(mmj_writer *w)
{
    struct stat st;
    int fd = openat(w->dirfd, MMJ_DAMAGED_ROOM_NAME, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;   /* no descriptor, no space for the name: best effort */
    /* kept from an earlier writer, or cut short by a crash (then allocated now) */
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_blocks * 512 < MMJ_DAMAGED_ROOM_SIZE &&
        posix_fallocate(fd, 0, MMJ_DAMAGED_ROOM_SIZE) != 0)
        unlinkat(w->dirfd, MMJ_DAMAGED_ROOM_NAME, 0);
    close(fd);
}

/* Write the marker into the preallocated DAMAGED.room (no new blocks: a full disk cannot refuse
 * it), then rename it; MMJ_E_NOT_FOUND without that file. */
static int mark_in_place(mmj_writer *w, const char *text, size_t n, int *err)
{
    int fd = openat(w->dirfd, MMJ_DAMAGED_ROOM_NAME, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MMJ_E_NOT_FOUND : (*err = errno, MMJ_E_IO);
    int ok = pwrite(fd, text, n, 0) == (ssize_t)n && ftruncate(fd, (off_t)n) == 0 && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (ok && renameat(w->dirfd, MMJ_DAMAGED_ROOM_NAME, w->dirfd, MMJ_DAMAGED_NAME) == 0 && fsync(w->dirfd) == 0)
        return MMJ_OK;
    *err = ok ? errno : saved;
    return (*err == ENOSPC || *err == EDQUOT) ? MMJ_E_DISK_FULL : MMJ_E_IO;
}

int mmj_recheck_mark(mmj_writer *w)
{
    if (!w->damage_unmarked)
        return MMJ_OK;
    char text[160];
    int n = snprintf(text, sizeof text, "damaged %d segment %llu offset %llu seq %llu\n", w->damage_reason,
                     (unsigned long long)w->damage_segment, (unsigned long long)w->damage_offset,
                     (unsigned long long)w->damage_seq);
    int e = 0;
    int rc = mark_in_place(w, text, (size_t)n, &e);
    if (rc == MMJ_E_NOT_FOUND)
        rc = mmj_write_atomic(w->dirfd, MMJ_DAMAGED_NAME, text, (size_t)n, &e);
    if (rc == MMJ_E_DISK_FULL && w->reserve_ready && !w->in_reserve) {
        /* the reserve is space kept up front, for records a latched writer no longer takes: its
         * blocks go to the marker (the next open makes a new reserve) */
        w->reserve_ready = 0;
        if (unlinkat(w->dirfd, MMJ_RESERVE_NAME, 0) == 0)
            rc = mmj_write_atomic(w->dirfd, MMJ_DAMAGED_NAME, text, (size_t)n, &e);
    }
    if (rc == MMJ_OK)
        w->damage_unmarked = 0;
    else
        w->last_errno = e;
    return rc;
}

/* Latch the writer on damage and leave the DAMAGED marker (caller holds the writer mutex, or is
 * the closing writer that holds it while it waits for the check thread). A marker that cannot be
 * written stays owed: mmj_writer_retry_space and the close try again. */
static void latch_found(mmj_writer *w, const mmj_damage *f)
{
    w->damage_reason = f->reason;
    w->damage_segment = f->segment;
    w->damage_offset = f->offset;
    w->damage_seq = f->seq;
    w->damage_told = 0;
    w->damage_unmarked = 1;
    if (!w->failed_errno)
        w->failed_errno = w->last_errno = EBADMSG;
    mmj_recheck_mark(w);
}

/* Latch what the walks found (caller holds the writer mutex): the first damage, else a trusted
 * segment no walk could read, as an I/O error (its errno), which says nothing of its records. */
static void latch_result(mmj_writer *w, const mmj_damage *first)
{
    int e = __atomic_load_n(&w->recheck_errno, __ATOMIC_ACQUIRE);
    if (w->shut || w->damage_reason)
        return;
    if (first) {
        latch_found(w, first);
    } else if (e && !w->failed_errno) {
        w->check_failed = 1;
        w->failed_errno = w->last_errno = e;
    }
}

static void *recheck_main(void *arg)
{
    mmj_writer *w = arg;
    walk_claimed(w, &w->recheck_found);
    if (w->recheck_found.reason == MMJ_R_NONE && !__atomic_load_n(&w->recheck_errno, __ATOMIC_ACQUIRE))
        return NULL;
    /* the writer mutex by trylock: a closing writer holds it while it waits for this thread, and
     * then latches what this thread found itself (mmj_recheck_finish) */
    struct timespec ms = {0, 1000000};
    while (pthread_mutex_trylock(&w->mutex) != 0) {
        if (__atomic_load_n(&w->recheck_closing, __ATOMIC_ACQUIRE))
            return NULL;
        nanosleep(&ms, NULL);
    }
    /* the mutex was free, so no close had started: this thread alone walked, in order, and this
     * is the first damage */
    latch_result(w, w->recheck_found.reason != MMJ_R_NONE ? &w->recheck_found : NULL);
    pthread_mutex_unlock(&w->mutex);
    return NULL;
}

int mmj_recheck_start(mmj_writer *w)
{
    w->recheck_next = 0;
    w->recheck_damaged = UINT64_MAX;
    w->recheck_closing = 0;
    w->recheck_errno = 0;
    w->recheck_found.reason = MMJ_R_NONE;
    w->recheck_running = w->n_trusted && pthread_create(&w->recheck, NULL, recheck_main, w) == 0;
    if (!w->recheck_running && w->n_trusted)
        mmj_recheck_finish(w);   /* no thread: the open checks them itself */
    return w->recheck_running;
}

void mmj_recheck_finish(mmj_writer *w)
{
    if (__atomic_load_n(&w->recheck_next, __ATOMIC_ACQUIRE) >= w->n_trusted / 2 && !w->recheck_running)
        return;
    __atomic_store_n(&w->recheck_closing, 1, __ATOMIC_RELEASE);
    mmj_damage mine;
    walk_claimed(w, &mine);   /* this thread takes the segments not claimed yet */
    const mmj_damage *first = mine.reason != MMJ_R_NONE ? &mine : NULL;
    if (w->recheck_running) {
        pthread_join(w->recheck, NULL);
        w->recheck_running = 0;
        if (w->recheck_found.reason != MMJ_R_NONE && (!first || w->recheck_found.k < first->k))
            first = &w->recheck_found;
    }
    latch_result(w, first);
}

int mmj_damage_read(int dirfd, mmj_recovery *rep)
{
    char buf[160] = {0};
    int fd = openat(dirfd, MMJ_DAMAGED_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MMJ_OK : MMJ_E_IO;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    int reason = MMJ_R_BAD_CRC;
    unsigned long long index = 0, off = 0, seq = 0;
    if (n > 0)
        sscanf(buf, "damaged %d segment %llu offset %llu seq %llu", &reason, &index, &off, &seq);
    rep->reason = reason > 0 ? reason : MMJ_R_BAD_CRC;
    rep->segment = index;
    rep->offset = off;
    rep->seq = seq;
    return MMJ_E_CORRUPT;
}
