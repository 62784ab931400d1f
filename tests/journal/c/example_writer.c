/* A C program using the journal library without Python: open (creating) a journal, append
 * single records and one batch, read them back with a reader, close, print a summary.
 *
 * Usage: example_writer DIR COUNT   (exit status 0 on success; errors are printed by name)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

static int fail(const char *what, int status)
{
    fprintf(stderr, "%s: %s\n", what, mmj_strerror(status));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: %s DIR COUNT\n", argv[0]), 2;
    const char *dir = argv[1];
    long count = strtol(argv[2], NULL, 10);
    mmj_options opt = {.segment_size = 65536, .durability = MMJ_DUR_GROUP, .checkpoint_every = 32, .create = 1};
    mmj_writer *w = NULL;
    mmj_recovery rec;
    int err = 0;
    int rc = mmj_writer_open(dir, &opt, &w, &rec, &err);
    if (rc != MMJ_OK)
        return fail("open", rc);
    char payload[64];
    for (long i = 0; i < count; i++) {
        int n = snprintf(payload, sizeof payload, "c-record %ld", i);
        int64_t seq = mmj_append(w, 3 /* MD_PACKET */, payload, (uint64_t)n, 1000 * i, 3 /* USER */, 1);
        if (seq < 0)
            return fail("append", (int)seq);
    }
    /* a batch of four 12-byte TIMER payloads (u32 timer_id, i64 now_ns), packed */
    char batch[48];
    int64_t stamps[4];
    for (int k = 0; k < 4; k++) {
        uint32_t id = (uint32_t)k;
        int64_t now = 7000 + k;
        memcpy(batch + 12 * k, &id, 4);
        memcpy(batch + 12 * k + 4, &now, 8);
        stamps[k] = now;
    }
    uint64_t first = 0, written = 0;
    rc = mmj_append_batch(w, 13 /* TIMER */, batch, 12, NULL, 4, stamps, 0, 3, 1, &first, &written);
    if (rc != MMJ_OK)
        return fail("append_batch", rc);
    uint64_t next = mmj_writer_next_seq(w);
    rc = mmj_writer_close(w);
    if (rc != MMJ_OK)
        return fail("close", rc);

    mmj_reader *r = NULL;
    rc = mmj_reader_open(dir, &r, &err);
    if (rc != MMJ_OK)
        return fail("reader", rc);
    mmj_record got;
    rc = mmj_reader_get(r, 1, &got);
    if (rc != MMJ_OK || got.length != strlen("c-record 0") || memcmp(got.payload, "c-record 0", got.length))
        return fail("get 1", rc ? rc : MMJ_E_CORRUPT);
    uint64_t lo, hi;
    mmj_reader_range(r, &lo, &hi);
    mmj_reader_close(r);
    mmj_verify_report v;
    rc = mmj_verify(dir, &v, &err);
    if (rc != MMJ_OK)
        return fail("verify", rc);
    printf("next_seq=%llu batch_first=%llu range=%llu..%llu verify_ok=%d\n", (unsigned long long)next,
           (unsigned long long)first, (unsigned long long)lo, (unsigned long long)hi, v.ok);
    return v.ok ? 0 : 1;
}
