/* Busy-poll reads of a timestamped datagram socket, in C (audit/_fastcap.c).
 *
 * fcap_wait() spins on recvmsg(MSG_DONTWAIT) of one AF_INET datagram socket with SO_TIMESTAMPING
 * on, and returns as soon as a datagram is read (its bytes, RX stamp and the stamp's source, the
 * sender), another watched descriptor is ready (a zero-timeout poll() every `poll_every` reads,
 * the spinning socket's own error queue included), or a CLOCK_MONOTONIC deadline passes. It never
 * blocks and takes no lock: called through cffi, the GIL is released while it spins.
 *
 * The stamp follows audit/capture.py's stamp_from_ancillary exactly: the control messages in
 * order, the first SCM_TIMESTAMPING(_NEW) one that carries a stamp decides, its raw NIC hardware
 * stamp (ts[2], when `hardware`) before the kernel's software stamp (ts[0]); with none, user-space
 * CLOCK_REALTIME taken right after the syscall returned. A payload that is not the 64-bit layout
 * (48 bytes) met before any decision leaves the source FCAP_SRC_UNDECIDED: the caller decodes the
 * control messages listed in cmsgs[] (that layout never comes on a 64-bit kernel). With SO_RXQ_OVFL
 * on the socket, the kernel's drop count a datagram carries is kept in `drops`.
 */
#ifndef MMAUDIT_FASTCAP_H
#define MMAUDIT_FASTCAP_H

#include <stdint.h>

/* return codes of fcap_wait */
#define FCAP_DEADLINE 0        /* the deadline passed with nothing read and nothing ready */
#define FCAP_PACKET 1          /* a datagram was read: length, stamp, source, sender, cmsgs */
#define FCAP_READY 2           /* a watched descriptor (or the socket's error queue) is ready: revents */
#define FCAP_INTERRUPTED 3     /* a syscall returned EINTR: back to the caller, who may have signals to run */
#define FCAP_ERROR (-1)        /* recvmsg or poll failed: err holds errno */
#define FCAP_BAD_ARGS (-2)     /* nwatch, bufsize or poll_every out of range, or no buffer */

/* stamp sources: the values of journal.catalogue.TsSource */
#define FCAP_SRC_UNDECIDED 0   /* a control message not in the 64-bit layout: the caller decides */
#define FCAP_SRC_HW_PHC 1      /* raw NIC hardware stamp (PHC time) */
#define FCAP_SRC_SW_KERNEL 2   /* the kernel's software stamp (CLOCK_REALTIME) */
#define FCAP_SRC_USER 3        /* CLOCK_REALTIME after recvmsg returned: no stamp came */

#define FCAP_MAX_WATCH 8       /* watched descriptors besides the socket itself */
#define FCAP_CTL_SIZE 512      /* control buffer: as audit/capture.py's ANCILLARY_BUFSIZE */
#define FCAP_MAX_CMSG 32       /* control messages listed (512 bytes hold at most 32 headers) */

struct fcap_cmsg {
    int32_t level;             /* cmsg_level */
    int32_t type;              /* cmsg_type */
    int32_t offset;            /* where its payload starts in ctl */
    int32_t length;            /* its payload's bytes */
};

/* One reader: set the inputs once (and nwatch/watch when the watched set changes); each call
 * overwrites the outputs. `unpolled` carries the poll cadence from one call to the next. */
struct fcap_reader {
    int32_t fd;                          /* the AF_INET datagram socket spun on */
    int32_t hardware;                    /* 1: prefer the raw hardware stamp when present */
    int32_t poll_every;                  /* poll the watched descriptors every this many reads (>= 1) */
    int32_t nwatch;                      /* entries of watch[] in use (0 .. FCAP_MAX_WATCH) */
    int32_t watch[FCAP_MAX_WATCH];       /* other descriptors watched for POLLIN (negative: skipped) */
    uint8_t *buf;                        /* where a datagram's bytes go */
    int64_t bufsize;                     /* its size (> 0); a longer datagram is cut, as recvmsg cuts it */
    int64_t length;                      /* OUT FCAP_PACKET: the datagram's bytes in buf */
    int64_t stamp_ns;                    /* OUT FCAP_PACKET: its stamp, ns (0 when undecided) */
    int64_t user_ns;                     /* OUT FCAP_PACKET: CLOCK_REALTIME right after recvmsg */
    int32_t source;                      /* OUT FCAP_PACKET: FCAP_SRC_* of stamp_ns */
    uint32_t addr;                       /* OUT FCAP_PACKET: the sender's IPv4 address, network order */
    int32_t port;                        /* OUT FCAP_PACKET: the sender's port */
    int32_t family;                      /* OUT FCAP_PACKET: the sender address's family */
    int32_t err;                         /* OUT FCAP_ERROR: errno */
    int32_t ncmsg;                       /* OUT FCAP_PACKET: entries of cmsgs[] */
    struct fcap_cmsg cmsgs[FCAP_MAX_CMSG];   /* OUT FCAP_PACKET: the control messages, in order */
    int32_t revents[FCAP_MAX_WATCH + 1]; /* OUT FCAP_READY: poll revents of the socket, then of watch[i] */
    uint32_t unpolled;                   /* reads since the last poll (state kept between calls) */
    uint64_t reads;                      /* OUT, cumulative: recvmsg calls made */
    uint64_t polls;                      /* OUT, cumulative: poll calls made */
    uint32_t drops;                      /* OUT, kept: the socket's drop count (SO_RXQ_OVFL) the last
                                          * datagram that carried one carried (0: none yet) */
    uint8_t ctl[FCAP_CTL_SIZE];          /* OUT FCAP_PACKET: the control data the cmsgs point into */
};

/* Spin until a datagram is read, a watched descriptor is ready or CLOCK_MONOTONIC reaches
 * deadline_ns; at least one read and, when nothing was read, one poll, even with a past deadline.
 * r: the reader (inputs set; outputs written, see above). deadline_ns: CLOCK_MONOTONIC, ns.
 * Returns one of FCAP_DEADLINE, FCAP_PACKET, FCAP_READY, FCAP_INTERRUPTED, FCAP_ERROR, FCAP_BAD_ARGS.
 * POLLIN alone on the spinning socket is not "ready" (the next read takes that datagram), POLLNVAL
 * on a watched descriptor is ignored (a closed descriptor: epoll would have forgotten it). */
int fcap_wait(struct fcap_reader *r, int64_t deadline_ns);

#endif
