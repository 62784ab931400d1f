/* Test-only kill points inside the writer (journal_testhook.c). */
#ifndef MMJ_TESTHOOK_H
#define MMJ_TESTHOOK_H
#include <stdint.h>

#define MMJ_HOOK_IN_APPEND 1
#define MMJ_HOOK_MID_ROLL 2

extern int mmj_test_hook_kind;
int mmj_test_hook_arm(int kind, uint64_t nth, int fd);
void mmj_test_hook_hit(int kind, uint64_t seq, uint64_t segment);

#define MMJ_TEST_HOOK(kind, seq, segment) \
    do { if (__builtin_expect(mmj_test_hook_kind == (kind), 0)) mmj_test_hook_hit((kind), (seq), (segment)); } while (0)
#endif
