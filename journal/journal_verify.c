/* verify(): check a journal end to end — headers, every record, the hash chain at every
 * CHECKPOINT and SEAL, seals against the next header, and zero bytes after each segment's end —
 * and name the first thing that is altered or missing.
 *
 * Read-only; never repairs. Knows the on-disk format; nothing about payload meaning.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "journal_internal.h"

static int fail_at(mmj_verify_report *out, int reason, uint64_t segment, uint64_t offset, uint64_t seq)
{
    out->ok = 0;
    out->reason = reason;
    out->bad_segment = segment;
    out->bad_offset = offset;
    out->bad_seq = seq;
    return MMJ_OK;
}

/* Check one mapped segment's records. Returns 1 when the segment ends sealed, 0 when its data
 * ended without EOS (at *end), -1 after recording a failure in out. */
static int verify_records(const mmj_map *m, uint32_t version, const uint8_t *salt, uint64_t *seq,
                          uint8_t *chain, uint64_t *end, mmj_verify_report *out)
{
    uint32_t k = mmj_salt_check(salt, m->index);
    uint64_t off = MMJ_HEADER_SIZE, anchor_off = 0, seg_data = 0, anchor_seq = *seq;
    int last_was_seal = 0;
    mmj_record rec;
    for (;;) {
        int size = mmj_record_check(m->base, m->size, off, k, *seq, &rec);
        if (size < 0) {
            fail_at(out, -size, m->index, off, *seq);
            return -1;
        }
        if (size == 0) {
            *end = off;
            if (last_was_seal) {
                fail_at(out, MMJ_R_BAD_CONTROL, m->index, off, *seq);
                return -1;
            }
            return 0;
        }
        if (rec.flags & MMJ_FLAG_EOS) {
            if (!last_was_seal) {
                fail_at(out, MMJ_R_BAD_CONTROL, m->index, off, *seq);
                return -1;
            }
            *end = off + (uint64_t)size;
            return 1;
        }
        if (last_was_seal) {
            fail_at(out, MMJ_R_BAD_CONTROL, m->index, off, *seq);
            return -1;
        }
        if (rec.flags & MMJ_FLAG_CONTROL) {
            uint8_t expect[MMJ_HASH_SIZE];
            uint64_t count;
            mmj_chain_link(version, chain, m->base + anchor_off, off - anchor_off, expect);
            memcpy(&count, rec.payload + MMJ_HASH_SIZE, 8);
            out->checkpoints++;
            if (memcmp(expect, rec.payload, MMJ_HASH_SIZE) != 0 || count != seg_data) {
                fail_at(out, MMJ_R_CHAIN, m->index, off, *seq);
                out->chain_from_seq = anchor_seq;
                return -1;
            }
            memcpy(chain, expect, MMJ_HASH_SIZE);
            anchor_off = off;
            anchor_seq = *seq;
            out->unanchored = 0;
            last_was_seal = rec.rtype == MMJ_RTYPE_SEAL;
        } else {
            out->records++;
            out->unanchored++;
            out->last_seq = *seq;
            seg_data++;
            (*seq)++;
        }
        off += (uint64_t)size;
    }
}

/* 1 if segment `index` has nothing after its header yet: a roll in progress made it (journal.h
 * END OF SEGMENT: the next segment is created before the current one is sealed). */
static int blank_successor(int dirfd, uint64_t index)
{
    char name[64];
    uint32_t word = 1;
    mmj_segment_name(name, sizeof name, index, 0);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int blank = pread(fd, &word, sizeof word, MMJ_HEADER_SIZE) == (ssize_t)sizeof word && word == 0;
    close(fd);
    return blank;
}

/* With a live writer, segment i ended without EOS though i+1 exists: the writer may be rolling
 * (i+1 created, i not sealed yet). If i+1 is the last segment and still blank, i is the live tail
 * (returns 0: nothing wrong, stop there); otherwise the seal must be there by now (records go to
 * i+1 only after it): i is checked again from the state before it (returns its verify_records
 * result). The blank check comes first: i+1 blank, then i unsealed, means the roll had not sealed
 * i when i+1 was seen blank either. */
static int recheck_rolling(int dirfd, const mmj_map *m, uint32_t version, const uint8_t *salt, uint64_t *seq,
                           uint8_t *chain, uint64_t *end, mmj_verify_report *out, const mmj_verify_report *before,
                           uint64_t seq_before, const uint8_t *chain_before, int successor_last)
{
    int blank = successor_last && blank_successor(dirfd, m->index + 1);
    *out = *before;
    *seq = seq_before;
    memcpy(chain, chain_before, MMJ_HASH_SIZE);
    int sealed = verify_records(m, version, salt, seq, chain, end, out);
    return sealed == 0 && blank ? 2 : sealed;
}

/* The end of the journal against what LOCK (read now, after the segments) says it is (journal.h
 * THE END OF THE JOURNAL): segments removed from the end are MMJ_R_MISSING_SEGMENT. A journal
 * that grew while it was verified (a writer opened or rolled meanwhile) is not short. */
static void check_end(int dirfd, const uint64_t *idx, size_t n, int last_sealed, uint64_t seq,
                      const uint8_t *seal, mmj_verify_report *out)
{
    mmj_lock_info lock = {0};
    int fd = openat(dirfd, MMJ_LOCK_NAME, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        mmj_lock_read_info(fd, &lock);
        close(fd);
    }
    mmj_end end = {.segments = n, .last_index = n ? idx[n - 1] : 0, .last_sealed = last_sealed,
                   .next_seq = seq, .seal = seal};
    uint64_t missing = 0, *now = NULL;
    size_t n_now = 0;
    if (mmj_lock_end_check(&lock, &end, &missing) == MMJ_R_NONE)
        return;
    if (mmj_list_segments(dirfd, &now, &n_now, NULL) == MMJ_OK && n_now && (!n || now[n_now - 1] > idx[n - 1])) {
        free(now);
        return;
    }
    free(now);
    fail_at(out, MMJ_R_MISSING_SEGMENT, missing, 0, seq);
}

int mmj_verify(const char *dir, mmj_verify_report *out, int *err)
{
    int dirfd;
    uint8_t salt[MMJ_SALT_SIZE], chain[MMJ_HASH_SIZE];
    uint64_t *idx = NULL;
    size_t n = 0;
    if (err)
        *err = 0;
    if (!dir || !out)
        return MMJ_E_ARG;
    memset(out, 0, sizeof *out);
    out->ok = 1;
    int rc = mmj_open_dir(dir, &dirfd, err);
    if (rc != MMJ_OK)
        return rc;
    rc = mmj_meta_read(dirfd, salt, err);
    if (rc == MMJ_OK)
        rc = mmj_list_segments(dirfd, &idx, &n, err);
    if (rc != MMJ_OK) {
        close(dirfd);
        return rc;
    }
    int32_t live = 0, pid = 0, clean = 0;
    mmj_lock_probe(dir, &live, &pid, &clean);
    out->writer_live = live;
    mmj_genesis(salt, chain);
    uint64_t seq = 1;
    int rolling = 0;
    for (size_t i = 0; i < n && out->ok; i++) {
        mmj_map m;
        uint64_t first = 0, end = 0;
        uint8_t prev[MMJ_HASH_SIZE];
        int newer = 0;
        if (idx[i] != i) {
            fail_at(out, MMJ_R_MISSING_SEGMENT, i, 0, seq);
            break;
        }
        rc = mmj_map_segment(dirfd, idx[i], 0, &m, err);
        if (rc == MMJ_E_CORRUPT) {
            fail_at(out, MMJ_R_BAD_HEADER, idx[i], 0, seq);
            rc = MMJ_OK;
            break;
        }
        if (rc != MMJ_OK)
            break;
        out->segments++;
        uint32_t version = 0;
        int bad = mmj_header_check(&m, salt, &first, prev, &newer, &version);
        if (newer) {
            mmj_unmap(&m);
            rc = MMJ_E_VERSION;
            break;
        }
        if (bad != MMJ_R_NONE || first != seq) {
            fail_at(out, MMJ_R_BAD_HEADER, idx[i], 0, seq);
        } else if (memcmp(prev, chain, MMJ_HASH_SIZE) != 0) {
            fail_at(out, MMJ_R_PREV_SEAL, idx[i], 0, seq);
        } else {
            mmj_verify_report before = *out;
            uint64_t seq_before = seq;
            uint8_t chain_before[MMJ_HASH_SIZE];
            memcpy(chain_before, chain, MMJ_HASH_SIZE);
            int sealed = verify_records(&m, version, salt, &seq, chain, &end, out);
            int last = i + 1 == n;
            if (sealed == 0 && !last && live)
                sealed = recheck_rolling(dirfd, &m, version, salt, &seq, chain, &end, out, &before, seq_before,
                                         chain_before, i + 2 == n);
            if (sealed == 2) {          /* the live tail, its successor not begun: the end for now */
                out->last_sealed = 0;
                mmj_unmap(&m);
                rolling = 1;
                break;
            }
            if (sealed == 1) {
                uint64_t junk = mmj_first_nonzero(m.base, end, m.size);
                if (junk < m.size)
                    fail_at(out, MMJ_R_TRAILING, idx[i], junk, seq);
                out->last_sealed = 1;
            } else if (sealed == 0) {
                out->last_sealed = 0;
                if (!last) {
                    fail_at(out, MMJ_R_NO_EOS, idx[i], end, seq);
                } else if (!live) {
                    /* a live writer may be filling the bytes after the last record right now */
                    uint64_t junk = mmj_first_nonzero(m.base, end, m.size);
                    if (junk < m.size)
                        fail_at(out, MMJ_R_TORN, idx[i], end, seq);
                }
            }
        }
        mmj_unmap(&m);
    }
    if (rc == MMJ_OK && out->ok && !rolling)
        check_end(dirfd, idx, n, out->last_sealed, seq, chain, out);
    free(idx);
    close(dirfd);
    return rc;
}
