/* audit/_fastsend.c: fsend_append_send, write-ahead then send for C callers (fastsend.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include <time.h>

#include "fastsend.h"

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t fsend_append_send(void *writer, fsend_append_fn append, uint32_t rtype,
                           const uint8_t *const *records, const uint32_t *lens, uint32_t n,
                           uint32_t ts_source, uint32_t clock_state, int32_t fd,
                           const uint8_t *data, uint32_t dlen,
                           int64_t *seqs, int64_t *status, int32_t *err, int64_t *entered_ns)
{
    uint32_t done = 0;
    *status = 0;
    *err = 0;
    *entered_ns = 0;
    for (; done < n; done++) {
        int64_t seq = append(writer, rtype, (const char *)records[done], lens[done], clock_ns(CLOCK_REALTIME),
                             ts_source, clock_state);
        if (seq <= 0) {
            *status = seq;
            return done;                               /* write-ahead: nothing is sent */
        }
        seqs[done] = seq;
    }
    *entered_ns = clock_ns(CLOCK_MONOTONIC);
    for (uint32_t off = 0; off < dlen;) {
        ssize_t sent = send(fd, data + off, dlen - off, 0);   /* as socket.sendall */
        if (sent >= 0) {
            off += (uint32_t)sent;
        } else if (errno != EINTR) {
            *err = errno;
            break;
        }
    }
    return done;
}
