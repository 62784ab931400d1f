/* Internal declarations shared by the journal's C files; not part of the public API.
 *
 * Owns the in-memory record header layout and helper signatures. Callers outside these files
 * use journal.h only.
 */
#ifndef MMJ_JOURNAL_INTERNAL_H
#define MMJ_JOURNAL_INTERNAL_H

#include "journal.h"

#define MMJ_META_NAME "journal.meta"
#define MMJ_LOCK_NAME "LOCK"
#define MMJ_RESERVE_NAME "reserve.mmj"
#define MMJ_RESERVE_TMP "reserve.mmj.tmp"
#define MMJ_NOTIFY_NAME "notify"
#define MMJ_NEXT_TMP "next.mmj.tmp"
#define MMJ_NOTIFY_SIZE 4096
#define MMJ_TAILER_DIR "tailers"
#define MMJ_META_SIZE 64
#define MMJ_SPARSE_EVERY 64
#define MMJ_DEFAULT_SEGMENT_SIZE (64ull << 20)
#define MMJ_DEFAULT_GROUP_RECORDS 64
#define MMJ_DEFAULT_GROUP_US 1000
#define MMJ_DEFAULT_CHECKPOINT_EVERY 4096
#define MMJ_ROW_HEADER 20
#define MMJ_PREFETCH_AHEAD 1024   /* bytes ahead of a sequential record walk to prefetch */

/* The 32-byte record header exactly as on disk (journal.h RECORD). */
typedef struct mmj_rec_hdr {
    uint32_t word;
    uint32_t crc;
    uint64_t seq;
    int64_t ts_ns;
    uint16_t rtype;
    uint8_t ts_source;
    uint8_t clock_state;
    uint32_t salt_check;
} mmj_rec_hdr;

_Static_assert(sizeof(mmj_rec_hdr) == MMJ_RECORD_HEADER_SIZE, "record header is 32 bytes");

/* A mapped segment file. */
typedef struct mmj_map {
    uint8_t *base;
    uint64_t size;
    uint64_t index;
    uint64_t populated;        /* bytes from 0 known faulted in for writing (writer only) */
    uint32_t version;          /* the header's format version (writer only) */
    uint64_t dev, ino;         /* the file mapped (a tailer checks its name still refers to it) */
} mmj_map;

uint64_t mmj_pad8(uint64_t n);
/* Append value to the growable array *items (n used, cap allocated); MMJ_E_NOMEM if it cannot grow. */
int mmj_push_u64(uint64_t **items, uint64_t *n, uint64_t *cap, uint64_t value);
/* crc32c(seed, prefix as 4 little-endian bytes || rest[0..len)): a record's CRC (journal.h RECORD),
 * its word as the prefix; inline instructions when len % 8 == 0 and rest is 8-aligned. */
uint32_t mmj_crc32c_prefixed(uint32_t seed, uint32_t prefix, const void *rest, size_t len);
/* For each of n blocks at first + r * stride: store mmj_crc32c_prefixed(seed, prefix, block + skip,
 * len) at block + crc_at (several blocks' chains interleaved). */
void mmj_crc32c_blocks(uint32_t seed, uint32_t prefix, uint8_t *first, size_t stride, size_t skip, size_t len,
                       size_t n, size_t crc_at);
void mmj_segment_name(char *buf, size_t cap, uint64_t index, int tmp);
uint32_t mmj_salt_check(const uint8_t *salt, uint64_t index);
void mmj_genesis(const uint8_t *salt, uint8_t *out);

/* BLAKE2b internals for the chain's lanes (blake2b.c): a parameter block with a 16-byte
 * personalisation, and one compression of a 128-byte block at byte counter t. */
void mmj_blake2b_init_person(mmj_blake2b_ctx *ctx, const uint8_t *person);
void mmj_blake2b_compress_block(uint64_t h[8], const uint8_t block[128], uint64_t t, int last);

/* The chain's running hash H(anchor hash || bytes ...) of a segment of format `version`
 * (chain.c; journal.h HASH CHAIN). */
#define MMJ_CHAIN_LANES 8
typedef struct mmj_chain_ctx {
    uint32_t version;
    uint64_t total;                            /* bytes fed, the anchor hash included */
    mmj_blake2b_ctx v1;                        /* version 1 */
    uint64_t lane_h[8][MMJ_CHAIN_LANES];       /* version 2: state word i of lane l at [i][l] */
    uint64_t stripes;                          /* stripes through the lanes so far */
    uint8_t buf[2 * MMJ_CHAIN_LANES * 128];    /* bytes not yet through the lanes */
    size_t buffered;
} mmj_chain_ctx;
void mmj_chain_init(mmj_chain_ctx *c, uint32_t version, const uint8_t *anchor_hash);
void mmj_chain_update(mmj_chain_ctx *c, const void *data, size_t len);
/* The hash so far; the state goes on. */
void mmj_chain_final(const mmj_chain_ctx *c, uint8_t *out);
void mmj_chain_link(uint32_t version, const uint8_t *anchor_hash, const uint8_t *bytes, uint64_t len, uint8_t *out);
int mmj_fsync_dir(int dirfd);
/* fsync the directory that holds `path` (after creating path in it): 0, or -1 with errno. */
int mmj_fsync_parent(const char *path);
int mmj_open_dir(const char *dir, int *dirfd, int *err);
int mmj_meta_read(int dirfd, uint8_t *salt, int *err);
int mmj_meta_create(int dirfd, uint8_t *salt, uint32_t version, int *err);
int mmj_write_atomic(int dirfd, const char *name, const void *data, size_t len, int *err);
int mmj_list_segments(int dirfd, uint64_t **indices, size_t *count, int *err);
int mmj_map_segment(int dirfd, uint64_t index, int writable, mmj_map *m, int *err);
void mmj_unmap(mmj_map *m);
void mmj_header_build(uint8_t *h, uint32_t version, const uint8_t *salt, uint64_t index, uint64_t first_seq,
                      uint64_t size, const uint8_t *prev_seal);
/* The fields of a segment header (journal.h SEGMENT FILE), read whenever its magic is right. */
typedef struct mmj_seg_header {
    int magic_ok;              /* 1 if the magic is right; the fields below are read only then */
    uint32_t version;
    uint32_t header_size;
    uint64_t index;
    uint64_t first_seq;
    uint64_t size;             /* the segment size S it states */
} mmj_seg_header;
/* Parse the 128 header bytes at h: MMJ_R_NONE when magic, crc, version, header size and salt are
 * right (index and size are not compared with anything), else MMJ_R_BAD_HEADER, with
 * *version_newer set for an intact header of a newer format version. */
int mmj_header_parse(const uint8_t *h, const uint8_t *salt, mmj_seg_header *out, int *version_newer);
/* MMJ_R_NONE when the header is good (mmj_header_parse, and its index and size are the mapped
 * segment's); first_seq/prev_seal/version (each may be NULL) are filled then. */
int mmj_header_check(const mmj_map *m, const uint8_t *salt, uint64_t *first_seq, uint8_t *prev_seal,
                     int *version_newer, uint32_t *version);
/* > 0: valid record of that many bytes (filled into out if non-NULL); 0: zero word (end of
 * data); < 0: -mmj_reason. */
int mmj_record_check(const uint8_t *base, uint64_t size, uint64_t off, uint32_t salt_check,
                     uint64_t expect_seq, mmj_record *out);
/* mmj_record_check with whatever sequence the record carries (records found out of their place:
 * after damage, in a kept segment). */
int mmj_record_check_any_seq(const uint8_t *base, uint64_t size, uint64_t off, uint32_t salt_check,
                             mmj_record *out);
/* Fill out from an already validated record; returns its size. */
uint64_t mmj_record_fill(const uint8_t *base, uint64_t off, mmj_record *out);
/* One past the last non-zero byte in [from, size), or 0 if all zero. */
uint64_t mmj_nonzero_end(const uint8_t *base, uint64_t from, uint64_t size);
uint64_t mmj_first_nonzero(const uint8_t *base, uint64_t from, uint64_t size);
int mmj_lock_read(int fd, int32_t *pid, int32_t *clean);

/* The LOCK file's states (journal_lock.c). */
enum { MMJ_LOCK_UNKNOWN = 0, MMJ_LOCK_OPEN = 1, MMJ_LOCK_CLOSING = 2, MMJ_LOCK_CLOSED = 3 };
typedef struct mmj_lock_info {
    int32_t pid;
    int state;                 /* MMJ_LOCK_*, UNKNOWN for an empty or unreadable LOCK */
    int named;                 /* 1 if it names a segment (a writer of this version wrote it) */
    int has_end;               /* closed with its next sequence and seal hash */
    uint64_t seg;              /* open: the segment the writer started in; closing/closed: the last */
    uint64_t next_seq;         /* closed: the next sequence after the last record */
    uint8_t seal[MMJ_HASH_SIZE];  /* closed: the last segment's seal hash */
} mmj_lock_info;
/* What a directory's segments end with, for mmj_lock_end_check. */
typedef struct mmj_end {
    uint64_t segments;         /* segment files present (0: none) */
    uint64_t last_index;       /* the highest index present */
    int last_sealed;           /* it ends with SEAL + EOS (next_seq and seal then describe it) */
    uint64_t next_seq;         /* the sequence after its last record */
    const uint8_t *seal;       /* its seal hash */
} mmj_end;
void mmj_lock_parse(const char *text, mmj_lock_info *out);
int mmj_lock_read_info(int fd, mmj_lock_info *out);
/* MMJ_R_MISSING_SEGMENT (with *missing, the first index missing) if segments were removed from the
 * end the LOCK describes; MMJ_R_NONE otherwise, always for a LOCK that names no segment. */
int mmj_lock_end_check(const mmj_lock_info *lock, const mmj_end *end, uint64_t *missing);
/* The LOCK line for state (MMJ_LOCK_OPEN/CLOSING/CLOSED) naming segment seg (closed: with
 * next_seq and seal, if seal is not NULL). */
void mmj_lock_format(char *buf, size_t cap, int state, uint64_t seg, uint64_t next_seq, const uint8_t *seal);

/* Where the segments end (journal_end.c; journal.h THE END OF THE JOURNAL). Sealed segment `last`
 * (next_seq and seal hash: its end) has no successor in a snapshot: *grown = 1 if segment last+1
 * exists now; else *missing = the first missing index when a later segment exists or LOCK names
 * another end, 0 when `last` is the journal's end. MMJ_OK or a listing error. */
int mmj_end_after_sealed(int dirfd, uint64_t last, uint64_t next_seq, const uint8_t *seal, int *grown,
                         uint64_t *missing);
/* Unsealed segment `index` ends (zero word) in a snapshot: *continues = 1 if the journal goes on
 * after it (segment index+1 in use, or a later one exists), which a live writer's roll only shows
 * once `index` is sealed: the caller looks at `index` again and, still unsealed there, it is
 * damage (MMJ_R_NO_EOS). MMJ_OK or a listing error. */
int mmj_end_after_unsealed(int dirfd, uint64_t index, int *continues);

/* Segment summaries (journal_footer.c; journal.h SEGMENT SUMMARY). */
#define MMJ_FOOTER_SIZE 96
typedef struct mmj_footer {
    uint64_t records;          /* data records in the segment */
    uint64_t seal_offset;      /* offset of its SEAL record */
    uint64_t end;              /* offset after its EOS marker */
    uint8_t seal_hash[MMJ_HASH_SIZE];
    int durable;               /* DURABLE flag: the segment was msynced before the summary */
} mmj_footer;
void mmj_footer_name(char *buf, size_t cap, uint64_t index, int tmp);
void mmj_footer_build(uint8_t *out, uint64_t index, uint64_t first_seq, uint64_t records, uint64_t seal_off,
                      const uint8_t *seal_hash, int durable);
/* Write seg-<index>.sum (temp name + rename, no fsync); MMJ_E_IO if it could not. */
int mmj_footer_write(int dirfd, uint64_t index, uint64_t first_seq, uint64_t records, uint64_t seal_off,
                     const uint8_t *seal_hash, int durable);
/* Set the DURABLE flag of seg-<index>.sum, once the whole segment was fdatasynced (temp name +
 * rename, no fsync). MMJ_OK; MMJ_E_NOT_FOUND without a summary, MMJ_E_CORRUPT for one that is not
 * well formed or names another index, MMJ_E_IO. */
int mmj_footer_mark_durable(int dirfd, uint64_t index);
void mmj_footer_remove(int dirfd, uint64_t index);
/* Read seg-<index>.sum: MMJ_OK, MMJ_E_NOT_FOUND, MMJ_E_CORRUPT (not exactly MMJ_FOOTER_SIZE bytes). */
int mmj_footer_read(int dirfd, uint64_t index, uint8_t *out);
/* MMJ_OK if summary f describes mapped segment m (header already checked: first_seq is its
 * first sequence) and m's own SEAL and EOS records agree with it; MMJ_E_CORRUPT otherwise. */
int mmj_footer_check(const uint8_t *f, const mmj_map *m, uint32_t salt_check, uint64_t first_seq,
                     mmj_footer *out);

/* What recovery keeps of what it discards (journal_discard.c; journal.h DISCARDED DATA). */
typedef struct mmj_discard {
    int fd;                    /* discarded/r<run>, -1 until opened */
    uint32_t run;              /* N of discarded/r<N>, 0 until opened */
} mmj_discard;
/* Make the next free discarded/r<N> of the journal directory. MMJ_OK or MMJ_E_IO. */
int mmj_discard_open(int dirfd, mmj_discard *d);
/* Keep a copy of segment `index`'s first len bytes there (fsynced). MMJ_OK or MMJ_E_IO. */
int mmj_discard_copy(mmj_discard *d, uint64_t index, const uint8_t *bytes, uint64_t len);
/* Move segment file `index` of dirfd there, with its summary if any. MMJ_OK or MMJ_E_IO. */
int mmj_discard_move(mmj_discard *d, int dirfd, uint64_t index);
/* Move segment `index`'s summary there if it has one (best effort: a summary is a hint). */
void mmj_discard_summary(mmj_discard *d, int dirfd, uint64_t index);
/* fsync and close the run's directory (the caller fsyncs the journal directory). */
int mmj_discard_close(mmj_discard *d);

/* The writer-to-tailer wake-up word (journal_notify.c). */
typedef struct mmj_notify mmj_notify;
/* Map the directory's notify file (create: make it); NULL if it cannot (tailers then poll). */
mmj_notify *mmj_notify_map(int dirfd, int create);
void mmj_notify_unmap(mmj_notify *n);
/* Writer, after publishing: wake waiting tailers, if any. */
void mmj_notify_wake(mmj_notify *n);
/* Writer (at open, and now and then): forget the registered waiters (a tailer killed while
 * waiting leaves one behind) and wake everyone, so live waiters register again. 1 if there was
 * a count to clear. */
int mmj_notify_reset(mmj_notify *n);
/* Tailer: register as a waiter (returns the counter to wait on; OUT *epoch, for the leave),
 * re-check for records, then wait up to ns for a wake, then leave. */
uint32_t mmj_notify_enter(mmj_notify *n, uint32_t *epoch);
void mmj_notify_wait(mmj_notify *n, uint32_t seen, int64_t ns);
void mmj_notify_leave(mmj_notify *n, uint32_t epoch);
int64_t mmj_now_ns(void);

#endif
