/* The wake-up word a writer shares with tailers in other processes: the file `notify` in the
 * journal directory, mapped MAP_SHARED, holding a futex counter and a count of waiting tailers.
 *
 * The writer bumps the counter and calls FUTEX_WAKE only when a tailer waits, so an append with
 * no waiter costs one load. Knows nothing of records or segments.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "journal_internal.h"

struct mmj_notify {
    uint32_t counter;          /* futex word: bumped by the writer on a wake */
    uint32_t waiters;          /* tailers inside mmj_notify_wait */
};

/* Writer: make sure a fully allocated notify file exists (a hole in a tmpfs mapping would
 * SIGBUS on a full disk): temp name, posix_fallocate, rename. 0 on success. */
static int notify_create(int dirfd)
{
    struct stat st;
    if (fstatat(dirfd, MMJ_NOTIFY_NAME, &st, 0) == 0 && st.st_size >= MMJ_NOTIFY_SIZE &&
        (uint64_t)st.st_blocks * 512 >= MMJ_NOTIFY_SIZE)
        return 0;
    int fd = openat(dirfd, MMJ_NOTIFY_NAME ".tmp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = posix_fallocate(fd, 0, MMJ_NOTIFY_SIZE);
    close(fd);
    if (rc != 0 || renameat(dirfd, MMJ_NOTIFY_NAME ".tmp", dirfd, MMJ_NOTIFY_NAME) != 0) {
        unlinkat(dirfd, MMJ_NOTIFY_NAME ".tmp", 0);
        return -1;
    }
    return 0;
}

mmj_notify *mmj_notify_map(int dirfd, int create)
{
    if (create && notify_create(dirfd) != 0)
        return NULL;   /* no space for it: tailers poll */
    int fd = openat(dirfd, MMJ_NOTIFY_NAME, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return NULL;   /* no notify file (or read-only access): tailers poll */
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < MMJ_NOTIFY_SIZE || (uint64_t)st.st_blocks * 512 < MMJ_NOTIFY_SIZE) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, MMJ_NOTIFY_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

void mmj_notify_unmap(mmj_notify *n)
{
    if (n)
        munmap(n, MMJ_NOTIFY_SIZE);
}

void mmj_notify_wake(mmj_notify *n)
{
    if (!n)
        return;
#if !defined(__x86_64__) && !defined(__i386__)
    /* the record's publication must be visible before waiters is read (on x86 the mutex
     * unlock that precedes this call is a locked exchange, a full barrier) */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    if (__atomic_load_n(&n->waiters, __ATOMIC_SEQ_CST) == 0)
        return;
    __atomic_add_fetch(&n->counter, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &n->counter, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint32_t mmj_notify_enter(mmj_notify *n)
{
    uint32_t seen = __atomic_load_n(&n->counter, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&n->waiters, 1, __ATOMIC_SEQ_CST);
    return seen;
}

void mmj_notify_wait(mmj_notify *n, uint32_t seen, int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    syscall(SYS_futex, &n->counter, FUTEX_WAIT, seen, &ts, NULL, 0);
}

void mmj_notify_leave(mmj_notify *n)
{
    __atomic_sub_fetch(&n->waiters, 1, __ATOMIC_SEQ_CST);
}
