/* What writer recovery keeps of what it discards (journal.h DISCARDED DATA).
 *
 * Recovery makes the journal a valid prefix: it stops at the first invalid record. When that
 * record is not a crashed writer's torn tail (the segment had been sealed, later segments hold
 * records, or a record after it still validates), what follows it is damage (bit rot, a bad
 * disk, tampering, pages lost at a power loss) in front of records that were written. Deleting
 * them would destroy the evidence verify() and an auditor need, so they are moved, not deleted: into discarded/r<N>/ (N = 1, 2, ... one per such recovery),
 * where readers, tailers and verify never look (they read seg-* files of the journal directory).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_internal.h"

#define MMJ_DISCARD_DIR "discarded"
#define MMJ_DISCARD_RUNS_MAX 100000u     /* bounds the search for a free r<N> */

int mmj_discard_open(int dirfd, mmj_discard *d)
{
    char name[32];
    d->fd = -1;
    d->run = 0;
    if (mkdirat(dirfd, MMJ_DISCARD_DIR, 0755) == 0) {
        if (fsync(dirfd) != 0)      /* the new name must survive before anything is moved in */
            return MMJ_E_IO;
    } else if (errno != EEXIST) {
        return MMJ_E_IO;
    }
    int parent = openat(dirfd, MMJ_DISCARD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0)
        return MMJ_E_IO;
    for (uint32_t n = 1; n <= MMJ_DISCARD_RUNS_MAX; n++) {
        snprintf(name, sizeof name, "r%u", n);
        if (mkdirat(parent, name, 0755) != 0) {
            if (errno == EEXIST)
                continue;
            break;
        }
        d->fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->fd >= 0 && fsync(parent) == 0) {
            d->run = n;
            close(parent);
            return MMJ_OK;
        }
        break;
    }
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    close(parent);
    return MMJ_E_IO;
}

int mmj_discard_copy(mmj_discard *d, uint64_t index, const uint8_t *bytes, uint64_t len)
{
    /* written under the .tmp name and renamed once whole: a crash mid-copy leaves no short file
     * that looks like a kept copy (the damaged segment is still unrepaired then) */
    char name[64], tmp[64];
    mmj_segment_name(name, sizeof name, index, 0);
    mmj_segment_name(tmp, sizeof tmp, index, 1);
    int fd = openat(d->fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return MMJ_E_IO;
    uint64_t done = 0;
    while (done < len) {
        ssize_t got = write(fd, bytes + done, (size_t)(len - done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        done += (uint64_t)got;
    }
    /* durable, name and bytes, before the segment is repaired: a crash in between must not lose
     * both copies */
    int ok = done == len && fsync(fd) == 0;
    close(fd);
    ok = ok && renameat(d->fd, tmp, d->fd, name) == 0;
    return ok && fsync(d->fd) == 0 ? MMJ_OK : MMJ_E_IO;
}

int mmj_discard_move(mmj_discard *d, int dirfd, uint64_t index)
{
    char name[64];
    mmj_segment_name(name, sizeof name, index, 0);
    if (renameat(dirfd, name, d->fd, name) != 0)
        return MMJ_E_IO;
    mmj_discard_summary(d, dirfd, index);
    return MMJ_OK;
}

void mmj_discard_summary(mmj_discard *d, int dirfd, uint64_t index)
{
    char name[64];
    mmj_footer_name(name, sizeof name, index, 0);
    renameat(dirfd, name, d->fd, name);     /* none (ENOENT) is fine: a summary is only a hint */
}

int mmj_discard_close(mmj_discard *d)
{
    int ok = d->fd < 0 || fsync(d->fd) == 0;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    return ok ? MMJ_OK : MMJ_E_IO;
}
