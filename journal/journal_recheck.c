/* The check, after a writer's open, of the sealed segments its recovery did not scan because their
 * summary was believed and DURABLE (journal.h DAMAGE BEHIND A SUMMARY): a thread of its own walks
 * their records (RECORD rules) while the writer appends. Damage latches the writer (every later
 * append fails with MMJ_E_CORRUPT) and leaves the DAMAGED file, which makes every later open fail
 * closed until an operator removes it.
 *
 * Knows the record rules and the writer's latch; nothing of payloads or of the append path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal_writer_state.h"

#define MMJ_RECHECK_STEP (1u << 20)   /* bytes walked between looks at the stop flag */

/* Walk segment `index` from its header: MMJ_R_NONE if its records lead to its EOS, else the reason
 * at *off (expected sequence *seq); -1 if stopped. */
static int walk(mmj_writer *w, uint64_t index, uint64_t first_seq, uint64_t *off, uint64_t *seq)
{
    mmj_map m;
    *off = 0;
    *seq = first_seq;
    int rc = mmj_map_segment(w->dirfd, index, 0, &m, NULL);
    if (rc != MMJ_OK)
        return MMJ_R_BAD_HEADER;   /* it was there at open: gone or unreadable since */
    uint32_t k = mmj_salt_check(w->salt, index);
    uint64_t next_look = MMJ_RECHECK_STEP;
    int reason = MMJ_R_NONE;
    mmj_record rec;
    for (*off = MMJ_HEADER_SIZE;;) {
        int size = mmj_record_check(m.base, m.size, *off, k, *seq, &rec);
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
            if (__atomic_load_n(&w->recheck_stop, __ATOMIC_ACQUIRE)) {
                reason = -1;
                break;
            }
        }
    }
    mmj_unmap(&m);
    return reason;
}

/* Latch the writer on damage (writer mutex taken by trylock, so that a shutdown waiting for this
 * thread while holding it is not blocked) and leave the DAMAGED marker. */
static void latch_damage(mmj_writer *w, int reason, uint64_t index, uint64_t off, uint64_t seq)
{
    struct timespec ms = {0, 1000000};
    while (pthread_mutex_trylock(&w->mutex) != 0) {
        if (__atomic_load_n(&w->recheck_stop, __ATOMIC_ACQUIRE))
            return;   /* the writer is closing: the next open's recovery trusts nothing less */
        nanosleep(&ms, NULL);
    }
    if (!w->shut) {
        char text[160];
        int n = snprintf(text, sizeof text, "damaged %d segment %llu offset %llu seq %llu\n", reason,
                         (unsigned long long)index, (unsigned long long)off, (unsigned long long)seq);
        w->damage_reason = reason;
        w->damage_segment = index;
        w->damage_offset = off;
        w->damage_seq = seq;
        if (!w->failed_errno)
            w->failed_errno = w->last_errno = EBADMSG;
        mmj_write_atomic(w->dirfd, MMJ_DAMAGED_NAME, text, (size_t)n, NULL);
    }
    pthread_mutex_unlock(&w->mutex);
}

static void *recheck_main(void *arg)
{
    mmj_writer *w = arg;
    for (uint64_t k = 0; k + 1 < w->n_trusted; k += 2) {
        uint64_t off, seq;
        int reason = walk(w, w->trusted[k], w->trusted[k + 1], &off, &seq);
        if (reason < 0)
            break;
        if (reason != MMJ_R_NONE) {
            latch_damage(w, reason, w->trusted[k], off, seq);
            break;
        }
    }
    return NULL;
}

int mmj_recheck_start(mmj_writer *w)
{
    w->recheck_stop = 0;
    w->recheck_running = w->n_trusted && pthread_create(&w->recheck, NULL, recheck_main, w) == 0;
    return w->recheck_running;
}

void mmj_recheck_stop(mmj_writer *w)
{
    if (!w->recheck_running)
        return;
    __atomic_store_n(&w->recheck_stop, 1, __ATOMIC_RELEASE);
    pthread_join(w->recheck, NULL);
    w->recheck_running = 0;
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
