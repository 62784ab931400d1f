/* LD_PRELOAD shim for tests: while the file named by MMJ_FAIL_FLAG exists, a read-only openat of
 * a segment file (seg-*.mmj) fails with errno MMJ_FAIL_ERRNO, as when a process runs out of
 * descriptors or memory for a moment; everything else goes to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(const char *path, int flags)
{
    const char *flag = getenv("MMJ_FAIL_FLAG"), *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    return flag && (flags & O_ACCMODE) == O_RDONLY && strncmp(base, "seg-", 4) == 0 && n > 4 &&
           strcmp(base + n - 4, ".mmj") == 0 && access(flag, F_OK) == 0;
}

/* openat only: the journal's C core calls it by that name (64-bit offsets are native here) */
int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    int (*real)(int, const char *, int, ...) = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
    if (failing(path, flags)) {
        errno = atoi(getenv("MMJ_FAIL_ERRNO"));
        return -1;
    }
    return real(dirfd, path, flags, mode);
}
