/* The wake-up word a writer shares with tailers in other processes: the file `notify` in the
 * journal directory, mapped MAP_SHARED, holding a futex counter and the waiting tailers.
 *
 * The writer bumps the counter and calls FUTEX_WAKE only when a tailer waits, so an append with
 * no waiter costs one load. A tailer killed while waiting cannot leave its registration behind
 * for good: the writer resets the count (at open, then about once a second while it is not
 * zero), and a reset starts a new epoch and wakes everyone, so a live waiter re-registers at
 * once (one spurious wake-up, never a missed one). Knows nothing of records or segments.
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
    uint32_t waiters;          /* epoch (high 16 bits) | tailers registered in it (low 16 bits) */
};

#define MMJ_NOTIFY_COUNT 0xffffu     /* the waiters count in the waiters word */
#define MMJ_NOTIFY_EPOCH 0x10000u    /* one epoch: a reset adds it and clears the count */

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

static void wake_all(mmj_notify *n)
{
    __atomic_add_fetch(&n->counter, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &n->counter, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
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
    if ((__atomic_load_n(&n->waiters, __ATOMIC_SEQ_CST) & MMJ_NOTIFY_COUNT) == 0)
        return;
    wake_all(n);
}

/* Why a reset never costs a live waiter a wake-up: a tailer loads the counter (`seen`) before it
 * registers, and the reset bumps the counter after it clears the count. A tailer registered in
 * the old epoch has either not reached FUTEX_WAIT yet (the counter is no longer `seen`: the wait
 * returns at once) or sleeps in it (the reset's FUTEX_WAKE wakes it); either way it re-checks for
 * records and registers again in the new epoch. One that registers after the reset is counted.
 * Its leave only decrements the count of its own epoch. */
int mmj_notify_reset(mmj_notify *n)
{
    if (!n)
        return 0;
    uint32_t cur = __atomic_load_n(&n->waiters, __ATOMIC_SEQ_CST);
    do {
        if ((cur & MMJ_NOTIFY_COUNT) == 0)
            return 0;
    } while (!__atomic_compare_exchange_n(&n->waiters, &cur, (cur & ~MMJ_NOTIFY_COUNT) + MMJ_NOTIFY_EPOCH, 0,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    wake_all(n);
    return 1;
}

uint32_t mmj_notify_enter(mmj_notify *n, uint32_t *epoch)
{
    uint32_t seen = __atomic_load_n(&n->counter, __ATOMIC_SEQ_CST);
    *epoch = __atomic_fetch_add(&n->waiters, 1, __ATOMIC_SEQ_CST) & ~MMJ_NOTIFY_COUNT;
    return seen;
}

void mmj_notify_wait(mmj_notify *n, uint32_t seen, int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    syscall(SYS_futex, &n->counter, FUTEX_WAIT, seen, &ts, NULL, 0);
}

void mmj_notify_leave(mmj_notify *n, uint32_t epoch)
{
    uint32_t cur = __atomic_load_n(&n->waiters, __ATOMIC_SEQ_CST);
    /* a reset since our enter cleared our registration already */
    while ((cur & ~MMJ_NOTIFY_COUNT) == epoch && (cur & MMJ_NOTIFY_COUNT) != 0 &&
           !__atomic_compare_exchange_n(&n->waiters, &cur, cur - 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
}
