/* mm_core/fastlane.h: the quote guard's own-fill lane in one C call, its pulls journaled and sent
 * from the plan the runner made while idle.
 *
 * The engine arms its pullable quotes (flane_armed: Engine._arm, in the OMS's order, with what
 * Engine._lane_fill reads of each); the runner plans each one's cancel (flane_sink: the ORDER_SENT
 * payload with stamp key 0 and the cancel's bytes, by armed index, the journal's reserve append
 * and the order-entry socket). flane_fire takes a whole SoupBinTCP frame and does, in C, what the
 * engine's fill lane and the runner's armed sink do in Python:
 *   - FLANE_NOT: not a fill of an armed quote that the OMS will book (the frame, the liquidity
 *     flag, the token, 0 < shares <= leaves, a price, accepted, a fill its state takes): nothing
 *     was read into any state; the engine's Python lane decides.
 *   - fsig_own_fill_evaluate on the filled quote's symbol and side (the guard hears the fill);
 *     FLANE_QUIET: no trip. FLANE_NOMEM: the guard could not record the fill (nothing changed).
 *   - FLANE_TRIPPED, OUT trip: the quotes at risk (Engine._lane_at_risk: the tripped sides, and
 *     after a fill that ends the quote neither it nor an unanswered replacement of it) in
 *     pulled[0..n_pulled); when `sink` is not NULL and there are some, each pull's ORDER_SENT
 *     (the key patched: tcp_bytes + every pull's bytes - 1, as one send) and their bytes as one
 *     buffer are handed to the sink's `send` (the shell's: audit/fastsend.h, which appends them
 *     with the journal's reserve append and sends the bytes only when every one went in), and
 *     `sent` is 1: the sink was used (the bytes went out only when status is 0). The engine
 *     then builds and books the pulls as its Python path would, and the runner books what the
 *     sink says (seqs, status, err).
 * This file reads no clock and touches no socket or file: the shell's `send` does. A sink that
 * cannot hold the pulls (records or bytes past its buffers) is not used (sent: 0): the engine's
 * Python path sends them.
 *
 * flane_fire_input is flane_fire from the shell's frame read, before the engine hears the frame:
 * once the frame is a fill the lane takes (else FLANE_NOT, nothing journaled), the input's own
 * record (VENUE_MSG: soup_seq u64, packet type u8, message type u8, raw length u16, the frame at
 * input_raw_at, zero-padded to input_size; stamped as the shell read it) is appended with the
 * sink's append first (write-ahead), then flane_fire's work. FLANE_REFUSED: the append refused it
 * (its status in input_seq), nothing else was done. The engine then hears the frame and books
 * what this call did (Engine.lane_first).
 */
#ifndef FASTLANE_H
#define FASTLANE_H

#include <stdint.h>
#include "fastsig.h"

enum { FLANE_NOT = 0, FLANE_QUIET = 1, FLANE_TRIPPED = 2, FLANE_NOMEM = -1, FLANE_REFUSED = -2 };
enum { FLANE_MAX = 64, FLANE_TOKEN = 14, FLANE_RECORDS_MAX = 16384, FLANE_DATA_MAX = 4096, FLANE_INPUT_MAX = 256 };

/* journal.h's mmj_append_reserve, the writer as void * (the journal's own module owns the type) */
typedef int64_t (*flane_append_fn)(void *w, uint32_t rtype, const char *payload, uint64_t len,
                                   int64_t ts_ns, uint32_t ts_source, uint32_t clock_state);
/* audit/fastsend.h's fsend_append_send (the same signature, the append as flane_append_fn) */
typedef uint32_t (*flane_send_fn)(void *writer, flane_append_fn append, uint32_t rtype,
                                  const uint8_t *const *records, const uint32_t *lens, uint32_t n,
                                  uint32_t ts_source, uint32_t clock_state, int32_t fd,
                                  const uint8_t *data, uint32_t dlen,
                                  int64_t *seqs, int64_t *status, int32_t *err, int64_t *entered_ns);

typedef struct flane_sink {             /* the runner's */
    flane_send_fn send;                 /* appends then sends (the shell's C) */
    void *writer;                       /* the journal's writer, open */
    flane_append_fn append;             /* its reserve append (a cancel may use the reserve) */
    int32_t fd;                         /* the order-entry socket, connected */
    uint32_t rtype;                     /* ORDER_SENT */
    uint32_t ts_source;                 /* USER */
    uint32_t clock_state;               /* every record's: the last journaled sample's */
    uint32_t tcp_bytes;                 /* bytes sent on fd so far (mod 2^32): the key's base */
    uint32_t tskey_at;                  /* the stamp key's offset in an ORDER_SENT payload */
    const uint8_t *payload[64];         /* by armed index: ORDER_SENT with stamp key 0 */
    uint32_t payload_len[64];
    const uint8_t *packet[64];          /* by armed index: the cancel's bytes */
    uint32_t packet_len[64];
    uint32_t input_rtype;               /* flane_fire_input's record: VENUE_MSG */
    uint32_t input_size;                /* its payload's size, at most FLANE_INPUT_MAX (0: no input) */
    uint32_t input_raw_at;              /* the frame's offset in it */
    /* OUT of flane_fire_input: the input's sequence, or the refused append's status */
    int64_t input_seq;
    /* OUT, when sent (each cleared by every fire that reaches the sink) */
    uint32_t n_appended;                /* records appended, in pull order */
    uint32_t key;                       /* the stamp key every one carries */
    int64_t seqs[64];
    int64_t status;                     /* 0, or the refused append's (nothing was sent) */
    int32_t err;                        /* 0, or the send's errno */
    int64_t send_entered_ns;            /* CLOCK_MONOTONIC just before the send, 0: none */
} flane_sink;

typedef struct flane_armed {            /* the engine's */
    uint32_t n;                         /* armed quotes, at most 64 */
    char token[896];                    /* 64 x 14: each as on the wire, space-padded */
    char orig_token[896];               /* the order it replaces, space-padded (spaces: none) */
    uint32_t symbol[64];
    uint8_t bid[64];                    /* 1: a buy */
    uint8_t acked[64];
    uint8_t legal_full[64];             /* a fill of all its leaves is a transition its state takes */
    uint8_t legal_partial[64];
    int64_t leaves[64];
    /* OUT */
    uint32_t filled;                    /* the filled quote's index */
    uint8_t full;                       /* the fill ends it */
    uint8_t sent;                       /* the sink was used (its status says whether bytes went) */
    uint32_t n_pulled;
    uint32_t pulled[64];                /* armed indexes at risk, in the armed order */
} flane_armed;

int flane_fire(fsig *g, flane_armed *armed, flane_sink *sink, const uint8_t *frame, uint32_t len,
               int64_t now_ns, fsig_trip *trip);

/* g, armed, sink, frame, len, now_ns, trip: as flane_fire (sink not NULL); soup_seq: the frame's
 * SoupBinTCP sequence; ts_ns, ts_source: the input record's stamp as the shell read the frame */
int flane_fire_input(fsig *g, flane_armed *armed, flane_sink *sink, const uint8_t *frame, uint32_t len,
                     int64_t now_ns, fsig_trip *trip, uint64_t soup_seq, int64_t ts_ns, uint32_t ts_source);

#endif
