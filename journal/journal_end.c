/* Where a journal's segments end, as readers and tailers see it (journal.h THE END OF THE
 * JOURNAL): whether the last segment they reached, sealed or not, is really the journal's end or
 * a gap in front of later segments.
 *
 * Looks at the directory listing, LOCK and the first bytes after a segment's header; never at
 * records in mapped segments (the callers re-check those) and never repairs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_internal.h"

#define MMJ_END_PEEK 4096   /* bytes after a header looked at to tell a blank segment from one in use */

int mmj_end_after_sealed(int dirfd, uint64_t last, uint64_t next_seq, const uint8_t *seal, int *grown,
                         uint64_t *missing)
{
    mmj_lock_info lock;
    memset(&lock, 0, sizeof lock);
    *grown = 0;
    *missing = 0;
    /* LOCK first: a writer creates a segment before LOCK names it, so a LOCK naming one is never
     * read before that segment can be listed */
    int fd = openat(dirfd, MMJ_LOCK_NAME, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        mmj_lock_read_info(fd, &lock);
        close(fd);
    }
    uint64_t *idx = NULL;
    size_t n = 0;
    int rc = mmj_list_segments(dirfd, &idx, &n, NULL);
    if (rc != MMJ_OK)
        return rc;
    int beyond = 0;
    for (size_t i = 0; i < n; i++) {
        *grown |= idx[i] == last + 1;
        beyond |= idx[i] > last + 1;
    }
    free(idx);
    if (*grown)
        return MMJ_OK;
    uint64_t at = last + 1;
    if (!beyond) {
        mmj_end end = {.segments = n, .last_index = last, .last_sealed = 1, .next_seq = next_seq, .seal = seal};
        if (mmj_lock_end_check(&lock, &end, &at) == MMJ_R_NONE)
            return MMJ_OK;
    }
    *missing = at;
    return MMJ_OK;
}

/* 1 if segment file `index` exists and holds a non-zero byte in the first MMJ_END_PEEK bytes
 * after its header (the writer wrote in it: a record, or a torn one), else 0. */
static int segment_in_use(int dirfd, uint64_t index)
{
    char name[64];
    uint8_t buf[MMJ_END_PEEK];
    mmj_segment_name(name, sizeof name, index, 0);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = pread(fd, buf, sizeof buf, MMJ_HEADER_SIZE);
    close(fd);
    for (ssize_t i = 0; i < got; i++)
        if (buf[i])
            return 1;
    return 0;
}

int mmj_end_after_unsealed(int dirfd, uint64_t index, int *continues)
{
    uint64_t *idx = NULL;
    size_t n = 0;
    *continues = 0;
    int rc = mmj_list_segments(dirfd, &idx, &n, NULL);
    if (rc != MMJ_OK)
        return rc;
    int next = 0, beyond = 0;
    for (size_t i = 0; i < n; i++) {
        next |= idx[i] == index + 1;
        beyond |= idx[i] > index + 1;
    }
    free(idx);
    /* a roll creates segment index+1 (blank) before it seals `index`, and writes nothing in it
     * before the EOS: a blank successor is a roll in progress (or cut short by a crash) */
    *continues = beyond || (next && segment_in_use(dirfd, index + 1));
    return MMJ_OK;
}
