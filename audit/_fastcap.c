/* Busy-poll reads of a timestamped datagram socket: see fastcap.h for the contract. */
#define _GNU_SOURCE
#include "fastcap.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD 37
#endif
#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW 65
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

#define NS 1000000000LL

static int64_t clock_ns(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (int64_t)t.tv_sec * NS + t.tv_nsec;
}

/* List the control messages and pick the stamp as audit/capture.py's stamp_from_ancillary does. */
static void take_stamp(struct fcap_reader *r, struct msghdr *m)
{
    int decided = 0;
    r->ncmsg = 0;
    r->source = FCAP_SRC_USER;
    r->stamp_ns = r->user_ns;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL && r->ncmsg < FCAP_MAX_CMSG; c = CMSG_NXTHDR(m, c)) {
        const uint8_t *data = CMSG_DATA(c);
        int32_t length = (int32_t)(c->cmsg_len - (size_t)(data - (const uint8_t *)c));
        r->cmsgs[r->ncmsg++] = (struct fcap_cmsg){c->cmsg_level, c->cmsg_type, (int32_t)(data - r->ctl), length};
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && length >= 4) {
            memcpy(&r->drops, data, sizeof r->drops);   /* the socket's drops when it was queued */
            continue;
        }
        if (decided || c->cmsg_level != SOL_SOCKET ||
            (c->cmsg_type != SO_TIMESTAMPING_OLD && c->cmsg_type != SO_TIMESTAMPING_NEW))
            continue;
        if (length != 6 * (int32_t)sizeof(int64_t)) {
            /* another layout before any decision: the caller decodes (and refuses) it */
            r->source = FCAP_SRC_UNDECIDED;
            r->stamp_ns = 0;
            decided = 1;
            continue;
        }
        int64_t ts[6];
        memcpy(ts, data, sizeof ts);   /* sw sec, nsec; legacy sec, nsec; hw sec, nsec */
        if (r->hardware && (ts[4] || ts[5])) {
            r->source = FCAP_SRC_HW_PHC;
            r->stamp_ns = ts[4] * NS + ts[5];
            decided = 1;
        } else if (ts[0] || ts[1]) {
            r->source = FCAP_SRC_SW_KERNEL;
            r->stamp_ns = ts[0] * NS + ts[1];
            decided = 1;
        }
    }
}

/* One recvmsg: 1 a datagram (outputs set), 0 none waiting, -1 EINTR, -2 another error (err). */
static int read_one(struct fcap_reader *r)
{
    struct sockaddr_in from;
    struct iovec v = {r->buf, (size_t)r->bufsize};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &v, .msg_iovlen = 1,
                       .msg_control = r->ctl, .msg_controllen = sizeof r->ctl};
    r->reads++;
    r->unpolled++;
    ssize_t n = recvmsg(r->fd, &m, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == EINTR)
            return -1;
        r->err = errno;
        return -2;
    }
    r->user_ns = clock_ns(CLOCK_REALTIME);
    r->length = n;
    r->family = m.msg_namelen >= sizeof(sa_family_t) ? from.sin_family : AF_UNSPEC;
    r->addr = r->family == AF_INET ? from.sin_addr.s_addr : 0;
    r->port = r->family == AF_INET ? ntohs(from.sin_port) : 0;
    take_stamp(r, &m);
    return 1;
}

/* A zero-timeout poll of the socket and the watched descriptors: 1 something to report
 * (revents set), 0 nothing, -1 EINTR, -2 another error (err). */
static int poll_watched(struct fcap_reader *r)
{
    struct pollfd p[FCAP_MAX_WATCH + 1];
    p[0] = (struct pollfd){r->fd, POLLIN, 0};
    for (int i = 0; i < r->nwatch; i++)
        p[i + 1] = (struct pollfd){r->watch[i], POLLIN, 0};
    r->polls++;
    r->unpolled = 0;
    if (poll(p, (nfds_t)r->nwatch + 1, 0) < 0) {
        if (errno == EINTR)
            return -1;
        r->err = errno;
        return -2;
    }
    int report = 0;
    for (int i = 0; i <= r->nwatch; i++) {
        /* a closed watched descriptor is no event (epoll forgets one); the socket's own POLLIN is
         * the next read's datagram, its POLLERR the error queue, which the caller drains */
        short seen = p[i].revents & ~POLLNVAL;
        r->revents[i] = seen;
        if (i == 0)
            seen &= ~POLLIN;
        report |= seen != 0;
    }
    return report;
}

int fcap_wait(struct fcap_reader *r, int64_t deadline_ns)
{
    if (r->nwatch < 0 || r->nwatch > FCAP_MAX_WATCH || r->bufsize <= 0 || r->buf == NULL || r->poll_every < 1)
        return FCAP_BAD_ARGS;
    for (;;) {
        int polled = 0;
        if (r->unpolled >= (uint32_t)r->poll_every) {
            /* also while datagrams keep coming: the watched descriptors are never starved */
            int p = poll_watched(r);
            if (p != 0)
                return p > 0 ? FCAP_READY : p == -1 ? FCAP_INTERRUPTED : FCAP_ERROR;
            polled = 1;
        }
        int got = read_one(r);
        if (got != 0)
            return got > 0 ? FCAP_PACKET : got == -1 ? FCAP_INTERRUPTED : FCAP_ERROR;
        if (clock_ns(CLOCK_MONOTONIC) >= deadline_ns) {
            int p = polled ? 0 : poll_watched(r);
            return p == 0 ? FCAP_DEADLINE : p > 0 ? FCAP_READY : p == -1 ? FCAP_INTERRUPTED : FCAP_ERROR;
        }
    }
}
