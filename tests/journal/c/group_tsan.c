/* Group durability under ThreadSanitizer (tests/journal/test_thread_sanitizer.py): appends with pauses
 * and segment rolls, so the writer's helper thread (its group tick, hashing ahead, prefaulting and
 * preparing the next segment) runs while the appending thread changes what it reads.
 * Usage: group_tsan DIR COUNT  (exit 0 on success) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "journal.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: %s DIR COUNT\n", argv[0]), 2;
    long count = strtol(argv[2], NULL, 10);
    mmj_options opt = {.segment_size = 1 << 20, .durability = MMJ_DUR_GROUP, .group_records = 1000000,
                       .group_us = 50, .create = 1};
    mmj_writer *w = NULL;
    int err = 0;
    int rc = mmj_writer_open(argv[1], &opt, &w, NULL, &err);
    if (rc != MMJ_OK)
        return fprintf(stderr, "open: %s\n", mmj_strerror(rc)), 1;
    char payload[64] = {0};
    struct timespec pause = {0, 30000};
    for (long i = 0; i < count; i++) {
        int64_t seq = mmj_append(w, 3, payload, sizeof payload, 1000 * i, 3, 1);
        if (seq < 0)
            return fprintf(stderr, "append: %s\n", mmj_strerror((int)seq)), 1;
        if (i % 50 == 0)
            nanosleep(&pause, NULL);   /* lets the group tick find unsynced records */
    }
    rc = mmj_writer_close(w);
    if (rc != MMJ_OK)
        return fprintf(stderr, "close: %s\n", mmj_strerror(rc)), 1;
    return 0;
}
