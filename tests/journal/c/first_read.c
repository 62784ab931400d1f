/* A C reader whose FIRST read of a journal is the one named on the command line, so a lazily
 * checked segment (opened from its summary) is checked by that very call. Built with
 * -fsanitize=address by tests/journal/test_summary_cut.py: any out-of-bounds access aborts.
 *
 * Usage: first_read DIR get SEQ | DIR scan FIRST LAST | DIR next FIRST
 * Prints "status=<name> rows=<n> seqs=<first>..<last> range=<first>..<last> stop=<reason>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

int main(int argc, char **argv)
{
    if (argc < 4)
        return fprintf(stderr, "usage: %s DIR get SEQ | scan FIRST LAST | next FIRST\n", argv[0]), 2;
    mmj_reader *r = NULL;
    int err = 0;
    int rc = mmj_reader_open(argv[1], &r, &err);
    if (rc != MMJ_OK)
        return fprintf(stderr, "open: %s\n", mmj_strerror(rc)), 1;
    uint64_t a = strtoull(argv[3], NULL, 10), b = argc > 4 ? strtoull(argv[4], NULL, 10) : a;
    uint64_t rows = 0, lo = 0, hi = 0;
    if (!strcmp(argv[2], "get")) {
        mmj_record rec;
        rc = mmj_reader_get(r, a, &rec);
        if (rc == MMJ_OK)
            rows = 1, lo = hi = rec.seq;
    } else if (!strcmp(argv[2], "scan")) {
        uint64_t cap = b >= a ? b - a + 1 : 0;
        uint64_t *seq = calloc(cap ? cap : 1, sizeof *seq);
        rc = mmj_reader_scan(r, a, b, cap, seq, NULL, NULL, NULL, NULL, NULL, NULL, &rows);
        if (rows)
            lo = seq[0], hi = seq[rows - 1];
        free(seq);
    } else {
        mmj_pos pos;
        mmj_record rec;
        rc = mmj_reader_seek(r, a, &pos);
        while (rc == MMJ_OK && (rc = mmj_reader_next(r, &pos, 0, &rec)) == MMJ_OK) {
            if (!rows++)
                lo = rec.seq;
            hi = rec.seq;
        }
    }
    uint64_t first, last, seg, off;
    int32_t reason;
    mmj_reader_range(r, &first, &last);
    mmj_reader_stop(r, &reason, &seg, &off);
    printf("status=%s rows=%llu seqs=%llu..%llu range=%llu..%llu stop=%s\n", mmj_strerror(rc),
           (unsigned long long)rows, (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)first,
           (unsigned long long)last, mmj_reason_name(reason));
    mmj_reader_close(r);
    return 0;
}
