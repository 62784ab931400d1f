/* The writer's helper thread: keeps the hash chain and the page faults ahead of the appends.
 *
 * It hashes published bytes of the current segment into the chain's running state (chain.c), so
 * a CHECKPOINT or SEAL only finishes the few bytes since the helper last ran, and it
 * prefaults (MADV_POPULATE_WRITE) the segment a window ahead of the write position, so the
 * append thread takes no page faults; once the segment is half full it preallocates and maps
 * the next segment file (next.mmj.tmp) and then faults it in, a chunk at a time between the
 * current segment's steps (so preparing 64 MiB never leaves the current segment unprefaulted
 * and unhashed for tens of milliseconds), so a roll neither waits for posix_fallocate nor
 * leaves the appends to fault pages in; a roll takes it however far it got (one that comes while
 * the file is still being created waits for it, bounded, rather than allocate a second). It
 * never writes journal data; knows nothing of records.
 *   It runs at normal priority. It used to run as SCHED_IDLE so as never to take the CPU from
 * the append thread, but on a shared machine an idle-class (or niced, or sched_yield()ing)
 * thread gets almost no CPU while any other process runs: the append thread then took every
 * page fault itself (the bench's C program, 64-byte appends, alternating runs: p99 1.4 us and
 * p99.9 2.2 us as SCHED_IDLE, 0.18 and 0.43 us at normal priority). When it does starve,
 * appends fault their pages in one at a time (a few microseconds each, less than a chunk
 * prefault) and checkpoints hash what is left, as if there were no helper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>

#include "journal_writer_state.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define MMJ_PREFAULT_WINDOW (4u << 20)   /* bytes kept faulted in ahead of the write position */
#define MMJ_AHEAD_CHUNK (64u << 10)      /* bytes hashed or prefaulted per step (bounds lock hold) */
#define MMJ_AHEAD_MIN_HASH (16u << 10)   /* fewer unhashed bytes are left for later (or the checkpoint):
                                          * a slowly appending writer must not wake it every poll */
#define MMJ_AHEAD_IDLE_NS 1000000        /* sleep between bursts of work (see helper_main) */
#define MMJ_AHEAD_BUSY_NS 100000         /* ... after a long burst: the appends run flat out */
#define MMJ_AHEAD_LONG_BURST 24          /* steps (64 KiB each) that make a burst long: more than
                                          * a Python append loop makes in a millisecond (about 10), so
                                          * its appends keep the 1 ms cadence (fewer wake-ups, p99.9) */
#define MMJ_NOTIFY_RESET_NS 1000000000   /* how often a leftover tailer registration is cleared */

void mmj_ahead_reset(mmj_writer *w, const uint8_t *anchor_hash, uint64_t anchor_off)
{
    memcpy(w->anchor_hash, anchor_hash, MMJ_HASH_SIZE);
    w->anchor_off = anchor_off;
    mmj_chain_init(&w->chain, w->seg.version, anchor_hash);
    w->hashed_off = anchor_off;
}

void mmj_ahead_hash(mmj_writer *w, uint64_t upto, uint8_t *out)
{
    if (upto > w->hashed_off) {
        mmj_chain_update(&w->chain, w->seg.base + w->hashed_off, upto - w->hashed_off);
        w->hashed_off = upto;
    }
    mmj_chain_final(&w->chain, out);   /* the running state goes on */
}

int mmj_ahead_prefault(mmj_writer *w, uint64_t pos)
{
    if (w->prefault_off || !w->seg.base || w->prefaulted >= w->seg.size || pos + MMJ_PREFAULT_WINDOW <= w->prefaulted)
        return 0;
    uint64_t len = w->seg.size - w->prefaulted;
    if (len > MMJ_AHEAD_CHUNK)
        len = MMJ_AHEAD_CHUNK;
    if (madvise(w->seg.base + w->prefaulted, (size_t)len, MADV_POPULATE_WRITE) != 0)
        w->prefault_off = 1;   /* older kernel: appends fault pages in as they go */
    w->prefaulted += len;
    return 1;
}

int mmj_ahead_take_next(mmj_writer *w, uint64_t index, uint8_t **mapped, uint64_t *populated)
{
    if (w->next_fd >= 0 && w->next_index == index) {
        char tmp[64];
        int fd = w->next_fd;
        mmj_segment_name(tmp, sizeof tmp, index, 1);
        if (renameat(w->dirfd, MMJ_NEXT_TMP, w->dirfd, tmp) == 0) {
            *mapped = w->next_base;
            *populated = w->next_populated;
            w->next_fd = -1;
            w->next_base = NULL;
            return fd;
        }
    }
    mmj_ahead_drop_next(w);
    return -1;
}

int mmj_ahead_wait_next(mmj_writer *w, int64_t timeout_ns)
{
    if (!w->next_busy)
        return 0;
    if (w->next_overdue)   /* an earlier roll already waited the bound for this same file */
        return 1;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(timeout_ns / 1000000000);
    until.tv_nsec += (long)(timeout_ns % 1000000000);
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    w->next_wanted = 1;   /* the helper keeps what it finishes now, though a roll is under way */
    while (w->next_busy && pthread_cond_timedwait(&w->next_done, &w->hash_mu, &until) != ETIMEDOUT)
        ;
    w->next_wanted = 0;   /* given up: a file finished from now on is dropped (prepare_next) */
    w->next_overdue = w->next_busy;
    return w->next_busy;
}

void mmj_ahead_drop_next(mmj_writer *w)
{
    if (w->next_fd < 0)
        return;
    munmap(w->next_base, (size_t)w->opt.segment_size);
    close(w->next_fd);
    unlinkat(w->dirfd, MMJ_NEXT_TMP, 0);
    w->next_fd = -1;
    w->next_base = NULL;
}

/* Create next.mmj.tmp preallocated to the segment size and map it (faulting in comes later, a
 * chunk per step); MAP_FAILED if it cannot (short of space). No lock held: only this thread
 * creates next.mmj.tmp, and the writer renames it away before using it. */
static uint8_t *make_next(mmj_writer *w, int *fd)
{
    uint64_t size = w->opt.segment_size;
    *fd = openat(w->dirfd, MMJ_NEXT_TMP, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0)
        return MAP_FAILED;
    uint8_t *p = MAP_FAILED;
    if (posix_fallocate(*fd, 0, (off_t)size) == 0)
        p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (p == MAP_FAILED) {
        close(*fd);
        unlinkat(w->dirfd, MMJ_NEXT_TMP, 0);
    }
    return p;
}

/* Create the next segment without holding hash_mu (posix_fallocate of 64 MiB takes a while),
 * then offer it if the writer is still in the same segment. Called and returns with hash_mu
 * held. */
static int prepare_next(mmj_writer *w, uint64_t pub)
{
    if (w->next_fd >= 0 || w->next_failed || w->rolling || !w->seg.base || pub < w->seg.size / 2)
        return 0;
    uint64_t index = w->seg.index + 1;
    int fd;
    w->next_busy = 1;
    pthread_mutex_unlock(&w->hash_mu);
    uint8_t *p = make_next(w, &fd);
    pthread_mutex_lock(&w->hash_mu);
    w->next_busy = w->next_overdue = 0;
    pthread_cond_broadcast(&w->next_done);
    if (p == MAP_FAILED) {
        w->next_failed = 1;   /* short of space: the roll will find out itself */
        return 1;
    }
    w->next_fd = fd;
    w->next_base = p;
    w->next_index = index;
    w->next_populated = 0;
    /* kept for a roll waiting for it; dropped if the writer rolled meanwhile (made for a taken
     * index), or rolls without waiting for it (it gave up and allocated the segment itself) */
    if (!(w->seg.base && w->seg.index + 1 == index) || (w->rolling && !w->next_wanted))
        mmj_ahead_drop_next(w);
    return 1;
}

/* Fault in one more chunk of the prepared next segment (hash_mu held: it keeps next_base). */
static int populate_next(mmj_writer *w)
{
    uint64_t size = w->opt.segment_size;
    if (w->next_fd < 0 || w->prefault_off || w->next_populated >= size)
        return 0;
    uint64_t len = size - w->next_populated < MMJ_AHEAD_CHUNK ? size - w->next_populated : MMJ_AHEAD_CHUNK;
    if (madvise(w->next_base + w->next_populated, (size_t)len, MADV_POPULATE_WRITE) != 0) {
        pthread_mutex_lock(&w->fault_mu);
        w->prefault_off = 1;
        pthread_mutex_unlock(&w->fault_mu);
    }
    w->next_populated += len;
    return 1;
}

void mmj_ahead_retire(mmj_writer *w, mmj_map *old)
{
    if (w->retired.base)   /* the helper has not got to the previous one yet */
        mmj_unmap(&w->retired);
    if (w->helper_running) {
        w->retired = *old;
        old->base = NULL;
        pthread_cond_signal(&w->wake);
    } else {
        mmj_unmap(old);
    }
}

/* One step under hash_mu after the prefault window (fault_mu): the chain (what a checkpoint
 * would otherwise hash), a retired mapping, then the next segment. */
static int step(mmj_writer *w)
{
    uint64_t pub = __atomic_load_n(&w->pub_off, __ATOMIC_ACQUIRE);
    if (w->retired.base) {
        mmj_unmap(&w->retired);
        return 1;
    }
    if (w->seg.base && w->hashed_off + MMJ_AHEAD_MIN_HASH <= pub) {
        uint64_t len = pub - w->hashed_off;
        if (len > MMJ_AHEAD_CHUNK)
            len = MMJ_AHEAD_CHUNK;
        mmj_chain_update(&w->chain, w->seg.base + w->hashed_off, len);
        w->hashed_off += len;
        return 1;
    }
    return prepare_next(w, pub) || populate_next(w);
}

/* Work in bursts: wake every millisecond, do everything there is, sleep again. When the helper
 * shares a CPU with the append thread, each wake-up can delay one append by the burst; waking
 * every 200 us put such a delay on 1 in ~600 Python appends (p99.9 60 us), every millisecond on 1
 * in ~3,000 (p99.9 8 us, as with no helper at all), while the 4 MiB prefault window still covers
 * a millisecond of appends at 4 GB/s. */
static void *helper_main(void *arg)
{
    mmj_writer *w = arg;
    int burst = 0;   /* steps since the last sleep */
    int64_t reset_at = mmj_now_ns() + MMJ_NOTIFY_RESET_NS;
    pthread_mutex_lock(&w->hash_mu);
    while (!w->helper_stop) {
        /* the prefault window first, and without hash_mu: what the append path would otherwise
         * wait for, while the append thread may be hashing under hash_mu at a checkpoint */
        pthread_mutex_unlock(&w->hash_mu);
        if (mmj_now_ns() >= reset_at) {
            /* a tailer killed while waiting stays registered: every append would pay a wake call
             * (live waiters are woken by the reset and register again: journal_notify.c) */
            mmj_notify_reset(w->notify);
            reset_at = mmj_now_ns() + MMJ_NOTIFY_RESET_NS;
        }
        mmj_writer_group_tick(w);
        int faulted = 0;
        for (int k = 0; k < 16; k++) {   /* up to 1 MiB, then a look at the rest */
            pthread_mutex_lock(&w->fault_mu);
            int did = mmj_ahead_prefault(w, __atomic_load_n(&w->pub_off, __ATOMIC_ACQUIRE));
            pthread_mutex_unlock(&w->fault_mu);
            if (!did)
                break;
            faulted = 1;
            burst++;
        }
        pthread_mutex_lock(&w->hash_mu);
        if (faulted)
            continue;
        if (step(w)) {
            burst++;
            /* let a checkpoint or roll waiting for hash_mu in */
            pthread_mutex_unlock(&w->hash_mu);
            pthread_mutex_lock(&w->hash_mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        /* appends flat out (a C loop, a bulk load) fill a checkpoint interval well within a
         * millisecond: waking sooner then keeps the chain hashed before the checkpoint needs
         * it, instead of the append thread hashing it there */
        until.tv_nsec += burst >= MMJ_AHEAD_LONG_BURST ? MMJ_AHEAD_BUSY_NS : MMJ_AHEAD_IDLE_NS;
        burst = 0;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->wake, &w->hash_mu, &until);
    }
    pthread_mutex_unlock(&w->hash_mu);
    return NULL;
}

void mmj_ahead_init(mmj_writer *w)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&w->hash_mu, NULL);
    pthread_mutex_init(&w->fault_mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_cond_init(&w->next_done, &attr);
    pthread_condattr_destroy(&attr);
}

void mmj_ahead_destroy(mmj_writer *w)
{
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->next_done);
    pthread_mutex_destroy(&w->hash_mu);
    pthread_mutex_destroy(&w->fault_mu);
}

int mmj_ahead_start(mmj_writer *w)
{
    w->helper_stop = 0;
    w->helper_running = pthread_create(&w->helper, NULL, helper_main, w) == 0;
    return w->helper_running;
}

void mmj_ahead_stop(mmj_writer *w)
{
    if (!w->helper_running)
        return;
    pthread_mutex_lock(&w->hash_mu);
    w->helper_stop = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->hash_mu);
    pthread_join(w->helper, NULL);
    w->helper_running = 0;
    mmj_unmap(&w->retired);
}
