/* Readers: a read-only snapshot of a journal with a sparse sequence index, iteration, random
 * access and bulk copies of one record type into packed rows (for numpy).
 *
 * Never repairs and never skips a bad record: the snapshot ends at the first invalid one.
 * Knows the on-disk format; knows nothing about payload meaning or Python.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_internal.h"

typedef struct rseg {
    mmj_map map;
    uint32_t salt_check;
    uint64_t first_seq;
    uint64_t records;          /* data records indexed so far */
    uint64_t data_end;         /* offset after the last indexed record (or EOS) */
    uint64_t scan_seq;         /* the sequence expected at data_end */
    int sealed;
    int unchecked;             /* opened from its summary: records not yet checked or indexed */
    uint64_t *sparse;          /* offset of data record first_seq + k*MMJ_SPARSE_EVERY */
    uint64_t nsparse, capsparse;
} rseg;

struct mmj_reader {
    int dirfd;
    uint32_t flags;            /* MMJ_READER_* */
    uint8_t salt[MMJ_SALT_SIZE];
    rseg *segs;
    size_t nsegs, cap;
    size_t nmapped;            /* slots holding mappings: nsegs, or more after a cut (freed at close) */
    pthread_mutex_t check_mu;  /* serialises ensure_checked */
    int stop_reason;
    uint64_t stop_segment, stop_offset;
    int stop_at_end;           /* the stop is check_end's (segments missing), looked at again by refresh */
};

static int sparse_push(rseg *s, uint64_t off)
{
    return mmj_push_u64(&s->sparse, &s->nsparse, &s->capsparse, off);
}

/* Note where the snapshot ends early (mmj_reader_stop). */
static void set_stop(mmj_reader *r, int reason, uint64_t segment, uint64_t offset, int at_end)
{
    r->stop_reason = reason;
    r->stop_segment = segment;
    r->stop_offset = offset;
    r->stop_at_end = at_end;
}

/* Index records of s from data_end on until end of data, EOS or an invalid record (its reason
 * in *bad, its offset data_end; *bad untouched otherwise). */
static int scan_more(rseg *s, int *bad)
{
    mmj_record rec;
    while (!s->sealed) {
        int size = mmj_record_check(s->map.base, s->map.size, s->data_end, s->salt_check, s->scan_seq, &rec);
        if (size == 0)
            return MMJ_OK;
        if (size < 0) {
            *bad = -size;
            return MMJ_OK;
        }
        if (rec.flags & MMJ_FLAG_EOS) {
            s->sealed = 1;
        } else if (!(rec.flags & MMJ_FLAG_CONTROL)) {
            if (s->records % MMJ_SPARSE_EVERY == 0 && sparse_push(s, s->data_end) != MMJ_OK)
                return MMJ_E_NOMEM;
            s->records++;
            s->scan_seq++;
        }
        s->data_end += (uint64_t)size;
    }
    return MMJ_OK;
}

/* Take a sealed segment's extent from its summary when the summary is believed (journal.h
 * SEGMENT SUMMARY); its records are checked by ensure_checked before anything reads them. */
static void trust_summary(mmj_reader *r, rseg *s)
{
    uint8_t f[MMJ_FOOTER_SIZE];
    mmj_footer info;
    if (mmj_footer_read(r->dirfd, s->map.index, f) != MMJ_OK ||
        mmj_footer_check(f, &s->map, s->salt_check, s->first_seq, &info) != MMJ_OK)
        return;
    s->records = info.records;
    s->data_end = info.end;
    s->scan_seq = s->first_seq + info.records;
    s->sealed = 1;
    s->unchecked = 1;
}

/* Check and index the records of unchecked segment `slot` (check_mu held). If they do not lead
 * to the SEAL its summary named, the snapshot ends where they stop, exactly as a scan at open
 * would have ended it (later slots leave the snapshot; their mappings stay until close, so a
 * thread still reading them is not left with unmapped memory). */
static int check_segment(mmj_reader *r, size_t slot)
{
    rseg *s = &r->segs[slot];
    rseg t = *s;   /* scanned aside: other readers keep seeing the summary's extent meanwhile */
    t.unchecked = 0;
    t.sealed = 0;
    t.records = 0;
    t.sparse = NULL;
    t.nsparse = t.capsparse = 0;
    t.data_end = MMJ_HEADER_SIZE;
    t.scan_seq = t.first_seq;
    int bad = MMJ_R_NONE;
    int rc = scan_more(&t, &bad);
    if (rc != MMJ_OK) {
        free(t.sparse);
        return rc;
    }
    if (t.sealed && t.data_end == s->data_end && t.records == s->records && bad == MMJ_R_NONE) {
        s->sparse = t.sparse;
        s->nsparse = t.nsparse;
        s->capsparse = t.capsparse;
        __atomic_store_n(&s->unchecked, 0, __ATOMIC_RELEASE);
        return MMJ_OK;
    }
    /* the snapshot now ends here, before whatever stopped it further on at open (a bad header or
     * missing segments later do not make this segment's records fail) */
    set_stop(r, bad != MMJ_R_NONE ? bad : MMJ_R_NO_EOS, s->map.index, t.data_end, 0);
    t.sealed = 0;
    free(s->sparse);
    *s = t;
    __atomic_store_n(&r->nsegs, slot + 1, __ATOMIC_RELEASE);
    return MMJ_OK;
}

/* Make sure the records of `slot` were checked before anything reads them. The index is a cache:
 * a const reader fills it. */
static int ensure_checked(const mmj_reader *cr, size_t slot)
{
    mmj_reader *r = (mmj_reader *)cr;
    if (!__atomic_load_n(&r->segs[slot].unchecked, __ATOMIC_ACQUIRE))
        return MMJ_OK;
    pthread_mutex_lock(&r->check_mu);
    int rc = r->segs[slot].unchecked ? check_segment(r, slot) : MMJ_OK;
    pthread_mutex_unlock(&r->check_mu);
    return rc;
}

/* Map segment `index` and append it to the table if its header continues the journal. */
static int add_segment(mmj_reader *r, uint64_t index, uint64_t expect_seq, int *added, int *err)
{
    rseg s;
    int newer = 0;
    memset(&s, 0, sizeof s);
    *added = 0;
    int rc = mmj_map_segment(r->dirfd, index, 0, &s.map, err);
    if (rc == MMJ_E_NOT_FOUND)
        return MMJ_OK;
    if (rc == MMJ_E_CORRUPT) {
        set_stop(r, MMJ_R_BAD_HEADER, index, 0, 0);
        return MMJ_OK;
    }
    if (rc != MMJ_OK)
        return rc;
    int bad = mmj_header_check(&s.map, r->salt, &s.first_seq, NULL, &newer, NULL);
    if (newer) {
        mmj_unmap(&s.map);
        return MMJ_E_VERSION;
    }
    if (bad != MMJ_R_NONE || s.first_seq != expect_seq) {
        mmj_unmap(&s.map);
        set_stop(r, MMJ_R_BAD_HEADER, index, 0, 0);
        return MMJ_OK;
    }
    if (r->nsegs == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        rseg *grown = realloc(r->segs, cap * sizeof *grown);
        if (!grown) {
            mmj_unmap(&s.map);
            return MMJ_E_NOMEM;
        }
        r->segs = grown;
        r->cap = cap;
    }
    s.salt_check = mmj_salt_check(r->salt, index);
    s.data_end = MMJ_HEADER_SIZE;
    s.scan_seq = s.first_seq;
    if (!(r->flags & MMJ_READER_FULL_SCAN))
        trust_summary(r, &s);
    r->segs[r->nsegs++] = s;
    r->nmapped = r->nsegs;
    *added = 1;
    return MMJ_OK;
}

/* The snapshot ends with sealed segment s and no segment s+1: is that the end of the journal
 * (journal.h THE END OF THE JOURNAL, as verify checks it)? Not if a segment file with a later
 * index is there (segments are missing in between), nor if LOCK names another end
 * (mmj_end_after_sealed; a writer that rolled or opened meanwhile is growth, not a gap: the next
 * refresh reads it). Only a clean close leaves a sealed last segment, so this runs once per
 * refresh of a closed journal, never per record. */
static int check_end(mmj_reader *r, const rseg *s)
{
    uint64_t seal_size = mmj_pad8(MMJ_RECORD_HEADER_SIZE + MMJ_CONTROL_PAYLOAD);
    /* a sealed segment ends SEAL, EOS (a bare header); the SEAL's payload starts with its hash */
    const uint8_t *seal = s->map.base + s->data_end - seal_size;
    int grown = 0;
    uint64_t missing = 0;
    int rc = mmj_end_after_sealed(r->dirfd, s->map.index, s->scan_seq, seal, &grown, &missing);
    if (rc == MMJ_OK && missing)
        set_stop(r, MMJ_R_MISSING_SEGMENT, missing, 0, 1);
    return rc;
}

/* The snapshot's last segment s is unsealed and its data ends at data_end (a zero word): the live
 * end, unless the journal goes on after s (mmj_end_after_unsealed). A writer rolling meanwhile
 * sealed s before it wrote in the next segment, so s is scanned again: unsealed still, it is
 * damage, and the snapshot stops there (MMJ_R_NO_EOS) rather than ending quietly in front of later
 * segments. The stop is looked at again by refresh. */
static int check_unsealed_end(mmj_reader *r, rseg *s)
{
    int continues = 0, bad = MMJ_R_NONE;
    int rc = mmj_end_after_unsealed(r->dirfd, s->map.index, &continues);
    if (rc != MMJ_OK || !continues)
        return rc;
    rc = scan_more(s, &bad);
    if (rc != MMJ_OK)
        return rc;
    if (bad != MMJ_R_NONE)
        set_stop(r, bad, s->map.index, s->data_end, 0);
    else if (!s->sealed)
        set_stop(r, MMJ_R_NO_EOS, s->map.index, s->data_end, 1);
    return MMJ_OK;
}

int mmj_reader_refresh(mmj_reader *r)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (r->stop_at_end)   /* missing segments may have been a writer's open or roll seen half-way */
        set_stop(r, MMJ_R_NONE, 0, 0, 0);
    if (r->nsegs == 0 && r->stop_reason == MMJ_R_NONE) {
        /* a journal starts at segment 0 with sequence 1; anything else is missing data */
        uint64_t *idx = NULL;
        size_t n = 0;
        int added = 0;
        int rc = mmj_list_segments(r->dirfd, &idx, &n, NULL);
        if (rc != MMJ_OK)
            return rc;
        int first_index = n ? (int)(idx[0] != 0) : -1;
        free(idx);
        if (first_index < 0)
            return MMJ_OK;
        if (first_index) {
            set_stop(r, MMJ_R_MISSING_SEGMENT, 0, 0, 1);
            return MMJ_OK;
        }
        rc = add_segment(r, 0, 1, &added, NULL);
        if (rc != MMJ_OK)
            return rc;
    }
    while (r->nsegs && r->stop_reason == MMJ_R_NONE) {
        rseg *s = &r->segs[r->nsegs - 1];
        int bad = MMJ_R_NONE;
        int rc = scan_more(s, &bad);
        if (rc != MMJ_OK)
            return rc;
        if (bad != MMJ_R_NONE)
            set_stop(r, bad, s->map.index, s->data_end, 0);
        if (!s->sealed && r->stop_reason == MMJ_R_NONE) {
            rc = check_unsealed_end(r, s);
            if (rc != MMJ_OK)
                return rc;
        }
        if (!s->sealed || r->stop_reason != MMJ_R_NONE)
            break;
        int added = 0;
        rc = add_segment(r, s->map.index + 1, s->scan_seq, &added, NULL);
        if (rc != MMJ_OK)
            return rc;
        if (!added)
            return r->stop_reason == MMJ_R_NONE ? check_end(r, &r->segs[r->nsegs - 1]) : MMJ_OK;
    }
    return MMJ_OK;
}

int mmj_reader_open(const char *dir, mmj_reader **out, int *err)
{
    return mmj_reader_open_ex(dir, 0, out, err);
}

uint64_t mmj_reader_unchecked(const mmj_reader *r)
{
    uint64_t n = 0;
    for (size_t i = 0; r && i < r->nsegs; i++)
        n += (uint64_t)r->segs[i].unchecked;
    return n;
}

int mmj_reader_open_ex(const char *dir, uint32_t flags, mmj_reader **out, int *err)
{
    if (err)
        *err = 0;
    if (!dir || !out)
        return MMJ_E_ARG;
    *out = NULL;
    if (flags & ~(uint32_t)MMJ_READER_FULL_SCAN)
        return MMJ_E_ARG;
    mmj_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MMJ_E_NOMEM;
    r->flags = flags;
    pthread_mutex_init(&r->check_mu, NULL);
    int rc = mmj_open_dir(dir, &r->dirfd, err);
    if (rc != MMJ_OK) {
        pthread_mutex_destroy(&r->check_mu);
        free(r);
        return rc;
    }
    rc = mmj_meta_read(r->dirfd, r->salt, err);
    if (rc == MMJ_OK)
        rc = mmj_reader_refresh(r);
    if (rc != MMJ_OK) {
        mmj_reader_close(r);
        return rc;
    }
    *out = r;
    return MMJ_OK;
}

void mmj_reader_close(mmj_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nmapped; i++) {
        mmj_unmap(&r->segs[i].map);
        free(r->segs[i].sparse);
    }
    free(r->segs);
    close(r->dirfd);
    pthread_mutex_destroy(&r->check_mu);
    free(r);
}

void mmj_reader_range(const mmj_reader *r, uint64_t *first, uint64_t *last)
{
    if (!r || r->nsegs == 0) {
        *first = 1;
        *last = 0;
        return;
    }
    *first = r->segs[0].first_seq;
    *last = r->segs[r->nsegs - 1].scan_seq - 1;
}

void mmj_reader_salt(const mmj_reader *r, uint8_t *out)
{
    if (r && out)
        memcpy(out, r->salt, MMJ_SALT_SIZE);
}

uint64_t mmj_reader_segments(const mmj_reader *r)
{
    return r ? r->nsegs : 0;
}

void mmj_reader_stop(const mmj_reader *r, int32_t *reason, uint64_t *segment, uint64_t *offset)
{
    *reason = r ? r->stop_reason : MMJ_R_NONE;
    *segment = r ? r->stop_segment : 0;
    *offset = r ? r->stop_offset : 0;
}

int mmj_reader_segment_info(const mmj_reader *r, uint64_t slot, uint64_t *index, uint64_t *first_seq,
                            uint64_t *records, int32_t *sealed, uint64_t *size)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (slot >= r->nsegs)
        return MMJ_E_ARG;
    const rseg *s = &r->segs[slot];
    *index = s->map.index;
    *first_seq = s->first_seq;
    *records = s->records;
    *sealed = s->sealed;
    *size = s->map.size;
    return MMJ_OK;
}

/* Slot of the segment holding seq, or the first slot after it; nsegs if none. */
static size_t slot_for(const mmj_reader *r, uint64_t seq)
{
    size_t lo = 0, hi = r->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const rseg *s = &r->segs[mid];
        if (s->first_seq + s->records <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The slot holding seq (or the first slot after it; nsegs if none), with that slot's records
 * checked. The slot is picked by the extent a summary claimed; the check may cut the snapshot
 * (check_segment), so it is picked again after the check, from the extents the check left: the
 * same slot when seq is still in it, else nsegs (seq is past the cut). */
static int checked_slot_for(const mmj_reader *r, uint64_t seq, size_t *slot)
{
    for (;;) {
        size_t at = slot_for(r, seq);
        *slot = at;
        if (at >= __atomic_load_n(&r->nsegs, __ATOMIC_ACQUIRE) ||
            !__atomic_load_n(&r->segs[at].unchecked, __ATOMIC_ACQUIRE))
            return MMJ_OK;
        int rc = ensure_checked(r, at);
        if (rc != MMJ_OK)
            return rc;
    }
}

/* Offset of the data record seq in checked segment s, which holds it (first_seq <= seq <
 * first_seq + records: the sparse index covers exactly those); data_end if the indexed bytes
 * changed under the reader since the scan validated them. */
static uint64_t offset_of(const rseg *s, uint64_t seq)
{
    assert(!s->unchecked && seq >= s->first_seq && seq - s->first_seq < s->records);
    uint64_t k = seq - s->first_seq;
    uint64_t off = s->sparse[k / MMJ_SPARSE_EVERY];
    uint64_t at = s->first_seq + (k / MMJ_SPARSE_EVERY) * MMJ_SPARSE_EVERY;
    mmj_record rec;
    while (off < s->data_end) {
        uint64_t size = mmj_record_fill(s->map.base, off, &rec);
        if (!(rec.flags & (MMJ_FLAG_CONTROL | MMJ_FLAG_EOS))) {
            if (at == seq)
                return off;
            at++;
        }
        off += size;
    }
    return s->data_end;
}

int mmj_reader_get(const mmj_reader *r, uint64_t seq, mmj_record *out)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (!out)
        return MMJ_E_ARG;
    size_t slot;
    int rc = checked_slot_for(r, seq, &slot);
    if (rc != MMJ_OK)
        return rc;
    if (slot >= r->nsegs || seq < r->segs[slot].first_seq)
        return MMJ_E_NOT_FOUND;
    const rseg *s = &r->segs[slot];
    uint64_t off = offset_of(s, seq);
    if (off >= s->data_end)
        return MMJ_E_CORRUPT;
    mmj_record_fill(s->map.base, off, out);
    out->segment = s->map.index;
    return MMJ_OK;
}

int mmj_reader_seek(const mmj_reader *r, uint64_t seq, mmj_pos *pos)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (!pos)
        return MMJ_E_ARG;
    size_t slot;
    int rc = checked_slot_for(r, seq, &slot);
    if (rc != MMJ_OK)
        return rc;
    pos->slot = slot;
    pos->offset = MMJ_HEADER_SIZE;
    if (slot < r->nsegs && seq > r->segs[slot].first_seq)
        pos->offset = offset_of(&r->segs[slot], seq);
    return MMJ_OK;
}

int mmj_reader_next(const mmj_reader *r, mmj_pos *pos, int include_control, mmj_record *out)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (!pos || !out)
        return MMJ_E_ARG;
    while (pos->slot < r->nsegs) {
        const rseg *s = &r->segs[pos->slot];
        if (s->unchecked) {
            int rc = ensure_checked(r, pos->slot);
            if (rc != MMJ_OK)
                return rc;
        }
        if (pos->offset >= s->data_end) {
            pos->slot++;
            pos->offset = MMJ_HEADER_SIZE;
            continue;
        }
        uint64_t size = mmj_record_fill(s->map.base, pos->offset, out);
        if (pos->offset + size > s->data_end)
            return MMJ_E_CORRUPT;   /* bytes changed under the reader since they were validated */
        out->segment = s->map.index;
        pos->offset += size;
        if (out->flags & MMJ_FLAG_EOS)
            continue;
        if ((out->flags & MMJ_FLAG_CONTROL) && !include_control)
            continue;
        return MMJ_OK;
    }
    return MMJ_END;
}

static void put_row_header(char *row, const mmj_rec_hdr *h)
{
    memcpy(row, &h->seq, 8);
    memcpy(row + 8, &h->rtype, 2);
    row[10] = (char)h->ts_source;
    row[11] = (char)h->clock_state;
    memcpy(row + 12, &h->ts_ns, 8);
}

/* Visit data records with first <= seq <= last straight from the validated bytes of the mapped
 * segments (no per-record checks beyond the snapshot's bounds: scan_more validated them). */
typedef int (*visit_fn)(void *ctx, const mmj_rec_hdr *h, uint64_t slot, uint64_t off);

static int walk(const mmj_reader *r, uint64_t first, uint64_t last, visit_fn visit, void *ctx)
{
    mmj_pos pos;
    if (last < first)
        return MMJ_OK;
    int rc = mmj_reader_seek(r, first, &pos);
    if (rc != MMJ_OK)
        return rc;
    for (uint64_t slot = pos.slot; slot < r->nsegs; slot++) {
        if ((rc = ensure_checked(r, slot)) != MMJ_OK)
            return rc;
        const rseg *s = &r->segs[slot];
        const uint8_t *base = s->map.base;
        uint64_t off = slot == pos.slot ? pos.offset : MMJ_HEADER_SIZE, end = s->data_end;
        while (off < end) {
            const mmj_rec_hdr *h = (const mmj_rec_hdr *)(base + off);
            /* the walk is a chain of dependent loads: start the next lines (and pages) early */
            __builtin_prefetch(base + off + MMJ_PREFETCH_AHEAD);
            __builtin_prefetch(base + off + MMJ_PREFETCH_AHEAD + 64);
            uint32_t word = h->word;
            uint64_t size = (MMJ_RECORD_HEADER_SIZE + (word & MMJ_LENGTH_MASK) + 7) & ~(uint64_t)7;
            if (off + size > end)
                return MMJ_E_CORRUPT;   /* bytes changed under the reader since they were validated */
            if (!(word & (MMJ_FLAG_EOS | MMJ_FLAG_CONTROL))) {
                if (h->seq > last)
                    return MMJ_OK;
                if (h->seq >= first) {
                    int rc = visit(ctx, h, slot, off);
                    if (rc != MMJ_OK)
                        return rc;
                }
            }
            off += size;
        }
    }
    return MMJ_OK;
}

typedef struct fixed_ctx {
    uint32_t rtype;
    uint64_t size;
    char *out;
    uint64_t cap, rows;
} fixed_ctx;

static int visit_fixed(void *p, const mmj_rec_hdr *h, uint64_t slot, uint64_t off)
{
    (void)slot;
    (void)off;
    fixed_ctx *c = p;
    if (h->rtype != c->rtype)
        return MMJ_OK;
    if ((h->word & MMJ_LENGTH_MASK) != c->size)
        return MMJ_E_PAYLOAD_SIZE;
    if (c->out) {
        if (c->rows >= c->cap)
            return MMJ_E_ARG;
        char *row = c->out + c->rows * (MMJ_ROW_HEADER + c->size);
        put_row_header(row, h);
        memcpy(row + MMJ_ROW_HEADER, (const uint8_t *)h + MMJ_RECORD_HEADER_SIZE, c->size);
    }
    c->rows++;
    return MMJ_OK;
}

int mmj_reader_read_fixed(const mmj_reader *r, uint32_t rtype, uint64_t size, uint64_t first, uint64_t last,
                          char *out, uint64_t cap, uint64_t *rows)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (!rows)
        return MMJ_E_ARG;
    fixed_ctx c = {.rtype = rtype, .size = size, .out = out, .cap = cap, .rows = 0};
    int rc = walk(r, first, last, visit_fixed, &c);
    *rows = c.rows;
    return rc;
}

typedef struct multi_ctx {
    uint64_t ntypes;
    const uint32_t *rtypes;
    const uint64_t *sizes;
    char *const *outs;
    const uint64_t *caps;
    uint64_t *rows;
} multi_ctx;

static int visit_multi(void *p, const mmj_rec_hdr *h, uint64_t slot, uint64_t off)
{
    multi_ctx *c = p;
    (void)slot;
    (void)off;
    for (uint64_t t = 0; t < c->ntypes; t++) {
        if (h->rtype != c->rtypes[t])
            continue;
        if ((h->word & MMJ_LENGTH_MASK) != c->sizes[t])
            return MMJ_E_PAYLOAD_SIZE;
        if (c->rows[t] >= c->caps[t])
            return MMJ_E_ARG;
        char *row = c->outs[t] + c->rows[t] * (MMJ_ROW_HEADER + c->sizes[t]);
        put_row_header(row, h);
        memcpy(row + MMJ_ROW_HEADER, (const uint8_t *)h + MMJ_RECORD_HEADER_SIZE, c->sizes[t]);
        c->rows[t]++;
        return MMJ_OK;
    }
    return MMJ_OK;
}

int mmj_reader_read_fixed_many(const mmj_reader *r, uint64_t ntypes, const uint32_t *rtypes, const uint64_t *sizes,
                               uint64_t first, uint64_t last, char *const *outs, const uint64_t *caps,
                               uint64_t *rows)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (ntypes && (!rtypes || !sizes || !outs || !caps || !rows))
        return MMJ_E_ARG;
    for (uint64_t t = 0; t < ntypes; t++) {
        rows[t] = 0;
        if (caps[t] && !outs[t])
            return MMJ_E_ARG;
    }
    multi_ctx c = {.ntypes = ntypes, .rtypes = rtypes, .sizes = sizes, .outs = outs, .caps = caps, .rows = rows};
    return walk(r, first, last, visit_multi, &c);
}

typedef struct blob_ctx {
    uint32_t rtype;
    char *hdr, *blob;
    uint64_t *offsets;
    uint64_t cap_rows, cap_bytes, rows, bytes;
} blob_ctx;

static int visit_blob(void *p, const mmj_rec_hdr *h, uint64_t slot, uint64_t off)
{
    (void)slot;
    (void)off;
    blob_ctx *c = p;
    if (h->rtype != c->rtype && c->rtype != MMJ_RTYPE_ANY)
        return MMJ_OK;
    uint64_t len = h->word & MMJ_LENGTH_MASK;
    if (c->hdr) {
        if (c->rows >= c->cap_rows || c->bytes + len > c->cap_bytes)
            return MMJ_E_ARG;
        put_row_header(c->hdr + c->rows * MMJ_ROW_HEADER, h);
        memcpy(c->blob + c->bytes, (const uint8_t *)h + MMJ_RECORD_HEADER_SIZE, len);
        c->offsets[c->rows] = c->bytes;
        c->offsets[c->rows + 1] = c->bytes + len;
    }
    c->rows++;
    c->bytes += len;
    return MMJ_OK;
}

int mmj_reader_read_blobs(const mmj_reader *r, uint32_t rtype, uint64_t first, uint64_t last, char *hdr,
                          char *blob, uint64_t *offsets, uint64_t cap_rows, uint64_t cap_bytes, uint64_t *rows,
                          uint64_t *bytes)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (!rows || !bytes || (hdr && (!offsets || (!blob && cap_bytes))))
        return MMJ_E_ARG;
    blob_ctx c = {.rtype = rtype, .hdr = hdr, .blob = blob, .offsets = offsets, .cap_rows = cap_rows,
                  .cap_bytes = cap_bytes};
    if (hdr)
        offsets[0] = 0;
    int rc = walk(r, first, last, visit_blob, &c);
    *rows = c.rows;
    *bytes = c.bytes;
    return rc;
}

typedef struct scan_ctx {
    uint64_t cap, rows;
    uint64_t *seq;
    uint16_t *rtype;
    int64_t *ts_ns;
    uint8_t *ts_source, *clock_state;
    uint32_t *length;
    uint64_t *pos;
} scan_ctx;

static int visit_scan(void *p, const mmj_rec_hdr *h, uint64_t slot, uint64_t off)
{
    scan_ctx *c = p;
    uint64_t k = c->rows;
    if (k >= c->cap)
        return MMJ_E_ARG;
    if (c->seq)
        c->seq[k] = h->seq;
    if (c->rtype)
        c->rtype[k] = h->rtype;
    if (c->ts_ns)
        c->ts_ns[k] = h->ts_ns;
    if (c->ts_source)
        c->ts_source[k] = h->ts_source;
    if (c->clock_state)
        c->clock_state[k] = h->clock_state;
    if (c->length)
        c->length[k] = h->word & MMJ_LENGTH_MASK;
    if (c->pos)
        c->pos[k] = slot << 40 | (off + MMJ_RECORD_HEADER_SIZE);
    c->rows = k + 1;
    return MMJ_OK;
}

int mmj_reader_scan(const mmj_reader *r, uint64_t first, uint64_t last, uint64_t cap, uint64_t *seq,
                    uint16_t *rtype, int64_t *ts_ns, uint8_t *ts_source, uint8_t *clock_state, uint32_t *length,
                    uint64_t *pos, uint64_t *rows)
{
    if (!r)
        return MMJ_E_CLOSED;
    if (!rows)
        return MMJ_E_ARG;
    scan_ctx c = {.cap = cap, .seq = seq, .rtype = rtype, .ts_ns = ts_ns, .ts_source = ts_source,
                  .clock_state = clock_state, .length = length, .pos = pos};
    int rc = walk(r, first, last, visit_scan, &c);
    *rows = c.rows;
    return rc;
}

/* The payload a scan handle points at, if it is a record of at least size bytes; else NULL. */
static const uint8_t *payload_at(const mmj_reader *r, uint64_t pos, uint64_t size, int *rc)
{
    uint64_t slot = pos >> 40, off = pos & ((1ull << 40) - 1);
    if (slot < r->nsegs && (*rc = ensure_checked(r, slot)) != MMJ_OK)
        return NULL;
    if (slot >= r->nsegs || off < MMJ_HEADER_SIZE + MMJ_RECORD_HEADER_SIZE || off > r->segs[slot].data_end) {
        *rc = MMJ_E_ARG;
        return NULL;
    }
    const uint8_t *payload = r->segs[slot].map.base + off;
    const mmj_rec_hdr *h = (const mmj_rec_hdr *)(payload - MMJ_RECORD_HEADER_SIZE);
    if ((h->word & MMJ_LENGTH_MASK) < size || off + size > r->segs[slot].data_end) {
        *rc = MMJ_E_PAYLOAD_SIZE;
        return NULL;
    }
    return payload;
}

int mmj_reader_gather(const mmj_reader *r, const uint64_t *pos, uint64_t n, uint64_t size, char *out,
                      uint64_t stride, int with_header)
{
    if (!r)
        return MMJ_E_CLOSED;
    uint64_t skip = with_header ? MMJ_ROW_HEADER : 0;
    if ((n && (!pos || !out)) || stride < size + skip)
        return MMJ_E_ARG;
    int rc = MMJ_OK;
    for (uint64_t k = 0; k < n; k++) {
        if (k + 8 < n && r->nsegs)   /* (an empty snapshot: payload_at refuses every handle) */
            __builtin_prefetch(r->segs[(pos[k + 8] >> 40) % r->nsegs].map.base + (pos[k + 8] & ((1ull << 40) - 1)));
        const uint8_t *payload = payload_at(r, pos[k], size, &rc);
        if (!payload)
            return rc;
        char *row = out + k * stride;
        if (with_header)
            put_row_header(row, (const mmj_rec_hdr *)(payload - MMJ_RECORD_HEADER_SIZE));
        memcpy(row + skip, payload, size);
    }
    return MMJ_OK;
}
