/* Write-ahead send for C callers in the process (audit/_fastsend.c): the engine's own-fill lane
 * (mm_core/fastlane.h) hands its records and bytes to this through the runner's sink, so the
 * engine's C reads no clock and touches no socket or file itself.
 *
 * fsend_append_send appends each record with `append` (a journal's append: journal.h's
 * mmj_append_reserve, the writer as void *, from Journal.c_reserve_append), each stamped
 * CLOCK_REALTIME as it goes in, stopping at the first refusal; only when every one went in, it
 * sends `data` on `fd` as socket.sendall does (EINTR retried). It returns how many records were
 * appended, their sequences in seqs[]; *status is 0 or the refused append's status (nothing is
 * sent then), *err 0 or the send's errno, *entered_ns CLOCK_MONOTONIC just before the send (0
 * when nothing was sent). Called through cffi with the GIL released: it touches no Python object.
 */
#ifndef MMAUDIT_FASTSEND_H
#define MMAUDIT_FASTSEND_H

#include <stdint.h>

typedef int64_t (*fsend_append_fn)(void *w, uint32_t rtype, const char *payload, uint64_t len,
                                   int64_t ts_ns, uint32_t ts_source, uint32_t clock_state);

uint32_t fsend_append_send(void *writer, fsend_append_fn append, uint32_t rtype,
                           const uint8_t *const *records, const uint32_t *lens, uint32_t n,
                           uint32_t ts_source, uint32_t clock_state, int32_t fd,
                           const uint8_t *data, uint32_t dlen,
                           int64_t *seqs, int64_t *status, int32_t *err, int64_t *entered_ns);

#endif
