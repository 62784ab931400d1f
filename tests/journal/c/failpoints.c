/* LD_PRELOAD fault injection for journal tests: while the file named by an environment variable
 * exists, the matching libc call fails as the kernel would report it, so a test can make one
 * append fail at the exact step it is about (a real ENOSPC or EIO is kept for the tests that can
 * get one from a real device: see test_durability.py's failing_disk).
 *   MMJ_FAIL_MSYNC     msync          -> -1, errno EIO    (writeback failed)
 *   MMJ_FAIL_FALLOCATE posix_fallocate -> ENOSPC          (no room for a new segment)
 *   MMJ_FAIL_RENAME    renameat       -> -1, errno EIO    (a roll cannot name the new segment)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static int armed(const char *var)
{
    const char *flag = getenv(var);
    return flag && *flag && access(flag, F_OK) == 0;
}

int msync(void *addr, size_t len, int flags)
{
    static int (*real)(void *, size_t, int);
    if (!real)
        real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
    if (armed("MMJ_FAIL_MSYNC")) {
        errno = EIO;
        return -1;
    }
    return real(addr, len, flags);
}

int posix_fallocate(int fd, off_t offset, off_t len)
{
    static int (*real)(int, off_t, off_t);
    if (!real)
        real = (int (*)(int, off_t, off_t))dlsym(RTLD_NEXT, "posix_fallocate");
    if (armed("MMJ_FAIL_FALLOCATE"))
        return ENOSPC;
    return real(fd, offset, len);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    static int (*real)(int, const char *, int, const char *);
    if (!real)
        real = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
    if (armed("MMJ_FAIL_RENAME")) {
        errno = EIO;
        return -1;
    }
    return real(olddirfd, oldpath, newdirfd, newpath);
}
