/* Crash-drill kill points inside the writer, for tests only (recovery/drills/crash.py).
 *
 * mmj_test_hook_arm(kind, nth, fd) does nothing (returns -1) unless the environment holds
 * MMJ_TEST_HOOKS=1. Armed, the nth occurrence of `kind` after arming writes one line
 * "H <where>\n" to descriptor fd and holds the process there for its SIGKILL (it exits with
 * status 4 after 30 s if none comes):
 *   MMJ_HOOK_IN_APPEND  put_record: header, payload and CRC written, the length word not
 *                       yet published (the record is torn if the process dies here);
 *   MMJ_HOOK_MID_ROLL   roll: the next segment created, the current one not yet sealed.
 * Not declared in journal.h (no API): the drill's engine process reaches it by symbol. Disarmed,
 * the cost is one load of a global per record and per roll.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_testhook.h"

int mmj_test_hook_kind;               /* 0: disarmed */
static uint64_t hook_nth, hook_seen;
static int hook_fd = -1;

int mmj_test_hook_arm(int kind, uint64_t nth, int fd)
{
    const char *enabled = getenv("MMJ_TEST_HOOKS");
    if (enabled == NULL || strcmp(enabled, "1") != 0 || nth == 0 ||
        (kind != MMJ_HOOK_IN_APPEND && kind != MMJ_HOOK_MID_ROLL))
        return -1;
    hook_nth = nth;
    hook_seen = 0;
    hook_fd = fd;
    __atomic_store_n(&mmj_test_hook_kind, kind, __ATOMIC_RELEASE);
    return 0;
}

void mmj_test_hook_hit(int kind, uint64_t seq, uint64_t segment)
{
    if (kind != mmj_test_hook_kind || ++hook_seen != hook_nth)
        return;
    char line[128];
    int n = kind == MMJ_HOOK_IN_APPEND
        ? snprintf(line, sizeof line, "H in-append seq %llu segment %llu\n", (unsigned long long)seq,
                   (unsigned long long)segment)
        : snprintf(line, sizeof line, "H mid-roll to segment %llu at seq %llu\n",
                   (unsigned long long)segment, (unsigned long long)seq);
    if (write(hook_fd, line, (size_t)n) != n)
        _exit(5);
    sleep(30);
    _exit(4);
}
