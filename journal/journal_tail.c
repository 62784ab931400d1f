/* Tailers: follow a live journal from another process, one mapped segment at a time, with an
 * optional name whose position is saved atomically in tailers/<name>.pos; a journal cut back
 * behind what a tailer has read is reported, never walked past (journal.h TAILERS).
 *
 * Polls the next record's word with acquire loads; a wait with a timeout sleeps on the writer's
 * futex word (journal_notify.c) and falls back to short sleeps when the notify file cannot be
 * mapped (read-only access). Never repairs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_internal.h"

#define MMJ_TAIL_SPINS 64
#define MMJ_TAIL_SPIN_NS 0                 /* default bound of the spin before a futex sleep: none */
#define MMJ_TAIL_SLEEP_NS 20000
#define MMJ_TAIL_FUTEX_SLICE_NS 10000000   /* re-check at least this often, even without a wake */
#define MMJ_TAIL_FILE_CHECK_NS 10000000    /* while idle, look this often whether the segment was replaced */

struct mmj_tailer {
    int dirfd;
    uint8_t salt[MMJ_SALT_SIZE];
    char name[128];            /* empty for an anonymous tailer */
    mmj_map seg;               /* current segment, base NULL until one exists */
    uint32_t salt_check;
    uint64_t off;              /* next record offset in seg */
    uint64_t seq;              /* sequence expected at off */
    uint64_t first;            /* seg's first sequence */
    uint64_t prev_off;         /* offset of the record stepped over last in seg, 0 if none */
    uint64_t prev_head[2];     /* its first 16 bytes (word, crc, sequence) as they were then */
    uint64_t want;             /* the next data sequence to hand out */
    mmj_notify *notify;        /* the writer's wake-up word, NULL until it can be mapped */
    int64_t spin_max_ns;       /* bound of the spin before sleeping (mmj_tailer_set_spin) */
    int64_t gap_avg_ns;        /* moving average of how long waits lasted (0: none yet) */
    uint64_t last_head;        /* word | crc << 32 of the last data record handed out (want - 1) */
    int have_last;             /* last_head is known (handed out here, or loaded and checked) */
    int checking;              /* the record want - 1 must be found again with head last_head */
    int64_t file_check_at;     /* when to look next whether seg's file is still in the journal */
    int64_t end_check_at;      /* when to look next whether the journal goes on past seg's end */
    int stop_reason;           /* why the last call stopped with an error (mmj_tailer_stop), or 0 */
    uint64_t stop_segment, stop_offset;
};

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= 100)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return 0;
    }
    return name[0] != '.';
}

static void salt_hex(const uint8_t *salt, char *out /* 2 * MMJ_SALT_SIZE + 1 */)
{
    for (int i = 0; i < MMJ_SALT_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", salt[i]);
}

/* The saved position: "mmjpos 1 <seq>" (nothing to check), or "mmjpos 2 <seq> <journal id>
 * <head>", whose record seq - 1 is checked before anything after it is handed out. A position
 * saved in another journal (same directory name, new journal) is lost. */
static int load_position(mmj_tailer *t, uint64_t *seq)
{
    char path[256], buf[128] = {0}, id[2 * MMJ_SALT_SIZE + 1], mine[2 * MMJ_SALT_SIZE + 1];
    unsigned long long v = 0, head = 0;
    int version = 0, end = 0;
    snprintf(path, sizeof path, "%s/%s.pos", MMJ_TAILER_DIR, t->name);
    int fd = openat(t->dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MMJ_OK : MMJ_E_IO;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || sscanf(buf, "mmjpos %d %llu%n", &version, &v, &end) != 2 || v == 0)
        return MMJ_E_CORRUPT;
    if (version == 2) {
        if (v < 2 || sscanf(buf + end, " %32[0-9a-f] %16llx", id, &head) != 2 || strlen(id) != 2 * MMJ_SALT_SIZE)
            return MMJ_E_CORRUPT;
        salt_hex(t->salt, mine);
        if (strcmp(id, mine) != 0)
            return MMJ_E_POSITION_LOST;
        t->last_head = head;
        t->checking = 1;
    } else if (version != 1) {
        return MMJ_E_CORRUPT;
    }
    *seq = v;
    return MMJ_OK;
}

/* Walk the current segment again from its first record (poll_once skips what was handed out). */
static void rewind_segment(mmj_tailer *t)
{
    t->off = MMJ_HEADER_SIZE;
    t->seq = t->first;
    t->prev_off = 0;
}

/* Did the record the tailer stepped over last change since? Only a recovering writer rewrites
 * published bytes: it drops a SEAL that has no EOS after it (a crash between the two) and
 * writes its next records from the SEAL's offset, so a tailer that had stepped past the SEAL
 * points into the middle of them (it would see a bad record, or a zero word inside a payload,
 * for ever). Checked only when the tailer finds nothing valid at its position. */
static int position_stale(const mmj_tailer *t)
{
    return t->prev_off && memcmp(t->seg.base + t->prev_off, t->prev_head, sizeof t->prev_head) != 0;
}

/* Map segment `index` and check its header; MMJ_E_NOT_FOUND if it does not exist (yet). */
static int enter_segment(mmj_tailer *t, uint64_t index)
{
    mmj_map m;
    uint64_t first;
    int newer = 0;
    int rc = mmj_map_segment(t->dirfd, index, 0, &m, NULL);
    if (rc != MMJ_OK)
        return rc;
    if (mmj_header_check(&m, t->salt, &first, NULL, &newer, NULL) != MMJ_R_NONE) {
        mmj_unmap(&m);
        return newer ? MMJ_E_VERSION : MMJ_E_CORRUPT;
    }
    mmj_unmap(&t->seg);
    t->seg = m;
    t->salt_check = mmj_salt_check(t->salt, index);
    t->first = first;
    rewind_segment(t);
    return MMJ_OK;
}

/* Enter the last segment whose first sequence is <= want (or the first segment); <= want - 1
 * while that record is to be checked again. */
static int locate(mmj_tailer *t)
{
    uint64_t target = t->checking ? t->want - 1 : t->want;
    uint64_t *idx = NULL;
    size_t n = 0;
    int rc = mmj_list_segments(t->dirfd, &idx, &n, NULL);
    if (rc != MMJ_OK)
        return rc;
    if (n == 0) {
        free(idx);
        return MMJ_E_NOT_FOUND;
    }
    if (idx[0] != 0) {   /* segment 0 is missing: the records before the others are lost */
        free(idx);
        return MMJ_E_CORRUPT;
    }
    size_t pick = 0;
    for (size_t i = 0; i < n && idx[i] == i; i++) {   /* nothing past a missing segment */
        mmj_map m;
        uint64_t first;
        int newer = 0;
        if (mmj_map_segment(t->dirfd, idx[i], 0, &m, NULL) != MMJ_OK)
            break;
        int bad = mmj_header_check(&m, t->salt, &first, NULL, &newer, NULL);
        mmj_unmap(&m);
        if (bad != MMJ_R_NONE || first > target)
            break;
        pick = i;
    }
    rc = enter_segment(t, idx[pick]);
    free(idx);
    return rc;
}

int mmj_tailer_open(const char *dir, const char *name, uint64_t from_seq, mmj_tailer **out, int *err)
{
    if (err)
        *err = 0;
    if (!dir || !out || (name && !valid_name(name)))
        return MMJ_E_ARG;
    *out = NULL;
    mmj_tailer *t = calloc(1, sizeof *t);
    if (t)
        t->spin_max_ns = MMJ_TAIL_SPIN_NS;
    if (!t)
        return MMJ_E_NOMEM;
    int rc = mmj_open_dir(dir, &t->dirfd, err);
    if (rc != MMJ_OK) {
        free(t);
        return rc;
    }
    rc = mmj_meta_read(t->dirfd, t->salt, err);
    if (name)
        snprintf(t->name, sizeof t->name, "%s", name);
    t->want = from_seq ? from_seq : 1;
    if (rc == MMJ_OK && name && !from_seq)
        rc = load_position(t, &t->want);
    if (rc == MMJ_OK) {
        rc = locate(t);
        if (rc == MMJ_E_NOT_FOUND)
            rc = MMJ_OK;   /* no segment yet: next() keeps looking */
    }
    if (rc != MMJ_OK) {
        mmj_tailer_close(t);
        return rc;
    }
    *out = t;
    return MMJ_OK;
}

void mmj_tailer_close(mmj_tailer *t)
{
    if (!t)
        return;
    mmj_unmap(&t->seg);
    mmj_notify_unmap(t->notify);
    close(t->dirfd);
    free(t);
}

uint64_t mmj_tailer_position(const mmj_tailer *t)
{
    return t ? t->want : 0;
}

void mmj_tailer_stop(const mmj_tailer *t, int32_t *reason, uint64_t *segment, uint64_t *offset)
{
    *reason = t ? t->stop_reason : MMJ_R_NONE;
    *segment = t ? t->stop_segment : 0;
    *offset = t ? t->stop_offset : 0;
}

/* Check the last record handed out again from here on (journal.h TAILERS): from the start of
 * the current mapping if its bytes were rewritten in place and it holds that record, else from
 * the journal's segment that holds it now (`replaced`: the mapped file left the journal). */
static int recheck(mmj_tailer *t, int replaced)
{
    t->checking = t->have_last;
    if (!replaced && (!t->have_last || t->want - 1 >= t->first)) {
        rewind_segment(t);
        return MMJ_OK;
    }
    int rc = locate(t);
    if (rc == MMJ_E_NOT_FOUND)
        return t->checking ? MMJ_E_POSITION_LOST : MMJ_AGAIN;
    return rc;
}

/* While idle, at most every MMJ_TAIL_FILE_CHECK_NS: is the mapped segment still the journal's
 * file of that name? A writer's recovery removes (or moves to discarded/) the segments it cuts
 * off; a tailer left in one would wait on its old bytes for ever. */
static int segment_replaced(mmj_tailer *t)
{
    int64_t now = mmj_now_ns();
    if (now < t->file_check_at)
        return 0;
    t->file_check_at = now + MMJ_TAIL_FILE_CHECK_NS;
    char name[64];
    struct stat st;
    mmj_segment_name(name, sizeof name, t->seg.index, 0);
    if (fstatat(t->dirfd, name, &st, 0) != 0)
        return errno == ENOENT;
    return (uint64_t)st.st_ino != t->seg.ino || (uint64_t)st.st_dev != t->seg.dev;
}

/* The error `status` of a stop at (segment, offset) for `reason`, kept for mmj_tailer_stop. */
static int stop_at(mmj_tailer *t, int status, int reason, uint64_t segment, uint64_t offset)
{
    t->stop_reason = reason;
    t->stop_segment = segment;
    t->stop_offset = offset;
    return status;
}

/* Time to look whether the journal goes on past where the tailer waits? At most every
 * MMJ_TAIL_FILE_CHECK_NS while idle (a directory listing), at every call once a look found a gap
 * (the error stands until the gap is gone). */
static int end_check_due(mmj_tailer *t)
{
    int64_t now = mmj_now_ns();
    if (!t->stop_reason && now < t->end_check_at)
        return 0;
    t->end_check_at = now + MMJ_TAIL_FILE_CHECK_NS;
    return 1;
}

/* The tailer read EOS at t->off (record size eos) and segment seg+1 is not there: MMJ_AGAIN at the
 * journal's end (or when seg+1 appeared meanwhile: the next look enters it), MMJ_E_SEGMENTS_MISSING
 * when a later segment exists or LOCK names another end (journal.h THE END OF THE JOURNAL). */
static int sealed_end(mmj_tailer *t, uint64_t eos)
{
    if (!end_check_due(t))
        return MMJ_AGAIN;
    uint64_t seal_size = mmj_pad8(MMJ_RECORD_HEADER_SIZE + MMJ_CONTROL_PAYLOAD);
    const uint8_t *seal = t->seg.base + t->off + eos - seal_size;   /* the SEAL's payload: its hash */
    int grown = 0;
    uint64_t missing = 0;
    int rc = mmj_end_after_sealed(t->dirfd, t->seg.index, t->seq, seal, &grown, &missing);
    if (rc != MMJ_OK)
        return rc;
    if (missing)
        return stop_at(t, MMJ_E_SEGMENTS_MISSING, MMJ_R_MISSING_SEGMENT, missing, 0);
    t->stop_reason = MMJ_R_NONE;
    return MMJ_AGAIN;
}

/* Nothing at t->off of unsealed segment seg: MMJ_AGAIN at the live end; 1 when the journal goes on
 * after seg and a record is at t->off now (a roll sealed seg meanwhile: look again); MMJ_E_CORRUPT
 * (MMJ_R_NO_EOS) when it goes on and seg still ends there: damage, never waited on for ever. */
static int unsealed_end(mmj_tailer *t)
{
    if (!end_check_due(t))
        return MMJ_AGAIN;
    int continues = 0;
    int rc = mmj_end_after_unsealed(t->dirfd, t->seg.index, &continues);
    if (rc != MMJ_OK)
        return rc;
    if (!continues) {
        t->stop_reason = MMJ_R_NONE;
        return MMJ_AGAIN;
    }
    if (mmj_record_check(t->seg.base, t->seg.size, t->off, t->salt_check, t->seq, NULL) != 0)
        return 1;
    return stop_at(t, MMJ_E_CORRUPT, MMJ_R_NO_EOS, t->seg.index, t->off);
}

/* One look at the journal: MMJ_OK with a record, MMJ_AGAIN when nothing new, or an error. */
static int poll_once(mmj_tailer *t, mmj_record *out)
{
    if (!t->seg.base) {
        int rc = locate(t);
        if (rc == MMJ_E_NOT_FOUND)
            return t->checking ? MMJ_E_POSITION_LOST : MMJ_AGAIN;
        if (rc != MMJ_OK)
            return rc;
    }
    for (int rewound = 0;;) {
        int size = mmj_record_check(t->seg.base, t->seg.size, t->off, t->salt_check, t->seq, out);
        if (size <= 0) {
            /* nothing valid here: if the bytes behind the position were rewritten, or the
             * segment's file is gone from the journal, look again for the last record handed
             * out (once per call) */
            int stale = !rewound && position_stale(t);
            int replaced = !rewound && !stale && size == 0 && !t->checking && segment_replaced(t);
            if (stale || replaced) {
                rewound = 1;
                int rc = recheck(t, replaced);
                if (rc != MMJ_OK)
                    return rc;
                continue;
            }
            if (size == 0 && t->checking)
                return MMJ_E_POSITION_LOST;   /* the journal ends before the record handed out */
            if (size < 0)
                return stop_at(t, MMJ_E_CORRUPT, -size, t->seg.index, t->off);
            int rc = unsealed_end(t);
            if (rc == 1)
                continue;   /* sealed meanwhile: that record is read now */
            return rc;
        }
        if (out->flags & MMJ_FLAG_EOS) {
            int rc = enter_segment(t, t->seg.index + 1);
            if (rc == MMJ_OK)
                return poll_once(t, out);
            if (rc == MMJ_E_CORRUPT)
                return stop_at(t, rc, MMJ_R_BAD_HEADER, t->seg.index + 1, 0);
            if (rc != MMJ_E_NOT_FOUND)
                return rc;
            if (t->checking)
                return MMJ_E_POSITION_LOST;   /* the journal ends before the record handed out */
            if (!rewound && segment_replaced(t)) {   /* a sealed segment a recovery cut off */
                rewound = 1;
                rc = recheck(t, 1);
                if (rc != MMJ_OK)
                    return rc;
                continue;
            }
            return sealed_end(t, (uint64_t)size);
        }
        t->prev_off = t->off;
        memcpy(t->prev_head, t->seg.base + t->off, sizeof t->prev_head);
        t->off += (uint64_t)size;
        if (out->flags & MMJ_FLAG_CONTROL)
            continue;
        t->seq++;
        if (out->seq < t->want) {
            if (t->checking && out->seq == t->want - 1) {
                if (t->prev_head[0] != t->last_head)
                    return MMJ_E_POSITION_LOST;   /* another record now has that sequence */
                t->checking = 0;
                t->have_last = 1;
            }
            continue;
        }
        if (t->checking)
            return MMJ_E_POSITION_LOST;   /* cannot happen: sequences have no gaps */
        out->segment = t->seg.index;
        t->stop_reason = MMJ_R_NONE;
        t->want = out->seq + 1;
        t->last_head = t->prev_head[0];
        t->have_last = 1;
        return MMJ_OK;
    }
}

static int tailer_wait(mmj_tailer *t, int64_t start, int64_t deadline, mmj_record *out);

int mmj_tailer_set_spin(mmj_tailer *t, int64_t max_ns)
{
    if (!t)
        return MMJ_E_CLOSED;
    if (max_ns < 0)
        return MMJ_E_ARG;
    t->spin_max_ns = max_ns;
    return MMJ_OK;
}

/* How long a wait spins before it sleeps: the bound while recent waits averaged at most the
 * bound (records come often enough that the spin covers the gap and catches them without a
 * wake-up's latency; a spin that ends just before the record arrives only adds its sleep's
 * wake-up), else nothing beyond the first few polls (records come rarely: spinning would only
 * burn the CPU). */
static int64_t spin_budget(const mmj_tailer *t)
{
    return t->spin_max_ns && t->gap_avg_ns <= t->spin_max_ns ? t->spin_max_ns : 0;
}

/* A wait that began at `start` ended (with a record or not): update the average (1/8 weight). */
static void waited(mmj_tailer *t, int64_t start)
{
    int64_t took = mmj_now_ns() - start;
    if (took > 8 * t->spin_max_ns)
        took = 8 * t->spin_max_ns;   /* one long pause should not switch spinning off for long */
    t->gap_avg_ns = t->gap_avg_ns ? t->gap_avg_ns + (took - t->gap_avg_ns) / 8 : took;
}

int mmj_tailer_next(mmj_tailer *t, int64_t timeout_ns, mmj_record *out)
{
    if (!t)
        return MMJ_E_CLOSED;
    if (!out)
        return MMJ_E_ARG;
    int rc = poll_once(t, out);
    if (rc != MMJ_AGAIN || timeout_ns <= 0)
        return rc;
    int64_t start = mmj_now_ns();
    rc = tailer_wait(t, start, start + timeout_ns, out);
    if (rc == MMJ_OK || rc == MMJ_AGAIN)
        waited(t, start);
    return rc;
}

/* Wait for the next record until deadline: poll, spin within the budget, then sleep on the
 * writer's futex word. */
static int tailer_wait(mmj_tailer *t, int64_t start, int64_t deadline, mmj_record *out)
{
    int64_t spin_until = start + spin_budget(t);
    for (int spins = 0;; spins++) {
        int rc = poll_once(t, out);
        if (rc != MMJ_AGAIN)
            return rc;
        int64_t now = mmj_now_ns();
        if (now >= deadline)
            return MMJ_AGAIN;
        if (spins < MMJ_TAIL_SPINS || now < spin_until) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();   /* a spinning poll that leaves the sibling thread room */
#endif
            continue;
        }
        if (!t->notify)
            t->notify = mmj_notify_map(t->dirfd, 0);
        if (!t->notify) {
            struct timespec ts = {0, MMJ_TAIL_SLEEP_NS};
            nanosleep(&ts, NULL);
            continue;
        }
        /* register, look once more (a record published before the writer saw us), then sleep */
        uint32_t epoch;
        uint32_t seen = mmj_notify_enter(t->notify, &epoch);
        rc = poll_once(t, out);
        if (rc == MMJ_AGAIN) {
            int64_t left = deadline - mmj_now_ns();
            if (left > MMJ_TAIL_FUTEX_SLICE_NS)
                left = MMJ_TAIL_FUTEX_SLICE_NS;
            if (left > 0)
                mmj_notify_wait(t->notify, seen, left);
        }
        mmj_notify_leave(t->notify, epoch);
        if (rc != MMJ_AGAIN)
            return rc;
    }
}

int mmj_tailer_commit(mmj_tailer *t)
{
    if (!t)
        return MMJ_E_CLOSED;
    if (!t->name[0])
        return MMJ_E_ARG;
    char path[256], buf[128];
    if (mkdirat(t->dirfd, MMJ_TAILER_DIR, 0755) == 0) {
        if (fsync(t->dirfd) != 0)   /* the new name must survive before a position is renamed in */
            return MMJ_E_IO;
    } else if (errno != EEXIST) {
        return MMJ_E_IO;
    }
    int sub = openat(t->dirfd, MMJ_TAILER_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sub < 0)
        return MMJ_E_IO;
    snprintf(path, sizeof path, "%s.pos", t->name);
    int n;
    if (t->have_last || t->checking) {   /* checking: the loaded head, not yet found again */
        char id[2 * MMJ_SALT_SIZE + 1];
        salt_hex(t->salt, id);
        n = snprintf(buf, sizeof buf, "mmjpos 2 %llu %s %016llx\n", (unsigned long long)t->want, id,
                     (unsigned long long)t->last_head);
    } else {
        n = snprintf(buf, sizeof buf, "mmjpos 1 %llu\n", (unsigned long long)t->want);
    }
    int rc = mmj_write_atomic(sub, path, buf, (size_t)n, NULL);
    close(sub);
    return rc;
}
