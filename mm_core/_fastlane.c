/* mm_core/_fastlane.c: flane_fire, the quote guard's own-fill lane and its armed pulls in one
 * call (fastlane.h says what it does and what the engine and runner do around it). */
#include <string.h>

#include "fastlane.h"

_Static_assert(sizeof(((flane_armed *)0)->token) == FLANE_MAX * FLANE_TOKEN, "armed token table size");
_Static_assert(sizeof(((flane_sink *)0)->seqs) / sizeof(int64_t) == FLANE_MAX, "sink table size");

/* an OUCH Executed in a SoupBinTCP sequenced data frame: length 41, 'S', 'E', then the token at
 * 12, shares at 26, price at 30, liquidity flag at 34 (Engine's _EXEC_* offsets) */
enum { EXEC_FRAME = 43, EXEC_TOKEN = 12, EXEC_SHARES = 26, EXEC_PRICE = 30, EXEC_FLAG = 34 };

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The armed index of the quote the frame fills, when the OMS will book the fill; -1 otherwise. */
static int lane_fill(const flane_armed *a, const uint8_t *f, uint32_t len, int *full)
{
    if (len != EXEC_FRAME || f[0] != 0 || f[1] != EXEC_FRAME - 2 || f[2] != 'S' || f[3] != 'E')
        return -1;
    if (f[EXEC_FLAG] > 127)
        return -1;
    uint32_t i = 0;
    while (i < a->n && memcmp(a->token + (size_t)i * FLANE_TOKEN, f + EXEC_TOKEN, FLANE_TOKEN) != 0)
        i++;
    if (i == a->n)
        return -1;
    int64_t qty = be32(f + EXEC_SHARES), leaves = a->leaves[i];
    *full = qty == leaves;
    if (qty <= 0 || qty > leaves || be32(f + EXEC_PRICE) == 0 || !a->acked[i] ||
        !(*full ? a->legal_full[i] : a->legal_partial[i]))
        return -1;
    return (int)i;
}

/* The quotes at risk, in the armed order (Engine._lane_at_risk). */
static void at_risk(flane_armed *a, uint32_t filled, int full, const fsig_trip *trip)
{
    const char *token = a->token + (size_t)filled * FLANE_TOKEN;
    a->n_pulled = 0;
    for (uint32_t j = 0; j < a->n; j++) {
        if (a->symbol[j] != a->symbol[filled] || !(a->bid[j] ? trip->bid : trip->ask))
            continue;
        if (full && (j == filled ||
                     (!a->acked[j] && memcmp(a->orig_token + (size_t)j * FLANE_TOKEN, token, FLANE_TOKEN) == 0)))
            continue;
        a->pulled[a->n_pulled++] = j;
    }
}

/* Every pull's ORDER_SENT (key patched) and their bytes, handed to the sink's send; 0 when the
 * sink cannot hold them (nothing handed over). */
static int send_pulls(const flane_armed *a, flane_sink *s)
{
    uint8_t data[FLANE_DATA_MAX], records[FLANE_RECORDS_MAX];
    const uint8_t *record[FLANE_MAX];
    uint32_t lens[FLANE_MAX];
    uint32_t n = 0, used = 0;
    for (uint32_t k = 0; k < a->n_pulled; k++) {
        uint32_t j = a->pulled[k];
        if (!s->packet[j] || !s->payload[j] || s->packet_len[j] > sizeof data - n ||
            s->payload_len[j] > sizeof records - used || s->tskey_at + 4 > s->payload_len[j])
            return 0;
        memcpy(data + n, s->packet[j], s->packet_len[j]);
        n += s->packet_len[j];
        memcpy(records + used, s->payload[j], s->payload_len[j]);
        record[k] = records + used;
        lens[k] = s->payload_len[j];
        used += s->payload_len[j];
    }
    if (!n || !s->send)
        return 0;
    uint32_t key = s->key = s->tcp_bytes + n - 1;          /* mod 2^32, as the socket's OPT_ID */
    for (uint32_t k = 0; k < a->n_pulled; k++) {
        uint8_t *at = (uint8_t *)record[k] + s->tskey_at;
        for (int b = 0; b < 4; b++)                        /* little-endian u4, as the catalogue's */
            at[b] = (uint8_t)(key >> (8 * b));
    }
    s->n_appended = s->send(s->writer, s->append, s->rtype, record, lens, a->n_pulled, s->ts_source,
                            s->clock_state, s->fd, data, n, s->seqs, &s->status, &s->err, &s->send_entered_ns);
    return 1;
}

/* The rest of a fire once lane_fill took the frame: the guard hears the fill of armed index i. */
static int fired(fsig *g, flane_armed *a, flane_sink *sink, int i, int full, int64_t now_ns, fsig_trip *trip)
{
    int rc = fsig_own_fill_evaluate(g, a->symbol[i], a->bid[i], now_ns, trip);
    if (rc == FSIG_NOMEM)
        return FLANE_NOMEM;
    if (rc != FSIG_TRIPPED)
        return FLANE_QUIET;
    a->filled = (uint32_t)i;
    a->full = (uint8_t)full;
    at_risk(a, (uint32_t)i, full, trip);
    if (sink && a->n_pulled)
        a->sent = (uint8_t)send_pulls(a, sink);
    return FLANE_TRIPPED;
}

int flane_fire(fsig *g, flane_armed *a, flane_sink *sink, const uint8_t *frame, uint32_t len,
               int64_t now_ns, fsig_trip *trip)
{
    int full = 0;
    a->sent = 0;
    a->n_pulled = 0;
    int i = lane_fill(a, frame, len, &full);
    if (i < 0)
        return FLANE_NOT;
    return fired(g, a, sink, i, full, now_ns, trip);
}

int flane_fire_input(fsig *g, flane_armed *a, flane_sink *s, const uint8_t *frame, uint32_t len,
                     int64_t now_ns, fsig_trip *trip, uint64_t soup_seq, int64_t ts_ns, uint32_t ts_source)
{
    int full = 0;
    a->sent = 0;
    a->n_pulled = 0;
    int i = lane_fill(a, frame, len, &full);
    if (i < 0 || !s->append || s->input_size > FLANE_INPUT_MAX || s->input_raw_at < 12 ||
        s->input_raw_at + len > s->input_size)
        return FLANE_NOT;
    uint8_t payload[FLANE_INPUT_MAX];
    memset(payload, 0, s->input_size);
    for (int b = 0; b < 8; b++)                            /* little-endian u8, as the catalogue's */
        payload[b] = (uint8_t)(soup_seq >> (8 * b));
    payload[8] = frame[2];                                 /* 'S' */
    payload[9] = frame[3];                                 /* 'E' */
    payload[10] = (uint8_t)len;
    payload[11] = (uint8_t)(len >> 8);
    memcpy(payload + s->input_raw_at, frame, len);
    /* a venue answer may use the reserve, as the runner journals every one */
    int64_t seq = s->append(s->writer, s->input_rtype, (const char *)payload, s->input_size, ts_ns, ts_source,
                            s->clock_state);
    s->input_seq = seq;
    if (seq <= 0)
        return FLANE_REFUSED;
    return fired(g, a, s, i, full, now_ns, trip);
}
