/* The writer's in-memory state, shared by journal_writer.c and its helper thread
 * (journal_ahead.c); not part of the public API.
 */
#ifndef MMJ_JOURNAL_WRITER_STATE_H
#define MMJ_JOURNAL_WRITER_STATE_H

#include <pthread.h>

#include "journal_internal.h"

/* Damage the check after open found (journal_recheck.c): trusted pair k, segment `segment`. */
typedef struct {
    int reason;                /* an mmj_reason; MMJ_R_NONE: nothing found */
    uint64_t k;
    uint64_t segment;
    uint64_t offset;
    uint64_t seq;
} mmj_damage;

struct mmj_writer {
    pthread_mutex_t mutex;     /* serialises appends from several threads (cffi drops the GIL) */
    int dirfd;
    int lockfd;
    uint8_t salt[MMJ_SALT_SIZE];
    mmj_options opt;
    mmj_map seg;               /* the segment being written */
    uint32_t salt_check;       /* K of the current segment */
    uint64_t off;              /* where the next record goes */
    uint64_t next_seq;
    uint64_t seg_data;         /* data records in the current segment */
    uint8_t anchor_hash[MMJ_HASH_SIZE];
    uint64_t anchor_off;
    /* the chain hashed ahead by the helper thread (journal_ahead.c); hash_mu also keeps the
     * current mapping alive while the helper hashes it */
    pthread_mutex_t hash_mu;
    /* keeps the current mapping alive while the helper prefaults it, and guards `prefaulted`;
     * taken after hash_mu (never the other way round), so prefaulting goes on while the append
     * thread finishes a chain hash under hash_mu at a checkpoint */
    pthread_mutex_t fault_mu;
    mmj_map retired;           /* a rolled-away segment's mapping for the helper to unmap */
    pthread_cond_t wake;       /* wakes the helper to stop */
    pthread_t helper;
    int helper_running;
    int helper_stop;
    mmj_chain_ctx chain;       /* H(anchor hash || bytes anchor_off .. hashed_off-1), unfinished */
    uint64_t hashed_off;
    uint64_t pub_off;          /* end of the published bytes of the current segment (atomic) */
    int next_fd;               /* the next segment, preallocated ahead by the helper, or -1 */
    uint64_t next_index;       /* the segment index it is meant for */
    uint8_t *next_base;        /* its mapping */
    uint64_t next_populated;   /* bytes of it from 0 faulted in for writing so far */
    int next_failed;           /* the helper could not preallocate it: the roll tries itself */
    int next_busy;             /* the helper is creating it now (hash_mu not held meanwhile) */
    int next_wanted;           /* a roll waits for that file (mmj_ahead_wait_next): keep it */
    int next_overdue;          /* a roll gave up waiting for it: later rolls do not wait again */
    int rolling;               /* a roll is between creating the next segment and starting it: w->seg
                                * is still the old one, whose successor exists already (hash_mu) */
    pthread_cond_t next_done;  /* signalled when next_busy clears */
    mmj_notify *notify;        /* wakes tailers waiting in other processes; NULL if none */
    uint64_t since_anchor;     /* data records since the anchor */
    uint64_t synced_off;       /* bytes of the current segment known to be msynced */
    int unsynced_retired;      /* pagecache mode: segments unsynced_seg .. seg.index-1 were rolled
                                * away since the last mmj_sync, without an msync */
    uint64_t unsynced_seg;
    uint64_t unsynced_from;    /* the first of them is msynced up to here already */
    uint64_t *cold;            /* sealed segments recovery found not known durable (no believed
                                * DURABLE summary): the next mmj_sync (the open, in group/sync
                                * modes) fdatasyncs them; n_cold of them, room for cap_cold */
    uint64_t n_cold;
    uint64_t cap_cold;
    uint64_t unsynced;         /* records since the last msync (group mode) */
    int64_t last_sync_ns;
    size_t page;
    uint64_t prefaulted;       /* bytes of the current segment already faulted in for writing */
    int prefault_off;          /* the kernel refused MADV_POPULATE_WRITE (before Linux 5.14) */
    int low_space;             /* ordinary appends are refused with MMJ_E_DISK_FULL */
    int reserve_ready;         /* RESERVE_NAME exists, preallocated to segment_size */
    int in_reserve;            /* the current segment was the reserve file */
    int need_roll;             /* a roll failed for lack of space: retry_space rolls */
    int failed_errno;          /* the latch's errno: a failed msync/fsync (sync_failed), damage
                                * behind a summary (EBADMSG) or a trusted segment the check could
                                * not read (check_failed) */
    int sync_failed;           /* an msync/fsync failed: nothing is msynced again */
    int check_failed;          /* the check after open could not read a trusted segment (kept
                                * failing through its retries): latched as an I/O error */
    int shut;                  /* mmj_writer_shutdown ran: every call returns MMJ_E_CLOSED */
    int last_errno;
    mmj_sync_hook sync_hook;   /* told what each msync/fsync made durable, or NULL */
    void *sync_ctx;
    /* DAMAGE BEHIND A SUMMARY (journal_recheck.c): the segments recovery did not scan, as pairs
     * (index, first sequence), n_trusted entries, checked by the recheck thread after open */
    uint64_t *trusted;
    uint64_t n_trusted;
    uint64_t cap_trusted;
    pthread_t recheck;
    int recheck_running;
    int recheck_closing;       /* atomic: a close holds the mutex and walks what is left */
    uint64_t recheck_next;     /* atomic: the next trusted pair to claim (claims go in order) */
    uint64_t recheck_damaged;  /* atomic: the lowest pair found damaged so far, UINT64_MAX none */
    mmj_damage recheck_found;  /* the check thread's first damage, read by the close after join */
    int recheck_errno;         /* atomic: errno of the first trusted segment no walk could read
                                * (after retries), 0 if none */
    int damage_reason;         /* an mmj_reason once the check found damage (latched, mutex) */
    int damage_told;           /* a call has reported the latched damage (else the close does) */
    int damage_unmarked;       /* DAMAGED could not be written yet: retry_space and close retry */
    uint64_t damage_segment;
    uint64_t damage_offset;
    uint64_t damage_seq;
    uint32_t type_size[65536];
};

#define MMJ_DAMAGED_NAME "DAMAGED"
#define MMJ_DAMAGED_ROOM_NAME "DAMAGED.room" /* the marker's room, preallocated while there is space */
#define MMJ_DAMAGED_ROOM_SIZE 4096
/* Preallocate DAMAGED.room if it is not there (best effort), so that a disk that fills up later
 * cannot refuse the marker. */
void mmj_recheck_prepare(mmj_writer *w);
/* Start the thread that checks the trusted segments (none: no thread; one that cannot be started:
 * the caller checks them all now). Returns 1 if a thread runs. */
int mmj_recheck_start(mmj_writer *w);
/* Finish the check before a close seals (caller holds the writer mutex): walk the trusted
 * segments the thread has not claimed yet alongside it, join it, and latch the first damage
 * either found (DAMAGED written). Costs the walk of what was left, at scan speed. */
void mmj_recheck_finish(mmj_writer *w);
/* Write DAMAGED for the latched damage if an earlier attempt could not (caller holds the writer
 * mutex): MMJ_OK once it exists, else the write's status. */
int mmj_recheck_mark(mmj_writer *w);
/* MMJ_OK if the journal has no DAMAGED marker; else MMJ_E_CORRUPT with the damage it names in rep
 * (reason, segment, offset, seq), or MMJ_E_IO if it cannot be read. */
int mmj_damage_read(int dirfd, mmj_recovery *rep);

/* Group mode's time budget while appends pause (called by the helper thread, holding no lock):
 * msync the published records when the oldest unsynced one is group_us old, if the writer mutex
 * is free (trylock; a failure latches as at an append). Returns 1 if it synced. */
int mmj_writer_group_tick(mmj_writer *w);
/* Initialise / destroy hash_mu and the wake condition. */
void mmj_ahead_init(mmj_writer *w);
void mmj_ahead_destroy(mmj_writer *w);
/* Start the helper thread that prefaults and hashes ahead of the appends (0 if it could not:
 * the writer then does both itself). */
int mmj_ahead_start(mmj_writer *w);
/* Stop and join the helper thread. */
void mmj_ahead_stop(mmj_writer *w);
/* Restart the chain at an anchor (offset, hash) of the current segment; caller holds hash_mu
 * or is the only thread. */
void mmj_ahead_reset(mmj_writer *w, const uint8_t *anchor_hash, uint64_t anchor_off);
/* The chain hash over [anchor, upto) of the current segment (caller holds hash_mu). */
void mmj_ahead_hash(mmj_writer *w, uint64_t upto, uint8_t *out);
/* Take the helper's preallocated file for segment `index` (caller holds hash_mu), renamed to the
 * segment's temp name: its fd (with *mapped, its mapping, and *populated, the bytes from 0
 * already faulted in), or -1. Drops one prepared for another index. */
int mmj_ahead_take_next(mmj_writer *w, uint64_t index, uint8_t **mapped, uint64_t *populated);
/* How long a roll waits for a next segment the helper is preparing before it allocates one
 * itself: far longer than a preallocation takes (milliseconds for 64 MiB), so only a helper that
 * is stuck costs a roll this and then a file of its own. */
#define MMJ_ROLL_WAIT_NS 250000000
/* Wait (hash_mu held) until the helper is not preparing a next segment, at most timeout_ns; the
 * file it finishes meanwhile is kept for mmj_ahead_take_next. 1 if it is still busy (timed out). */
int mmj_ahead_wait_next(mmj_writer *w, int64_t timeout_ns);
/* Close and delete an unused preallocated next segment (caller holds hash_mu or is alone). */
void mmj_ahead_drop_next(mmj_writer *w);
/* Prefault the current segment a window ahead of `pos` (caller holds fault_mu or is the only
 * thread). Returns 1 if it did some work. */
int mmj_ahead_prefault(mmj_writer *w, uint64_t pos);
/* Hand the old segment's mapping to the helper to unmap (the munmap of 64 MiB of page tables
 * then costs the append thread nothing); caller holds hash_mu. Unmaps at once without a helper. */
void mmj_ahead_retire(mmj_writer *w, mmj_map *old);

#endif
