/* vclock: a virtual CLOCK_REALTIME for one ptp4l process (LD_PRELOAD), so that a plain ptp4l
 * client (its servo steering the clock, port SLAVE) can run in the PTP lab without adjusting the
 * machine's clock, which every namespace shares.
 *
 * The virtual clock is the real CLOCK_REALTIME plus an offset that ptp4l's own adjustments move:
 * clock_adjtime(CLOCK_REALTIME) never reaches the kernel (ADJ_FREQUENCY / ADJ_TICK set the
 * virtual frequency, ADJ_SETOFFSET steps the virtual offset, status/error fields are dropped; a
 * read returns the virtual values), clock_gettime(CLOCK_REALTIME) and the software timestamps
 * recvmsg() hands back (SO_TIMESTAMPING, SO_TIMESTAMPNS) carry the offset. A test moves the clock
 * (a jump) by renaming a file holding a signed ns count onto $VCLOCK_STEP_FILE; it is applied at
 * the next recvmsg and deleted. On load it creates $VCLOCK_MARK, so a test knows it is in force.
 * Single-threaded, as ptp4l is.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define TOLERANCE (500 << 16)           /* what the kernel reports: 500 ppm, scaled by 2^16 */

typedef int (*gettime_fn)(clockid_t, struct timespec *);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);

static gettime_fn real_gettime;         /* glibc's clock_gettime */
static recvmsg_fn real_recvmsg;         /* glibc's recvmsg */
static long long base_ns;               /* virtual - real, as of mark_ns */
static long long mark_ns;               /* CLOCK_MONOTONIC when base_ns was last brought forward */
static long v_freq;                     /* virtual timex.freq (ppm scaled by 2^16) */
static long v_tick;                     /* virtual timex.tick (us per kernel tick) */
static long nominal_tick;               /* 1e6 / USER_HZ, as ptp4l computes it */
static long hz;                         /* USER_HZ */
static const char *step_file;           /* $VCLOCK_STEP_FILE, or NULL */

__attribute__((constructor)) static void vclock_init(void)
{
	const char *mark = getenv("VCLOCK_MARK");
	struct timespec t;
	int fd;

	real_gettime = (gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
	real_recvmsg = (recvmsg_fn)dlsym(RTLD_NEXT, "recvmsg");
	hz = sysconf(_SC_CLK_TCK);
	nominal_tick = (1000000 + hz / 2) / hz;
	v_tick = nominal_tick;
	step_file = getenv("VCLOCK_STEP_FILE");
	real_gettime(CLOCK_MONOTONIC, &t);
	mark_ns = t.tv_sec * NS_PER_S + t.tv_nsec;
	if (mark && (fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0)
		close(fd);
}

/* The virtual frequency offset in ppb: timex.freq plus the tick's share, as ptp4l splits it. */
static double ppb(void)
{
	return v_freq / 65.536 + 1e3 * hz * (v_tick - nominal_tick);
}

static long long mono_ns(void)
{
	struct timespec t;

	real_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * NS_PER_S + t.tv_nsec;
}

/* virtual - real now; with fold set, also make now the new mark (before a frequency change). */
static long long offset_ns(int fold)
{
	long long now = mono_ns();
	long long off = base_ns + (long long)(ppb() * (double)(now - mark_ns) / 1e9);

	if (fold) {
		base_ns = off;
		mark_ns = now;
	}
	return off;
}

static void shift(struct timespec *ts, long long ns)
{
	long long total = ts->tv_sec * NS_PER_S + ts->tv_nsec + ns;

	ts->tv_sec = total / NS_PER_S;
	ts->tv_nsec = total % NS_PER_S;
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += NS_PER_S;
		ts->tv_sec -= 1;
	}
}

/* A step a test asked for: the file's signed ns count joins the offset; the file is removed. */
static void take_step(void)
{
	long long ns;
	FILE *fh;

	if (!step_file || !(fh = fopen(step_file, "r")))
		return;
	if (fscanf(fh, "%lld", &ns) == 1)
		base_ns += ns;
	fclose(fh);
	unlink(step_file);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = real_gettime(id, ts);

	if (rc == 0 && id == CLOCK_REALTIME)
		shift(ts, offset_ns(0));
	return rc;
}

int clock_adjtime(clockid_t id, struct timex *tx)
{
	long long step;

	if (id != CLOCK_REALTIME) {
		int (*real)(clockid_t, struct timex *) = dlsym(RTLD_NEXT, "clock_adjtime");
		return real(id, tx);
	}
	if (tx->modes & (ADJ_FREQUENCY | ADJ_TICK))
		offset_ns(1);
	if (tx->modes & ADJ_FREQUENCY)
		v_freq = tx->freq;
	if (tx->modes & ADJ_TICK)
		v_tick = tx->tick;
	if (tx->modes & ADJ_SETOFFSET) {
		step = tx->time.tv_sec * NS_PER_S +
		       (tx->modes & ADJ_NANO ? tx->time.tv_usec : tx->time.tv_usec * 1000LL);
		base_ns += step;
	}
	tx->freq = v_freq;
	tx->tick = v_tick;
	tx->tolerance = TOLERANCE;
	tx->status = 0;
	return TIME_OK;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t n = real_recvmsg(fd, msg, flags);
	struct cmsghdr *cm;
	struct timespec *ts;
	long long off;

	if (n < 0 || !msg->msg_control)
		return n;
	take_step();
	off = offset_ns(0);
	for (cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type != SO_TIMESTAMPING && cm->cmsg_type != SO_TIMESTAMPNS)
			continue;
		ts = (struct timespec *)CMSG_DATA(cm);
		if (ts->tv_sec || ts->tv_nsec)     /* ts[0]: the software stamp */
			shift(ts, off);
	}
	return n;
}
