/* LD_PRELOAD for journal tests that must see which files the C core preallocates and fdatasyncs,
 * and hold the writer's helper thread mid-way through preparing the next segment:
 *   MMJ_FS_LOG     a file: each posix_fallocate appends "fallocate <name> <inode>\n" once the call
 *                  returned and each fdatasync "fdatasync <name> <inode>\n" (name: the file's base
 *                  name), one write(2) per line with O_APPEND; each fsync "fsync <name> <inode>\n",
 *                  each mkdir/mkdirat that created a directory "mkdir <last path component> 0\n";
 *   MMJ_HOLD_NEXT  a path: a posix_fallocate of next.mmj.tmp (the helper's) first logs
 *                  "hold next.mmj.tmp <inode>", then waits until that path exists (polling every
 *                  millisecond, at most 60 s) before it allocates.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The base name of the file open as fd (empty if unknown) and its inode. */
static const char *name_of(int fd, char *buf, size_t cap, unsigned long long *ino)
{
    char link[64];
    struct stat st;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, cap - 1);
    buf[n > 0 ? n : 0] = 0;
    *ino = fstat(fd, &st) == 0 ? (unsigned long long)st.st_ino : 0;
    const char *base = strrchr(buf, '/');
    return base ? base + 1 : buf;
}

static void log_line(const char *what, const char *name, unsigned long long ino)
{
    const char *path = getenv("MMJ_FS_LOG");
    char line[512];
    if (!path || !*path)
        return;
    int n = snprintf(line, sizeof line, "%s %s %llu\n", what, name, ino);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n)
            (void)0;
        close(fd);
    }
}

static void hold(const char *name, unsigned long long ino)
{
    const char *release = getenv("MMJ_HOLD_NEXT");
    if (!release || !*release || strcmp(name, "next.mmj.tmp") != 0)
        return;
    log_line("hold", name, ino);
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 60000 && access(release, F_OK) != 0; i++)
        nanosleep(&ms, NULL);
}

int posix_fallocate(int fd, off_t offset, off_t len)
{
    static int (*real)(int, off_t, off_t);
    char buf[4096];
    unsigned long long ino;
    if (!real)
        real = (int (*)(int, off_t, off_t))dlsym(RTLD_NEXT, "posix_fallocate");
    const char *name = name_of(fd, buf, sizeof buf, &ino);
    hold(name, ino);
    int rc = real(fd, offset, len);
    log_line("fallocate", name, ino);
    return rc;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    char buf[4096];
    unsigned long long ino;
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real(fd);
    log_line("fdatasync", name_of(fd, buf, sizeof buf, &ino), ino);
    return rc;
}

int fsync(int fd)
{
    static int (*real)(int);
    char buf[4096];
    unsigned long long ino;
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    log_line("fsync", name_of(fd, buf, sizeof buf, &ino), ino);
    return rc;
}

static void log_mkdir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = 0;
    const char *base = strrchr(buf, '/');
    log_line("mkdir", base ? base + 1 : buf, 0);
}

int mkdir(const char *path, mode_t mode)
{
    static int (*real)(const char *, mode_t);
    if (!real)
        real = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
    int rc = real(path, mode);
    if (rc == 0)
        log_mkdir(path);
    return rc;
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    static int (*real)(int, const char *, mode_t);
    if (!real)
        real = (int (*)(int, const char *, mode_t))dlsym(RTLD_NEXT, "mkdirat");
    int rc = real(dirfd, path, mode);
    if (rc == 0)
        log_mkdir(path);
    return rc;
}
