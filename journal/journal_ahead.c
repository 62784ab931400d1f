/* The writer's helper thread: keeps the hash chain and the page faults ahead of the appends.
 *
 * It hashes published bytes of the current segment into the running BLAKE2b state of the chain,
 * so a CHECKPOINT or SEAL only finishes the few bytes since the helper last ran, and it
 * prefaults (MADV_POPULATE_WRITE) the segment a window ahead of the write position, so the
 * append thread takes no page faults. It never writes the journal; knows nothing of records.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "journal_writer_state.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define MMJ_PREFAULT_WINDOW (1u << 20)   /* bytes kept faulted in ahead of the write position */
#define MMJ_AHEAD_CHUNK (64u << 10)      /* bytes hashed or prefaulted per step (bounds lock hold) */
#define MMJ_AHEAD_IDLE_NS 200000         /* first idle wait; doubles up to the max */
#define MMJ_AHEAD_IDLE_MAX_NS 1000000

void mmj_ahead_reset(mmj_writer *w, const uint8_t *anchor_hash, uint64_t anchor_off)
{
    memcpy(w->anchor_hash, anchor_hash, MMJ_HASH_SIZE);
    w->anchor_off = anchor_off;
    mmj_blake2b_init(&w->hctx);
    mmj_blake2b_update(&w->hctx, anchor_hash, MMJ_HASH_SIZE);
    w->hashed_off = anchor_off;
}

void mmj_ahead_hash(mmj_writer *w, uint64_t upto, uint8_t *out)
{
    if (upto > w->hashed_off) {
        mmj_blake2b_update(&w->hctx, w->seg.base + w->hashed_off, upto - w->hashed_off);
        w->hashed_off = upto;
    }
    mmj_blake2b_ctx done = w->hctx;   /* finish a copy: the running state goes on */
    mmj_blake2b_final(&done, out);
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

/* One step under hash_mu: prefault first (it is what the append path waits for), then hash. */
static int step(mmj_writer *w)
{
    uint64_t pub = __atomic_load_n(&w->pub_off, __ATOMIC_ACQUIRE);
    if (mmj_ahead_prefault(w, pub))
        return 1;
    if (w->seg.base && w->hashed_off < pub) {
        uint64_t len = pub - w->hashed_off;
        if (len > MMJ_AHEAD_CHUNK)
            len = MMJ_AHEAD_CHUNK;
        mmj_blake2b_update(&w->hctx, w->seg.base + w->hashed_off, len);
        w->hashed_off += len;
        return 1;
    }
    return 0;
}

static void *helper_main(void *arg)
{
    mmj_writer *w = arg;
    int64_t idle = MMJ_AHEAD_IDLE_NS;
    pthread_mutex_lock(&w->hash_mu);
    while (!w->helper_stop) {
        if (step(w)) {
            idle = MMJ_AHEAD_IDLE_NS;
            /* let a checkpoint or roll waiting for hash_mu in */
            pthread_mutex_unlock(&w->hash_mu);
            pthread_mutex_lock(&w->hash_mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += idle;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->wake, &w->hash_mu, &until);
        if (idle < MMJ_AHEAD_IDLE_MAX_NS)
            idle *= 2;
    }
    pthread_mutex_unlock(&w->hash_mu);
    return NULL;
}

void mmj_ahead_init(mmj_writer *w)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&w->hash_mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
}

void mmj_ahead_destroy(mmj_writer *w)
{
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->hash_mu);
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
}
