/* The LOCK file's text: what a writer says about the journal's end (journal.h DIRECTORY, THE END
 * OF THE JOURNAL), parsed, and checked against the segments a directory holds, so that verify and
 * a writer's recovery notice segments removed from the end.
 *
 * Knows the LOCK line formats and nothing of records; the OFD lock itself is the writer's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal_internal.h"

static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (uint8_t)v;
    }
    return strlen(s) == 2 * n;
}

void mmj_lock_parse(const char *text, mmj_lock_info *out)
{
    char state[16] = {0}, seal[2 * MMJ_HASH_SIZE + 2] = {0};
    unsigned long long seg = 0, next_seq = 0;
    int p = 0;
    memset(out, 0, sizeof *out);
    int got = sscanf(text, "pid %d %15s %llu %llu %65s", &p, state, &seg, &next_seq, seal);
    if (got < 2)
        return;
    out->pid = p;
    out->state = strcmp(state, "open") == 0      ? MMJ_LOCK_OPEN
                 : strcmp(state, "closing") == 0 ? MMJ_LOCK_CLOSING
                 : strcmp(state, "closed") == 0  ? MMJ_LOCK_CLOSED
                                                 : MMJ_LOCK_UNKNOWN;
    out->named = got >= 3 && out->state != MMJ_LOCK_UNKNOWN;
    out->seg = seg;
    out->has_end = out->state == MMJ_LOCK_CLOSED && got == 5 && unhex(seal, out->seal, MMJ_HASH_SIZE);
    out->next_seq = next_seq;
}

int mmj_lock_read_info(int fd, mmj_lock_info *out)
{
    char buf[256] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    mmj_lock_parse(buf, out);
    return MMJ_OK;
}

int mmj_lock_end_check(const mmj_lock_info *lock, const mmj_end *end, uint64_t *missing)
{
    if (!lock->named)
        return MMJ_R_NONE;   /* an older writer's LOCK: a sealed last segment is taken as the end */
    if (!end->segments || end->last_index < lock->seg) {
        *missing = end->segments ? end->last_index + 1 : 0;
        return MMJ_R_MISSING_SEGMENT;
    }
    if (!end->last_sealed)
        return MMJ_R_NONE;   /* a crash's tail (or a power cut's in pagecache mode): recovery's case */
    /* only a clean close leaves a sealed last segment (a roll creates the next one first), and it
     * names that segment (and, once closed, its end) before and after sealing it */
    int named_end = lock->state != MMJ_LOCK_OPEN && end->last_index == lock->seg &&
                    (!lock->has_end || (lock->next_seq == end->next_seq &&
                                        memcmp(lock->seal, end->seal, MMJ_HASH_SIZE) == 0));
    if (named_end)
        return MMJ_R_NONE;
    *missing = end->last_index + 1;
    return MMJ_R_MISSING_SEGMENT;
}

void mmj_lock_format(char *buf, size_t cap, int state, uint64_t seg, uint64_t next_seq, const uint8_t *seal)
{
    static const char *names[] = {"open", "open", "closing", "closed"};
    int n = snprintf(buf, cap, "pid %d %s %llu", (int)getpid(), names[state], (unsigned long long)seg);
    if (state == MMJ_LOCK_CLOSED && seal && n > 0 && (size_t)n < cap) {
        n += snprintf(buf + n, cap - (size_t)n, " %llu ", (unsigned long long)next_seq);
        for (size_t i = 0; i < MMJ_HASH_SIZE && n > 0 && (size_t)n + 3 < cap; i++)
            n += snprintf(buf + n, cap - (size_t)n, "%02x", seal[i]);
    }
    if (n > 0 && (size_t)n + 1 < cap)
        strcpy(buf + n, "\n");
}
