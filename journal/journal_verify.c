/* verify(): check a journal end to end — headers, every record, the hash chain at every
 * CHECKPOINT and SEAL, seals against the next header, and zero bytes after each segment's end —
 * and name the first thing that is altered or missing.
 *
 * Read-only; never repairs. Knows the on-disk format; nothing about payload meaning.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
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
            int sealed = verify_records(&m, version, salt, &seq, chain, &end, out);
            int last = i + 1 == n;
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
    free(idx);
    close(dirfd);
    return rc;
}
