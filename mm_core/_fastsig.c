/* fastsig: trade tape, quote guard and trade-flow EWMAs in C structs (fastsig.h is the
 * specification; the Python classes in trades.py, guard.py and fairvalue.py are the reference).
 * Knows nothing of Python, orders, wire formats or clocks. */
#include "fastsig.h"
#include "fastquote.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A FIFO of int64 that grows (our fill times: a deque without maxlen). */
typedef struct iq {
    int64_t *v;
    size_t head, len, cap;
} iq;

/* A FIFO of doubles with a fixed maximum length (markouts: a deque with maxlen). */
typedef struct dq {
    double *v;
    size_t head, len;
} dq;

typedef struct guard {
    uint8_t *pb;                /* prints window: aggressor buys, ring of cap prints_window + 1 */
    int64_t *pq;                /* its qtys */
    int64_t *pi;                /* its numbers among the symbol's prints (breaks leave gaps) */
    size_t ph, plen;
    int64_t printed;            /* prints seen */
    int64_t buy_vol, sell_vol;
    int64_t vbuy, vsell;        /* VPIN's open bucket */
    int64_t *imb, *net;         /* full buckets, ring of cap vpin_buckets */
    size_t vh, vlen;
    double vvalue;
    int64_t vdir, vcompleted;
    iq fills[2];                /* [0] bid side, [1] ask side */
    dq marks[2];
    int64_t trips;
} guard;

typedef struct tape_node {
    uint64_t match;
    int64_t qty, index, bucket;
    uint32_t symbol;
    uint8_t buys;
    int32_t prev, next, hnext;  /* FIFO list (oldest first) and hash chain; -1 ends */
} tape_node;

#define TAPE_NODES (FSIG_TAPE_MAX + 1)
#define TAPE_HASH 32768u

struct fsig {
    uint32_t n;
    fsig_guard_params p;
    double flow_alpha;
    guard *guards;
    double *flow_signed, *flow_abs;
    int64_t *seq;               /* prints per symbol (TradeTape.seq) */
    int64_t *until;             /* [2s] bid_until, [2s+1] ask_until */
    tape_node *nodes;
    int32_t *hash;              /* TAPE_HASH chain heads */
    int32_t head, tail, free_list;
    size_t tape_len;
    /* stage 1b (fsig_fv_init) */
    int fv_ready;
    fsig_fv_params fp;
    size_t ns;                  /* estimator states: n_imb * n_spread */
    double *d[FSIG_D_COUNT];
    size_t dn[FSIG_D_COUNT];
    int64_t *iv[FSIG_I_COUNT];
    size_t in[FSIG_I_COUNT];
    uint32_t *fol, *fol_off;    /* follower lists (config, fsig_set_followers) */
    uint32_t *seen;             /* per symbol: generation it joined p->touched */
    uint32_t seen_gen;
    /* a reprice stopped for calibration (transient, not in snapshots) */
    uint32_t pend_s;
    int64_t pend_top[4];
    double pend_m, pend_old_mid, pend_depth;
    int pend_reprice;
    int64_t pend_now;
};

/* ------------------------------------------------------------------ small containers */

static int iq_push(iq *q, int64_t x) {
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        int64_t *v = malloc(cap * sizeof *v);
        if (!v)
            return FSIG_NOMEM;
        for (size_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
    }
    q->v[(q->head + q->len) % q->cap] = x;
    q->len++;
    return FSIG_OK;
}

static int64_t iq_at(const iq *q, size_t i) { return q->v[(q->head + i) % q->cap]; }

static void iq_pop(iq *q) {
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

static double dq_at(const dq *q, size_t cap, size_t i) { return q->v[(q->head + i) % cap]; }

static void dq_push(dq *q, size_t cap, double x) {
    if (q->len == cap) {                  /* deque(maxlen): the oldest falls out */
        q->v[q->head] = x;
        q->head = (q->head + 1) % cap;
    } else {
        q->v[(q->head + q->len) % cap] = x;
        q->len++;
    }
}

/* ------------------------------------------------------------------ life cycle */

fsig *fsig_new(uint32_t n_symbols, const fsig_guard_params *p, double flow_alpha) {
    if (n_symbols < 1 || p->prints_window < 1 || p->vpin_buckets < 1 || p->vpin_bucket_volume < 1 ||
        p->markout_window < 1)
        return NULL;
    fsig *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->n = n_symbols;
    g->p = *p;
    g->flow_alpha = flow_alpha;
    g->guards = calloc(n_symbols, sizeof *g->guards);
    g->flow_signed = calloc(n_symbols, sizeof(double));
    g->flow_abs = calloc(n_symbols, sizeof(double));
    g->seq = calloc(n_symbols, sizeof(int64_t));
    g->until = calloc(2 * (size_t)n_symbols, sizeof(int64_t));
    g->nodes = calloc(TAPE_NODES, sizeof *g->nodes);
    g->hash = malloc(TAPE_HASH * sizeof *g->hash);
    int ok = g->guards && g->flow_signed && g->flow_abs && g->seq && g->until && g->nodes && g->hash;
    for (uint32_t s = 0; ok && s < n_symbols; s++) {
        guard *u = &g->guards[s];
        size_t pw = (size_t)p->prints_window + 1, nb = (size_t)p->vpin_buckets;
        size_t mw = (size_t)p->markout_window;
        u->pb = malloc(pw);
        u->pq = malloc(pw * sizeof(int64_t));
        u->pi = malloc(pw * sizeof(int64_t));
        u->imb = malloc(nb * sizeof(int64_t));
        u->net = malloc(nb * sizeof(int64_t));
        u->marks[0].v = malloc(mw * sizeof(double));
        u->marks[1].v = malloc(mw * sizeof(double));
        ok = u->pb && u->pq && u->pi && u->imb && u->net && u->marks[0].v && u->marks[1].v;
    }
    if (!ok) {
        fsig_free(g);
        return NULL;
    }
    for (size_t i = 0; i < TAPE_HASH; i++)
        g->hash[i] = -1;
    for (int32_t i = 0; i < TAPE_NODES; i++)
        g->nodes[i].next = i + 1 < TAPE_NODES ? i + 1 : -1;
    g->free_list = 0;
    g->head = g->tail = -1;
    return g;
}

void fsig_free(fsig *g) {
    if (!g)
        return;
    for (uint32_t s = 0; g->guards && s < g->n; s++) {
        guard *u = &g->guards[s];
        free(u->pb);
        free(u->pq);
        free(u->pi);
        free(u->imb);
        free(u->net);
        free(u->fills[0].v);
        free(u->fills[1].v);
        free(u->marks[0].v);
        free(u->marks[1].v);
    }
    free(g->guards);
    free(g->flow_signed);
    free(g->flow_abs);
    free(g->seq);
    free(g->until);
    free(g->nodes);
    free(g->hash);
    for (int k = 0; k < FSIG_D_COUNT; k++)
        free(g->d[k]);
    for (int k = 0; k < FSIG_I_COUNT; k++)
        free(g->iv[k]);
    free(g->fol);
    free(g->fol_off);
    free(g->seen);
    free(g);
}

double *fsig_flow_signed(fsig *g) { return g->flow_signed; }
double *fsig_flow_abs(fsig *g) { return g->flow_abs; }
int64_t *fsig_tape_seq(fsig *g) { return g->seq; }
int64_t *fsig_until(fsig *g) { return g->until; }

/* ------------------------------------------------------------------ the guard */

static void vpin_add(fsig *g, guard *u, int aggressor_buys, int64_t qty) {
    const int64_t bucket = g->p.vpin_bucket_volume;
    const size_t nb = (size_t)g->p.vpin_buckets;
    while (qty > 0) {
        int64_t room = bucket - u->vbuy - u->vsell;
        int64_t take = qty < room ? qty : room;
        if (aggressor_buys)
            u->vbuy += take;
        else
            u->vsell += take;
        qty -= take;
        if (take == room) {
            int64_t d = u->vbuy - u->vsell;
            size_t at;
            if (u->vlen == nb) {
                at = u->vh;
                u->vh = (u->vh + 1) % nb;
            } else {
                at = (u->vh + u->vlen) % nb;
                u->vlen++;
            }
            u->imb[at] = d < 0 ? -d : d;
            u->net[at] = d;
            u->vbuy = u->vsell = 0;
            u->vcompleted++;
            int64_t sum = 0, net = 0;
            for (size_t i = 0; i < u->vlen; i++) {
                sum += u->imb[(u->vh + i) % nb];
                net += u->net[(u->vh + i) % nb];
            }
            if (u->vlen == nb)
                u->vvalue = (double)sum / (double)(g->p.vpin_buckets * bucket);
            u->vdir = (net > 0) - (net < 0);
        }
    }
}

void fsig_guard_on_print(fsig *g, uint32_t symbol, int aggressor_buys, int64_t qty) {
    assert(symbol < g->n);
    guard *u = &g->guards[symbol];
    const size_t cap = (size_t)g->p.prints_window + 1;
    u->pb[(u->ph + u->plen) % cap] = (uint8_t)(aggressor_buys != 0);
    u->pq[(u->ph + u->plen) % cap] = qty;
    u->pi[(u->ph + u->plen) % cap] = u->printed++;
    u->plen++;
    if (aggressor_buys)
        u->buy_vol += qty;
    else
        u->sell_vol += qty;
    if (u->plen > (size_t)g->p.prints_window) {
        if (u->pb[u->ph])
            u->buy_vol -= u->pq[u->ph];
        else
            u->sell_vol -= u->pq[u->ph];
        u->ph = (u->ph + 1) % cap;
        u->plen--;
    }
    vpin_add(g, u, aggressor_buys, qty);
}

int fsig_reverse_print(fsig *g, uint32_t symbol, int aggressor_buys, int64_t qty, int64_t later,
                       int in_open_bucket) {
    guard *u = &g->guards[symbol];
    const size_t cap = (size_t)g->p.prints_window + 1;
    int window = 0;
    aggressor_buys = aggressor_buys != 0;
    const int64_t number = u->printed - 1 - later;      /* the print's number: found by it, as
                                                         * breaks leave gaps in the window */
    size_t i = u->plen;                                  /* position from the oldest, + 1 */
    while (i > 0 && u->pi[(u->ph + i - 1) % cap] > number)
        i--;
    if (i > 0 && u->pi[(u->ph + i - 1) % cap] == number) {
        size_t at = (u->ph + --i) % cap;
        window = u->pb[at] == aggressor_buys && u->pq[at] == qty;
        if (window) {
            for (size_t j = i; j + 1 < u->plen; j++) {     /* del prints[i]: shift the newer ones */
                size_t to = (u->ph + j) % cap, from = (u->ph + j + 1) % cap;
                u->pb[to] = u->pb[from];
                u->pq[to] = u->pq[from];
                u->pi[to] = u->pi[from];
            }
            u->plen--;
            if (aggressor_buys)
                u->buy_vol -= qty;
            else
                u->sell_vol -= qty;
        }
    }
    if (in_open_bucket) {
        if (aggressor_buys)
            u->vbuy -= qty;
        else
            u->vsell -= qty;
    }
    return window | (in_open_bucket ? 2 : 0);
}

int fsig_on_own_fill(fsig *g, uint32_t symbol, int our_side_is_bid, int64_t now_ns) {
    return iq_push(&g->guards[symbol].fills[our_side_is_bid ? 0 : 1], now_ns);
}

void fsig_on_markout(fsig *g, uint32_t symbol, int our_side_is_bid, double markout_per_share) {
    dq_push(&g->guards[symbol].marks[our_side_is_bid ? 0 : 1], (size_t)g->p.markout_window,
            markout_per_share);
}

double fsig_aggression(const fsig *g, uint32_t symbol) {
    const guard *u = &g->guards[symbol];
    int64_t total = u->buy_vol + u->sell_vol;
    if (total < g->p.aggression_min_volume)
        return 0.0;
    return (double)(u->buy_vol - u->sell_vol) / (double)total;
}

double fsig_toxicity(const fsig *g, uint32_t symbol) {
    double a = fabs(fsig_aggression(g, symbol));
    double v = g->guards[symbol].vvalue;
    return a > v ? a : v;
}

int fsig_evaluate(fsig *g, uint32_t symbol, int64_t now_ns, fsig_trip *trip) {
    const fsig_guard_params *p = &g->p;
    guard *u = &g->guards[symbol];
    int bid = 0, ask = 0;
    int64_t reasons = 0;
    double agg = fsig_aggression(g, symbol);
    if (agg >= p->aggression_threshold) {
        ask = 1;
        reasons |= FSIG_AGGRESSION;
    } else if (agg <= -p->aggression_threshold) {
        bid = 1;
        reasons |= FSIG_AGGRESSION;
    }
    int64_t horizon = now_ns - p->fill_window_ns;
    for (int i = 0; i < 2; i++) {
        iq *times = &u->fills[i];
        while (times->len && iq_at(times, 0) < horizon)
            iq_pop(times);
        if ((int64_t)times->len >= p->fill_spike_count) {
            reasons |= FSIG_FILL_SPIKE;
            if (i == 0)
                bid = 1;
            else
                ask = 1;
        }
    }
    double v = u->vvalue;
    if (v >= p->vpin_threshold) {
        reasons |= FSIG_VPIN;
        if (u->vdir >= 0)
            ask = 1;
        if (u->vdir <= 0)
            bid = 1;
    }
    const size_t mw = (size_t)p->markout_window;
    for (int i = 0; i < 2; i++) {
        dq *marks = &u->marks[i];
        if (marks->len != mw)
            continue;
        double sum = 0.0;                  /* sum(marks): left to right from the oldest */
        for (size_t j = 0; j < mw; j++)
            sum += dq_at(marks, mw, j);
        if (sum / (double)mw < -p->markout_threshold) {
            reasons |= FSIG_MARKOUT;
            marks->len = 0;
            marks->head = 0;
            if (i == 0)
                bid = 1;
            else
                ask = 1;
        }
    }
    int64_t *until = &g->until[2 * (size_t)symbol];
    int new_bid = bid && until[0] <= now_ns;
    int new_ask = ask && until[1] <= now_ns;
    if (bid)
        until[0] = now_ns + p->cooldown_ns;
    if (ask)
        until[1] = now_ns + p->cooldown_ns;
    if (!(new_bid || new_ask))
        return 0;
    u->trips++;
    trip->symbol = symbol;
    trip->bid = (uint8_t)new_bid;
    trip->ask = (uint8_t)new_ask;
    trip->pad = 0;
    trip->reasons = reasons;
    trip->aggression = agg;
    trip->vpin = v;
    return 1;
}

int fsig_own_fill_evaluate(fsig *g, uint32_t symbol, int our_side_is_bid, int64_t now_ns,
                           fsig_trip *trip) {
    if (fsig_on_own_fill(g, symbol, our_side_is_bid, now_ns) != FSIG_OK)
        return FSIG_NOMEM;
    return fsig_evaluate(g, symbol, now_ns, trip) ? FSIG_TRIPPED : FSIG_OK;
}

/* ------------------------------------------------------------------ the tape */

static uint32_t tape_slot(uint64_t match) {
    match ^= match >> 33;
    match *= 0xff51afd7ed558ccdULL;
    match ^= match >> 33;
    return (uint32_t)(match & (TAPE_HASH - 1));
}

static int32_t tape_find(const fsig *g, uint64_t match) {
    for (int32_t i = g->hash[tape_slot(match)]; i >= 0; i = g->nodes[i].hnext)
        if (g->nodes[i].match == match)
            return i;
    return -1;
}

/* Unlink node i from its hash chain and the FIFO list and return it to the free list. */
static void tape_remove(fsig *g, int32_t i) {
    tape_node *nd = &g->nodes[i];
    int32_t *link = &g->hash[tape_slot(nd->match)];
    while (*link != i)
        link = &g->nodes[*link].hnext;
    *link = nd->hnext;
    if (nd->prev >= 0)
        g->nodes[nd->prev].next = nd->next;
    else
        g->head = nd->next;
    if (nd->next >= 0)
        g->nodes[nd->next].prev = nd->prev;
    else
        g->tail = nd->prev;
    nd->next = g->free_list;
    g->free_list = i;
    g->tape_len--;
}

/* log[match] = entry: a match already there keeps its place; a new one goes last, and the
 * oldest falls off beyond FSIG_TAPE_MAX. */
static void tape_put(fsig *g, uint64_t match, uint32_t symbol, int buys, int64_t qty, int64_t index,
                     int64_t bucket) {
    int32_t i = tape_find(g, match);
    if (i < 0) {
        i = g->free_list;
        assert(i >= 0);
        tape_node *nd = &g->nodes[i];
        g->free_list = nd->next;
        nd->match = match;
        uint32_t h = tape_slot(match);
        nd->hnext = g->hash[h];
        g->hash[h] = i;
        nd->prev = g->tail;
        nd->next = -1;
        if (g->tail >= 0)
            g->nodes[g->tail].next = i;
        else
            g->head = i;
        g->tail = i;
        g->tape_len++;
    }
    tape_node *nd = &g->nodes[i];
    nd->symbol = symbol;
    nd->buys = (uint8_t)(buys != 0);
    nd->qty = qty;
    nd->index = index;
    nd->bucket = bucket;
    if (g->tape_len > FSIG_TAPE_MAX)
        tape_remove(g, g->head);
}

int fsig_on_print(fsig *g, uint32_t symbol, int aggressor_buys, int64_t qty, uint64_t match) {
    if (symbol >= g->n)
        return FSIG_BAD_PARAM;
    guard *u = &g->guards[symbol];
    int64_t before = u->vcompleted;
    fsig_guard_on_print(g, symbol, aggressor_buys, qty);
    double a = g->flow_alpha;             /* FairValueModel.on_trade */
    int64_t signed_qty = aggressor_buys ? qty : -qty;
    g->flow_signed[symbol] += a * ((double)signed_qty - g->flow_signed[symbol]);
    g->flow_abs[symbol] += a * ((double)qty - g->flow_abs[symbol]);
    int64_t k = g->seq[symbol];
    g->seq[symbol] = k + 1;
    tape_put(g, match, symbol, aggressor_buys, qty, k, u->vcompleted == before ? before : -1);
    return FSIG_OK;
}

int fsig_on_summary(fsig *g, const fmd_summary *s) {
    for (uint32_t i = 0; i < s->n_prints; i++) {
        int rc = fsig_on_print(g, s->print_symbol[i], s->print_aggressor_buys[i], s->print_qty[i],
                               s->print_match[i]);
        if (rc)
            return rc;
    }
    return FSIG_OK;
}

int fsig_break_trade(fsig *g, uint64_t match, fsig_reversal *r) {
    int32_t i = tape_find(g, match);
    if (i < 0)
        return FSIG_NOT_FOUND;
    tape_node nd = g->nodes[i];
    tape_remove(g, i);
    uint32_t s = nd.symbol;
    int64_t later = g->seq[s] - 1 - nd.index;
    double a = g->flow_alpha;             /* FairValueModel.reverse_trade */
    double w = a * pow(1.0 - a, (double)later);
    g->flow_signed[s] -= w * (double)(nd.buys ? nd.qty : -nd.qty);
    g->flow_abs[s] -= w * (double)nd.qty;
    guard *u = &g->guards[s];
    int done = fsig_reverse_print(g, s, nd.buys, nd.qty, later,
                                  nd.bucket >= 0 && nd.bucket == u->vcompleted);
    r->symbol = s;
    r->aggressor_buys = nd.buys;
    r->window = (uint8_t)(done & 1);
    r->vpin = (uint8_t)((done >> 1) & 1);
    r->pad = 0;
    r->qty = nd.qty;
    return FSIG_OK;
}

/* ------------------------------------------------------------------ fair value, vol, hedge betas */

int fsig_fv_init(fsig *g, const fsig_fv_params *p, const int64_t *ticks, const int64_t *leader,
                 const double *prior_sigma, const int64_t *hedge) {
    if (g->fv_ready || p->n_imb < 2 || p->n_spread < 1 || p->base < 0 || p->base > 2 ||
        p->calibrate_every < 0)
        return FSIG_BAD_PARAM;
    const size_t n = g->n, ns = (size_t)(p->n_imb * p->n_spread);
    const size_t est = p->calibrate_every ? n * ns : 0;
    g->fp = *p;
    g->ns = ns;
    for (int k = 0; k < FSIG_D_COUNT; k++)
        g->dn[k] = n;
    g->dn[FSIG_D_TABLES] = n * ns;
    g->dn[FSIG_D_EST_Q] = g->dn[FSIG_D_EST_R2] = est * ns;
    g->dn[FSIG_D_EST_R1] = est * 4;
    for (int k = 0; k < FSIG_I_COUNT; k++)
        g->in[k] = n;
    g->in[FSIG_I_LAST_TOP] = 4 * n;
    for (int k = 0; k < FSIG_D_COUNT; k++)
        if (g->dn[k] && !(g->d[k] = calloc(g->dn[k], sizeof(double))))
            return FSIG_NOMEM;
    for (int k = 0; k < FSIG_I_COUNT; k++)
        if (!(g->iv[k] = calloc(g->in[k], sizeof(int64_t))))
            return FSIG_NOMEM;
    for (size_t s = 0; s < n; s++) {
        g->iv[FSIG_I_TICKS][s] = ticks[s];
        g->iv[FSIG_I_LEADER][s] = leader[s];
        g->iv[FSIG_I_HEDGE][s] = hedge[s];
        g->iv[FSIG_I_EST_PREV_STATE][s] = -1;
        g->d[FSIG_D_VOL_PRIOR_VAR][s] = g->d[FSIG_D_VOL_VAR][s] = prior_sigma[s] * prior_sigma[s];
        /* vol_q as the engine builds it: int(log2(variance_per_s + 1.0) * 8) */
        g->iv[FSIG_I_VOL_Q][s] = (int64_t)(log2(fsig_variance_per_s(g, (uint32_t)s) + 1.0) * 8);
    }
    g->fv_ready = 1;
    return FSIG_OK;
}

double *fsig_fv_array(fsig *g, int which) {
    return which >= 0 && which < FSIG_D_COUNT ? g->d[which] : NULL;
}

int64_t *fsig_fv_ints(fsig *g, int which) {
    return which >= 0 && which < FSIG_I_COUNT ? g->iv[which] : NULL;
}

uint32_t fsig_priced(const fsig *g, uint32_t *symbols) {
    const double *fair = g->d[FSIG_D_FAIR];
    uint32_t k = 0;
    if (!fair)
        return 0;
    for (uint32_t s = 0; s < g->n; s++)
        if (fair[s] > 0.0)      /* false for NaN, as Python's `fair > 0` */
            symbols[k++] = s;
    return k;
}

/* EwmaBeta.update and .beta on (sxy, sxx, n) slots. */
static void beta_update(double *sxy, double *sxx, int64_t *n, double alpha, double x, double y) {
    *sxy += alpha * (x * y - *sxy);
    *sxx += alpha * (x * x - *sxx);
    *n += 1;
}

static double beta_of(double sxy, double sxx, double prior) { return sxx > 1e-18 ? sxy / sxx : prior; }

/* MicroPriceTable.spread_row. */
static int64_t spread_row(const fsig *g, int64_t spread_ticks) {
    if (spread_ticks < 1)
        return 0;
    return spread_ticks <= g->fp.n_spread ? spread_ticks - 1 : g->fp.n_spread - 1;
}

/* MicroPriceTable.position (fairvalue.imbalance_position): twice the imbalance bucket, or the odd
 * n_imb - 1 for an exact balance on the edge between the two centre buckets of an even n_imb.
 * Symmetric edges: the mirror (sizes swapped) of position p is 2 (n_imb - 1) - p. */
static int64_t imb_position(int64_t n_imb, int64_t bid_qty, int64_t ask_qty) {
    if (bid_qty < ask_qty)
        return 2 * (n_imb * bid_qty / (bid_qty + ask_qty));
    if (bid_qty > ask_qty)
        return 2 * (n_imb - 1 - n_imb * ask_qty / (bid_qty + ask_qty));
    return n_imb - 1;
}

/* fairvalue.table_value: G at an imbalance position of one spread row. */
static double table_value(const double *row, int64_t pos) {
    const double *cell = row + (pos >> 1);
    return pos & 1 ? (cell[0] + cell[1]) * 0.5 : cell[0];
}

/* MicroPriceEstimator._states: the (state, weight) pairs of (spread row, position); returns 1 or 2. */
static int est_states(int64_t n_imb, int64_t row, int64_t pos, int64_t *state, double *weight) {
    state[0] = row * n_imb + (pos >> 1);
    if (!(pos & 1)) {
        weight[0] = 1.0;
        return 1;
    }
    state[1] = state[0] + 1;
    weight[0] = weight[1] = 0.5;
    return 2;
}

/* MicroPriceEstimator.observe. */
static void observe(fsig *g, uint32_t s, int64_t bid, int64_t bid_qty, int64_t ask, int64_t ask_qty,
                    int64_t tick) {
    const int64_t n_imb = g->fp.n_imb, width = 2 * n_imb - 1;
    const size_t ns = g->ns;
    double *q = g->d[FSIG_D_EST_Q] + (size_t)s * ns * ns;
    double *r1 = g->d[FSIG_D_EST_R1] + (size_t)s * ns * 4;
    double *r2 = g->d[FSIG_D_EST_R2] + (size_t)s * ns * ns;
    int64_t *prev_state = &g->iv[FSIG_I_EST_PREV_STATE][s], *prev_mid2 = &g->iv[FSIG_I_EST_PREV_MID2][s];
    int64_t row = spread_row(g, (ask - bid) / tick);
    int64_t pos = imb_position(n_imb, bid_qty, ask_qty);
    int64_t mid2 = bid + ask;
    if (*prev_state >= 0) {
        int64_t prev_row = *prev_state / width, prev_pos = *prev_state % width;
        int64_t dm_half = (int64_t)nearbyint((double)(mid2 - *prev_mid2) / (double)tick);
        int64_t k = 0;
        if (dm_half != 0) {
            dm_half = dm_half < -2 ? -2 : dm_half > 2 ? 2 : dm_half;
            k = dm_half < 0 ? dm_half + 2 : dm_half + 1;
        }
        for (int mirrored = 0; mirrored < 2; mirrored++) {   /* the observation, then its mirror */
            int64_t ps[2], xs[2];
            double pw[2], xw[2];
            int np = est_states(n_imb, prev_row, mirrored ? width - 1 - prev_pos : prev_pos, ps, pw);
            int nx = est_states(n_imb, row, mirrored ? width - 1 - pos : pos, xs, xw);
            double *to = dm_half == 0 ? q : r2;
            for (int i = 0; i < np; i++) {
                if (dm_half != 0)
                    r1[ps[i] * 4 + (mirrored ? 3 - k : k)] += pw[i];
                for (int j = 0; j < nx; j++)
                    to[ps[i] * (int64_t)ns + xs[j]] += pw[i] * xw[j];
            }
        }
        g->iv[FSIG_I_EST_OBS][s] += 1;
    }
    *prev_state = row * width + pos;
    *prev_mid2 = mid2;
}

/* FairValueModel._lead. */
static double lead(fsig *g, uint32_t f, double f_mid, double f_old) {
    double leader_mid = g->d[FSIG_D_MIDS][g->iv[FSIG_I_LEADER][f]];
    double *ref = &g->d[FSIG_D_LEAD_REF][f];
    double *sxy = &g->d[FSIG_D_LEAD_SXY][f], *sxx = &g->d[FSIG_D_LEAD_SXX][f];
    if (leader_mid <= 0)
        return 0.0;
    if (*ref <= 0) {
        *ref = leader_mid;
        return 0.0;
    }
    if (f_mid != f_old && f_old > 0) {
        beta_update(sxy, sxx, &g->iv[FSIG_I_LEAD_N][f], g->fp.lead_alpha, leader_mid / *ref - 1.0,
                    f_mid / f_old - 1.0);
        *ref = leader_mid;
        return 0.0;
    }
    double beta = g->iv[FSIG_I_LEAD_N][f] >= g->fp.lead_min_samples
                  ? beta_of(*sxy, *sxx, g->fp.lead_prior) : g->fp.lead_prior;
    return beta * (leader_mid / *ref - 1.0) * f_mid;
}

/* The pricing half of FairValueModel.update, on the pending top. */
static double fv_price(fsig *g) {
    const uint32_t s = g->pend_s;
    const int64_t bid = g->pend_top[0], bid_qty = g->pend_top[1], ask = g->pend_top[2];
    const int64_t ask_qty = g->pend_top[3];
    const int64_t tick = g->iv[FSIG_I_TICKS][s];
    const double m = g->pend_m;
    int64_t total = bid_qty + ask_qty;
    double imb = total > 0 ? (double)bid_qty / (double)total : 0.5;
    const double *table = g->d[FSIG_D_TABLES] + (size_t)s * g->ns;
    int64_t row = spread_row(g, (ask - bid) / tick);
    double micro = m + table_value(table + row * g->fp.n_imb, imb_position(g->fp.n_imb, bid_qty, ask_qty))
                       * (double)tick;
    g->d[FSIG_D_MICRO][s] = micro;
    double half = (double)(ask - bid) * 0.5;
    double fv = g->fp.base == 0 ? micro : g->fp.base == 1 ? m
              : imb * (double)ask + (1.0 - imb) * (double)bid;
    if (g->fp.w_imbalance != 0.0)
        fv += g->fp.w_imbalance * g->pend_depth * half;
    if (g->fp.w_flow != 0.0) {
        double d = g->flow_abs[s];
        fv += g->fp.w_flow * (d > 0 ? g->flow_signed[s] / d : 0.0) * half;
    }
    if (g->iv[FSIG_I_LEADER][s] >= 0)
        fv += lead(g, s, m, g->pend_old_mid);
    g->d[FSIG_D_FAIR][s] = fv;
    return fv;
}

int fsig_fv_update(fsig *g, uint32_t symbol, int64_t bid, int64_t bid_qty, int64_t ask,
                   int64_t ask_qty, double depth_imbalance, double *fair) {
    assert(g->fv_ready);
    if (symbol >= g->n)
        return FSIG_BAD_PARAM;
    g->pend_reprice = 0;
    if (bid <= 0 || ask <= 0 || ask <= bid) {
        g->d[FSIG_D_FAIR][symbol] = 0.0;
        *fair = 0.0;
        return FSIG_OK;
    }
    double m = (double)(bid + ask) * 0.5;
    g->pend_s = symbol;
    g->pend_top[0] = bid, g->pend_top[1] = bid_qty, g->pend_top[2] = ask, g->pend_top[3] = ask_qty;
    g->pend_m = m;
    g->pend_old_mid = g->d[FSIG_D_MIDS][symbol];
    g->pend_depth = depth_imbalance;
    g->d[FSIG_D_MIDS][symbol] = m;
    if (g->fp.calibrate_every) {
        int64_t *last = &g->iv[FSIG_I_LAST_TOP][4 * (size_t)symbol];
        int64_t *has = &g->iv[FSIG_I_HAS_TOP][symbol];
        if (!*has || memcmp(last, g->pend_top, sizeof g->pend_top) != 0) {
            *has = 1;
            memcpy(last, g->pend_top, sizeof g->pend_top);
            observe(g, symbol, bid, bid_qty, ask, ask_qty, g->iv[FSIG_I_TICKS][symbol]);
            int64_t obs = g->iv[FSIG_I_EST_OBS][symbol];
            if (obs % g->fp.calibrate_every == 0 && obs)
                return FSIG_CALIBRATE;
        }
    }
    *fair = fv_price(g);
    return FSIG_OK;
}

int fsig_fv_finish(fsig *g, double *fair) {
    *fair = fv_price(g);
    return FSIG_OK;
}

double fsig_variance_per_s(const fsig *g, uint32_t s) {
    return g->d[FSIG_D_VOL_VAR][s];
}

int fsig_vol_update(fsig *g, uint32_t s, double mid, int64_t now_ns) {
    double *last_mid = &g->d[FSIG_D_VOL_LAST_MID][s];
    int64_t *last_ns = &g->iv[FSIG_I_VOL_LAST_NS][s];
    if (mid == *last_mid)
        return 0;
    if (*last_mid > 0) {
        /* VolEstimator.update's operations in its order (bit-identical) */
        double d = mid - *last_mid;
        int64_t gap = now_ns - *last_ns;
        double dt = (double)(gap > 1 ? gap : 1) / 1e9;
        double k = -expm1(-dt * g->fp.vol_rate);
        double *var = &g->d[FSIG_D_VOL_VAR][s];
        *var += k * (d * d / dt - *var);
        g->iv[FSIG_I_VOL_N][s] += 1;
    }
    *last_mid = mid;
    *last_ns = now_ns;
    return 1;
}

void fsig_hedge_observe(fsig *g, uint32_t s, double s_mid, double h_mid) {
    if (g->iv[FSIG_I_HEDGE][s] < 0 || s_mid <= 0 || h_mid <= 0)
        return;
    double *last_s = &g->d[FSIG_D_HEDGE_LAST_S][s], *last_h = &g->d[FSIG_D_HEDGE_LAST_H][s];
    if (*last_s > 0 && s_mid != *last_s)
        beta_update(&g->d[FSIG_D_HEDGE_SXY][s], &g->d[FSIG_D_HEDGE_SXX][s], &g->iv[FSIG_I_HEDGE_N][s],
                    g->fp.hedge_alpha, h_mid / *last_h - 1.0, s_mid / *last_s - 1.0);
    if (s_mid != *last_s) {
        *last_s = s_mid;
        *last_h = h_mid;
    }
}

/* The rest of Engine._reprice once fair value is known. */
static void after_reprice(fsig *g, uint32_t s, double fair, int64_t now_ns) {
    if (fair <= 0) {
        g->iv[FSIG_I_MID2][s] = 0;
        return;
    }
    int64_t mid2 = g->pend_top[0] + g->pend_top[2];
    g->iv[FSIG_I_MID2][s] = mid2;
    if (fsig_vol_update(g, s, (double)mid2 * 0.5, now_ns))
        g->iv[FSIG_I_VOL_Q][s] = (int64_t)(log2(fsig_variance_per_s(g, s) + 1.0) * 8);
    int64_t h = g->iv[FSIG_I_HEDGE][s];
    if (h >= 0)
        fsig_hedge_observe(g, s, g->d[FSIG_D_MIDS][s], g->d[FSIG_D_MIDS][h]);
}

int fsig_reprice(fsig *g, const fmd_book *b, uint32_t symbol, uint32_t depth, double decay,
                 const int64_t *own_px, const int64_t *own_qty, uint32_t n_bid, uint32_t n_ask,
                 int64_t now_ns, double *fair) {
    int64_t top[4];
    double d = own_px ? fmd_top_depth_without(b, symbol, depth, decay, own_px, own_qty, n_bid, n_ask, top)
                      : fmd_top_depth(b, symbol, depth, decay, top);
    int rc = fsig_fv_update(g, symbol, top[0], top[1], top[2], top[3], d, fair);
    if (rc == FSIG_CALIBRATE) {
        g->pend_reprice = 1;
        g->pend_now = now_ns;
        return rc;
    }
    g->pend_top[0] = top[0];
    g->pend_top[2] = top[2];
    after_reprice(g, symbol, *fair, now_ns);
    return FSIG_OK;
}

int fsig_reprice_finish(fsig *g, double *fair) {
    *fair = fv_price(g);
    if (g->pend_reprice)
        after_reprice(g, g->pend_s, *fair, g->pend_now);
    g->pend_reprice = 0;
    return FSIG_OK;
}

/* ------------------------------------------------------------------ one call per packet */

static int react_after_reprice(const fsig *g, const fmd_book *b, fsig_packet *p);

int fsig_set_followers(fsig *g, const uint32_t *fol, const uint32_t *fol_off) {
    size_t total = fol_off[g->n];
    free(g->fol);
    free(g->fol_off);
    free(g->seen);
    g->fol = malloc((total ? total : 1) * sizeof *g->fol);
    g->fol_off = malloc(((size_t)g->n + 1) * sizeof *g->fol_off);
    g->seen = calloc(g->n, sizeof *g->seen);
    if (!g->fol || !g->fol_off || !g->seen)
        return FSIG_NOMEM;
    memcpy(g->fol, fol, total * sizeof *g->fol);
    memcpy(g->fol_off, fol_off, ((size_t)g->n + 1) * sizeof *g->fol_off);
    g->seen_gen = 0;
    return FSIG_OK;
}

static void touch(fsig *g, fsig_packet *p, uint32_t s) {
    if (g->seen[s] != g->seen_gen) {
        g->seen[s] = g->seen_gen;
        p->fairs[p->n_touched] = 0.0;
        p->touched[p->n_touched++] = s;
    }
}

int fsig_on_packet(fsig *g, fmd_book *b, const uint8_t *buf, size_t len, const uint8_t *session,
                   uint64_t next_expected, fsig_packet *p) {
    assert(g->fv_ready && g->fol && "fsig_fv_init and fsig_set_followers first");
    fmd_summary *sum = p->summary;
    int rc = fmd_apply_packet(b, buf, len, session, next_expected, sum);
    if (rc == FMD_FALLBACK)
        return FSIG_FALLBACK;
    if (rc != FMD_OK)
        return FSIG_NOMEM;
    fsig_on_summary(g, sum);
    p->n_trips = p->n_touched = p->next = p->pending = 0;
    for (uint32_t i = 0; i < sum->n_printed; i++)
        p->n_trips += (uint32_t)fsig_evaluate(g, sum->printed[i], p->now_ns, &p->trips[p->n_trips]);
    if (++g->seen_gen == 0) {             /* wrapped: forget every old mark */
        memset(g->seen, 0, g->n * sizeof *g->seen);
        g->seen_gen = 1;
    }
    for (uint32_t i = 0; i < sum->n_touched; i++)
        touch(g, p, sum->touched[i]);
    for (uint32_t i = 0; i < sum->n_touched; i++) {
        uint32_t s = sum->touched[i];
        for (uint32_t k = g->fol_off[s]; k < g->fol_off[s + 1]; k++)
            touch(g, p, g->fol[k]);
    }
    if (p->n_trips)
        return FSIG_TRIPPED;
    return fsig_reprice_touched(g, b, p);
}

/* ------------------------------------------------------------------ stage 2: the reaction */

/* The risk feeds due among the touched symbols (Engine._feed_risk, the book not stale). */
static int react_feeds(const fsig_packet *p) {
    fsig_react *r = p->react;
    r->n_feed = 0;
    for (uint32_t i = 0; i < p->n_touched; i++) {
        double fair = p->fairs[i];
        if (!(fair > 0))
            continue;
        const int64_t *sent = &r->sent[(size_t)p->touched[i] * FSIG_S_N];
        int64_t price4 = (int64_t)(fair + 0.5);
        if (price4 != sent[FSIG_S_PRICE4] || sent[FSIG_S_STALE] != 0 ||
            p->now_ns - sent[FSIG_S_NS] >= r->refresh_ns)
            r->feed[r->n_feed++] = i;
    }
    return r->n_feed ? FSIG_FEED : FSIG_OK;
}

int fsig_quote_key(const fsig *g, const fmd_book *b, const fsig_react *r, uint32_t s,
                   int64_t now_ns, int64_t *key) {
    double fair = g->d[FSIG_D_FAIR][s];
    if (!(fair > 0) || r->risk_state == r->halted_state || r->halted[s])
        return 1;
    int64_t top[4];
    fmd_top_depth(b, s, 0, 0.0, top);
    int64_t held = 0;
    for (uint32_t k = r->held_off[s]; k < r->held_off[s + 1]; k++)
        held += r->pair[(size_t)r->held_of[k] * FSIG_P_N + FSIG_P_HEDGED];
    key[0] = (int64_t)(fair * 8 / (double)r->ref_tick[s]);
    key[1] = top[0];
    key[2] = top[2];
    key[3] = r->risk_state;
    key[4] = r->position[s];
    key[5] = held;
    key[6] = g->iv[FSIG_I_VOL_Q][s];
    key[7] = g->until[2 * (size_t)s] > now_ns;
    key[8] = g->until[2 * (size_t)s + 1] > now_ns;
    key[9] = (int64_t)(fsig_toxicity(g, s) * 20);
    key[10] = r->markout_n;
    key[11] = r->limits_version;
    return 0;
}

/* Whether Engine._work_side would act on this side: an absent order it would enter (a size and
 * a price), or an answered one to pull, size down in place (modify), or replace
 * unless Engine._can_wait holds it (a step of at most one tick toward the market, or more size
 * at the same price, before it rested rest_ns). */
static int side_acts(const fsig_react *r, uint32_t s, const int64_t *w, int is_buy, int64_t px,
                     int64_t qty, int64_t now_ns) {
    /* Engine._quote_denied: the enter, modify or replace would be refused before any state moved */
    int denied = r->denied[(size_t)s * 2 + (is_buy ? 0 : 1)] > now_ns;
    if (!w[FSIG_W_PRESENT])
        return qty > 0 && px > 0 && !denied;
    if (!w[FSIG_W_ANSWERED])
        return 0;
    int64_t price = w[FSIG_W_PRICE], leaves = w[FSIG_W_LEAVES];
    if (qty <= 0 || px <= 0)
        return 1;
    if (price == px && qty < leaves)
        return !denied;
    if (price == px && leaves == qty)
        return 0;
    /* a replace; refused, it pulls the order when the move was away from the market */
    int acts = !denied || (is_buy ? price > px : price < px);
    if (now_ns - w[FSIG_W_SENT] >= r->rest_ns || qty < leaves)
        return acts;
    int64_t step = is_buy ? px - price : price - px;
    int64_t low = px < price ? px : price;
    return !(step >= 0 && step <= fq_tick_at(r->half_penny[s], low)) && acts;
}

int fsig_requote_acts(const fsig_react *r, uint32_t s, int64_t bp, int64_t bq, int64_t ap, int64_t aq,
                      int64_t now_ns) {
    const int64_t *bid = &r->work[(size_t)s * 2 * FSIG_W_N], *ask = bid + FSIG_W_N;
    if (ask[FSIG_W_PRESENT] && bq && bp >= ask[FSIG_W_PRICE])
        return side_acts(r, s, ask, 0, ap, aq, now_ns);  /* the ask stays, so the bid waits (self-trade rule) */
    if (side_acts(r, s, bid, 1, bp, bq, now_ns))
        return 1;
    if (bid[FSIG_W_PRESENT] && aq && ap <= bid[FSIG_W_PRICE])
        return 0;
    return side_acts(r, s, ask, 0, ap, aq, now_ns);
}

/* Engine._price_quote of a memo miss (engine_price_quote's reads, from fsig and the mirrors; the
 * key holds position, held shares, best bid and ask, state and cool-downs). 0 and the quote in
 * q, or fq_price's error code. */
static int price_miss(const fsig *g, const fsig_react *r, uint32_t s, const int64_t *key, int64_t *q) {
    fq_quote out;
    int rc = fq_price(r->qc, g->d[FSIG_D_FAIR][s], r->half_penny[s], fsig_variance_per_s(g, s),
                      g->d[FSIG_D_VOL_PRIOR_VAR][s], key[4], key[5], fsig_toxicity(g, s),
                      r->markout[s], r->adverse[s], r->spread_mult, r->size_mult, r->collar_bps,
                      r->max_position[s], r->max_order_qty[s], r->max_order_value[s],
                      key[3] == r->reducing_state,
                      (int)key[7], (int)key[8], key[1], key[2], &out);
    if (rc)
        return rc;
    q[0] = out.bid_px;
    q[1] = out.bid_qty;
    q[2] = out.ask_px;
    q[3] = out.ask_qty;
    return 0;
}

int fsig_requote_may_act(const fsig *g, const fmd_book *b, fsig_react *r, uint32_t s, int64_t now_ns) {
    int64_t q[4] = {0, 0, 0, 0};
    int64_t key[FSIG_M_NKEY];
    if (!fsig_quote_key(g, b, r, s, now_ns, key)) {
        int64_t *m = &r->memo[(size_t)s * FSIG_M_N];
        if (!m[FSIG_M_VALID] || memcmp(key, m + FSIG_M_KEY, sizeof key) != 0) {
            if (!r->qc || price_miss(g, r, s, key, q))
                return 1;               /* Python prices it (and raises what it raises) */
            m[FSIG_M_VALID] = 1;
            memcpy(m + FSIG_M_KEY, key, sizeof key);
            memcpy(m + FSIG_M_QUOTE, q, sizeof q);
            uint32_t k = 0;
            while (k < r->n_memo && r->memo_new[k] != s)
                k++;
            if (k == r->n_memo)
                r->memo_new[r->n_memo++] = s;
        } else {
            memcpy(q, m + FSIG_M_QUOTE, sizeof q);
        }
    }
    int64_t hold = r->hold[s];          /* Engine._requote: +1 asks wait, -1 bids, 2 both */
    if (hold != 0 && hold != -1)
        q[3] = 0;
    if (hold != 0 && hold != 1)
        q[1] = 0;
    return fsig_requote_acts(r, s, q[0], q[1], q[2], q[3], now_ns);
}

/* Whether Engine._hedge of pair t (hedged in h, trading and h not halted) would send or change
 * anything. 0 for a pair at rest: a hedge in flight (decide waits for it, the hold stays), or,
 * the hold on h clear, an idle pair with no sustain timer to reset, a position past the trigger
 * whose sustain timer runs or ran out on a goal of 0 lots with nothing hedged (decide makes the
 * pair active and ends it again), or an active pair whose goal (Hedger.target, the band's
 * hysteresis) is already hedged or lacks a mid (decide waits). The same double operations in the same order
 * as the Python, built with -ffp-contract=off, give the same goal; a value Python's int() would
 * not take is left to Python. */
static int hedge_acts(const fsig *g, const fsig_react *r, uint32_t t, int64_t h, int64_t now_ns) {
    const int64_t *pair = &r->pair[(size_t)t * FSIG_P_N];
    if (pair[FSIG_P_IN_FLIGHT])
        return 0;
    if (r->hold[h] != 0)
        return 1;                       /* _hedge may clear its pair's part of it (not mirrored) */
    int64_t pos = r->position[t], apos = pos < 0 ? -pos : pos, since = pair[FSIG_P_OVER_SINCE];
    int64_t active = pair[FSIG_P_ACTIVE];
    if (apos < r->trigger) {
        if (since != -1)
            return 1;                   /* idle() or decide resets the sustain timer */
        if (!active)
            return 0;                   /* idle */
    } else if (since == -1) {
        return 1;                       /* decide starts the sustain timer */
    } else if (!active && now_ns - since < r->hedge_hold_ns) {
        return 0;                       /* the sustain timer runs */
    }
    /* active, or made active by decide (the timer ran out) */
    double s_price = g->d[FSIG_D_MIDS][t], h_price = g->d[FSIG_D_MIDS][h];
    if (s_price <= 0 || h_price <= 0)
        return !active;                 /* decide waits for both mids, the pair made active */
    if (isnan(s_price) || isnan(h_price))
        return 1;
    int64_t want = 0;
    if (apos > r->hedge_keep) {
        int64_t excess = pos - (pos > 0 ? r->hedge_keep : -r->hedge_keep);
        double prior = r->hedge_prior, max_beta = r->hedge_max_beta;
        double beta = g->iv[FSIG_I_HEDGE_N][t] >= r->hedge_min_samples
                      ? beta_of(g->d[FSIG_D_HEDGE_SXY][t], g->d[FSIG_D_HEDGE_SXX][t], prior) : prior;
        if (!(-max_beta <= beta && beta <= max_beta))
            beta = beta > 0 ? max_beta : beta < 0 ? -max_beta : 0.0;
        double ratio = beta * s_price / h_price;
        double raw = -ratio * (double)excess;
        double lots = fabs(raw) / (double)r->hedge_lot + 0.5;
        if (!(lots < 0x1p53))
            return 1;
        want = (int64_t)lots * r->hedge_lot;
        if (!(raw > 0))
            want = -want;
    }
    if (want == 0 && pair[FSIG_P_HEDGED] == 0)
        return active || pair[FSIG_P_GOAL] != 0;   /* decide ends the pair's activity (again:
                                                   the timer ran out, the goal rounds to 0) */
    if (!active)
        return 1;                       /* decide makes the pair active */
    int64_t goal = pair[FSIG_P_GOAL];
    if (want != 0 && (want > goal ? want - goal : goal - want) <= r->hedge_band)
        want = goal;
    return want != pair[FSIG_P_HEDGED];
}

/* Whether Engine._requote(s) then Engine._hedge of s's hedge targets may act or change state. */
static int symbol_acts(const fsig *g, const fmd_book *b, fsig_react *r, uint32_t s, int64_t now_ns) {
    /* REDUCING: Engine._reduce_room sizes the quote by our other working orders, not mirrored */
    if (r->quoted[s] && (r->risk_state == r->reducing_state || fsig_requote_may_act(g, b, r, s, now_ns)))
        return 1;
    for (uint32_t k = r->targets_off[s]; k < r->targets_off[s + 1]; k++) {
        uint32_t t = r->targets[k];
        int64_t h = r->hedge_id[t];
        if (r->risk_state == r->halted_state || r->halted[h]) {
            if (r->hold[h] != 0)
                return 1;               /* _hedge may clear its pair's part of it (not mirrored) */
            continue;                   /* _hedge waits: trading halted, or the instrument */
        }
        if (hedge_acts(g, r, t, h, now_ns))
            return 1;
    }
    return 0;
}

/* Whether Metrics.on_time would mature anything: a markout due, or a blocked one's mid is back. */
static int markouts_due(const fsig *g, const fsig_react *r, int64_t now_ns) {
    if (now_ns >= r->next_due_ns)
        return 1;
    for (uint32_t s = 0; s < g->n; s++)
        if (r->blocked[s] && g->iv[FSIG_I_MID2][s] > 0)
            return 1;
    return 0;
}

int fsig_react_from(const fsig *g, const fmd_book *b, fsig_packet *p, uint32_t from) {
    fsig_react *r = p->react;
    r->markouts = 0;
    if (from == 0 && markouts_due(g, r, p->now_ns)) {
        r->markouts = 1;
        r->work_at = 0;
        return FSIG_REACT;
    }
    for (uint32_t i = from; i < p->n_touched; i++)
        if (symbol_acts(g, b, r, p->touched[i], p->now_ns)) {
            r->work_at = i;
            return FSIG_REACT;
        }
    r->work_at = p->n_touched;
    return FSIG_QUIET;
}

/* After the last reprice: the feeds due, else the reaction from the first touched symbol. */
static int react_after_reprice(const fsig *g, const fmd_book *b, fsig_packet *p) {
    if (!p->react)
        return FSIG_OK;
    if (react_feeds(p) == FSIG_FEED)
        return FSIG_FEED;
    return fsig_react_from(g, b, p, 0);
}

int fsig_reprice_touched(fsig *g, const fmd_book *b, fsig_packet *p) {
    if (p->pending) {
        fsig_reprice_finish(g, &p->fairs[p->next]);
        p->pending = 0;
        p->next++;
    }
    for (; p->next < p->n_touched; p->next++) {
        uint32_t s = p->touched[p->next];
        const int64_t *px = NULL, *qty = NULL;
        uint32_t nb = 0, na = 0;
        if (p->own_px && p->own_nb[s] + p->own_na[s]) {
            px = p->own_px + p->own_off[s];
            qty = p->own_qty + p->own_off[s];
            nb = p->own_nb[s];
            na = p->own_na[s];
        }
        if (fsig_reprice(g, b, s, p->depth, p->decay, px, qty, nb, na, p->now_ns,
                         &p->fairs[p->next]) == FSIG_CALIBRATE) {
            p->pending = 1;
            return FSIG_CALIBRATE;
        }
    }
    return react_after_reprice(g, b, p);
}

/* ------------------------------------------------------------------ inspection */

void fsig_guard_info_get(const fsig *g, uint32_t symbol, fsig_guard_info *info) {
    const guard *u = &g->guards[symbol];
    info->buy_vol = u->buy_vol;
    info->sell_vol = u->sell_vol;
    info->vpin_buy = u->vbuy;
    info->vpin_sell = u->vsell;
    info->vpin_completed = u->vcompleted;
    info->vpin_direction = u->vdir;
    info->vpin_value = u->vvalue;
    info->bid_until = g->until[2 * (size_t)symbol];
    info->ask_until = g->until[2 * (size_t)symbol + 1];
    info->trips = u->trips;
    info->printed = u->printed;
    info->n_prints = (int64_t)u->plen;
    info->n_buckets = (int64_t)u->vlen;
    info->n_fills_bid = (int64_t)u->fills[0].len;
    info->n_fills_ask = (int64_t)u->fills[1].len;
    info->n_marks_bid = (int64_t)u->marks[0].len;
    info->n_marks_ask = (int64_t)u->marks[1].len;
}

void fsig_trips(const fsig *g, int64_t *trips) {
    for (uint32_t s = 0; s < g->n; s++)
        trips[s] = g->guards[s].trips;
}

void fsig_guard_arrays(const fsig *g, uint32_t symbol, uint8_t *print_buys, int64_t *print_qty,
                       int64_t *imbalances, int64_t *net, int64_t *fills_bid, int64_t *fills_ask,
                       double *marks_bid, double *marks_ask) {
    const guard *u = &g->guards[symbol];
    const size_t pc = (size_t)g->p.prints_window + 1, nb = (size_t)g->p.vpin_buckets;
    const size_t mw = (size_t)g->p.markout_window;
    for (size_t i = 0; i < u->plen; i++) {
        print_buys[i] = u->pb[(u->ph + i) % pc];
        print_qty[i] = u->pq[(u->ph + i) % pc];
    }
    for (size_t i = 0; i < u->vlen; i++) {
        imbalances[i] = u->imb[(u->vh + i) % nb];
        net[i] = u->net[(u->vh + i) % nb];
    }
    for (size_t i = 0; i < u->fills[0].len; i++)
        fills_bid[i] = iq_at(&u->fills[0], i);
    for (size_t i = 0; i < u->fills[1].len; i++)
        fills_ask[i] = iq_at(&u->fills[1], i);
    for (size_t i = 0; i < u->marks[0].len; i++)
        marks_bid[i] = dq_at(&u->marks[0], mw, i);
    for (size_t i = 0; i < u->marks[1].len; i++)
        marks_ask[i] = dq_at(&u->marks[1], mw, i);
}

void fsig_guard_print_index(const fsig *g, uint32_t symbol, int64_t *index) {
    const guard *u = &g->guards[symbol];
    const size_t pc = (size_t)g->p.prints_window + 1;
    for (size_t i = 0; i < u->plen; i++)
        index[i] = u->pi[(u->ph + i) % pc];
}

size_t fsig_tape_entries(const fsig *g, uint64_t *match, uint32_t *symbol, uint8_t *buys,
                         int64_t *qty, int64_t *index, int64_t *bucket, size_t cap) {
    size_t k = 0;
    for (int32_t i = g->head; i >= 0 && k < cap; i = g->nodes[i].next, k++) {
        const tape_node *nd = &g->nodes[i];
        match[k] = nd->match;
        symbol[k] = nd->symbol;
        buys[k] = nd->buys;
        qty[k] = nd->qty;
        index[k] = nd->index;
        bucket[k] = nd->bucket;
    }
    return k;
}

/* ------------------------------------------------------------------ snapshots */

/* One code path writes (load == 0) or reads (load == 1) every word, in one order. */
typedef struct sio {
    uint8_t *buf;
    size_t cap, pos;
    int load, err;
} sio;

static void w64(sio *io, void *p) {
    if (io->load) {
        if (io->pos + 8 > io->cap)
            io->err = FSIG_BAD_BLOB;
        else
            memcpy(p, io->buf + io->pos, 8);
    } else if (io->buf && io->pos + 8 <= io->cap) {
        memcpy(io->buf + io->pos, p, 8);
    }
    io->pos += 8;
}

/* A length word; on load it must not exceed max. */
static size_t wlen(sio *io, size_t len, size_t max) {
    uint64_t x = len;
    w64(io, &x);
    if (io->load && !io->err && x > max)
        io->err = FSIG_BAD_BLOB;
    return io->err ? 0 : (size_t)x;
}

static void serialize(fsig *g, sio *io) {
    uint64_t n = g->n;
    w64(io, &n);
    if (io->load && !io->err && n != g->n)
        io->err = FSIG_BAD_BLOB;
    const size_t pc = (size_t)g->p.prints_window + 1, nb = (size_t)g->p.vpin_buckets;
    const size_t mw = (size_t)g->p.markout_window;
    for (uint32_t s = 0; s < g->n && !io->err; s++) {
        guard *u = &g->guards[s];
        w64(io, &g->flow_signed[s]);
        w64(io, &g->flow_abs[s]);
        w64(io, &g->seq[s]);
        w64(io, &g->until[2 * (size_t)s]);
        w64(io, &g->until[2 * (size_t)s + 1]);
        int64_t *scalars[] = {&u->buy_vol, &u->sell_vol, &u->vbuy, &u->vsell, &u->vdir,
                              &u->vcompleted, &u->trips, &u->printed};
        for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++)
            w64(io, scalars[i]);
        w64(io, &u->vvalue);
        size_t plen = wlen(io, u->plen, pc - 1);
        if (io->load)
            u->ph = 0, u->plen = plen;
        for (size_t i = 0; i < plen; i++) {
            size_t at = (u->ph + i) % pc;
            int64_t b = u->pb[at];
            w64(io, &b);
            u->pb[at] = (uint8_t)(b != 0);
            w64(io, &u->pq[at]);
            w64(io, &u->pi[at]);
        }
        size_t vlen = wlen(io, u->vlen, nb);
        if (io->load)
            u->vh = 0, u->vlen = vlen;
        for (size_t i = 0; i < vlen; i++) {
            w64(io, &u->imb[(u->vh + i) % nb]);
            w64(io, &u->net[(u->vh + i) % nb]);
        }
        for (int side = 0; side < 2; side++) {
            iq *f = &u->fills[side];
            size_t len = wlen(io, f->len, SIZE_MAX / 16);
            if (io->load) {
                f->len = f->head = 0;
                for (size_t i = 0; i < len && !io->err; i++) {
                    int64_t t = 0;
                    w64(io, &t);
                    if (iq_push(f, t))
                        io->err = FSIG_NOMEM;
                }
            } else {
                for (size_t i = 0; i < len; i++) {
                    int64_t t = iq_at(f, i);
                    w64(io, &t);
                }
            }
            dq *m = &u->marks[side];
            size_t mlen = wlen(io, m->len, mw);
            if (io->load)
                m->head = 0, m->len = mlen;
            for (size_t i = 0; i < mlen; i++)
                w64(io, &m->v[(m->head + i) % mw]);
        }
    }
    uint64_t fv = (uint64_t)g->fv_ready;
    w64(io, &fv);
    if (io->load && !io->err && fv != (uint64_t)g->fv_ready)
        io->err = FSIG_BAD_BLOB;
    for (int k = 0; k < FSIG_D_COUNT && g->fv_ready && !io->err; k++)
        for (size_t j = 0; j < g->dn[k]; j++)
            w64(io, &g->d[k][j]);
    for (int k = 0; k < FSIG_I_COUNT && g->fv_ready && !io->err; k++)
        for (size_t j = 0; j < g->in[k]; j++)
            w64(io, &g->iv[k][j]);
    size_t count = wlen(io, g->tape_len, FSIG_TAPE_MAX);
    if (!io->load) {
        for (int32_t i = g->head; i >= 0; i = g->nodes[i].next) {
            tape_node *nd = &g->nodes[i];
            int64_t sym = nd->symbol, buys = nd->buys;
            w64(io, &nd->match);
            w64(io, &sym);
            w64(io, &buys);
            w64(io, &nd->qty);
            w64(io, &nd->index);
            w64(io, &nd->bucket);
        }
        return;
    }
    for (size_t k = 0; k < count && !io->err; k++) {
        uint64_t match = 0;
        int64_t sym = 0, buys = 0, qty = 0, index = 0, bucket = 0;
        w64(io, &match);
        w64(io, &sym);
        w64(io, &buys);
        w64(io, &qty);
        w64(io, &index);
        w64(io, &bucket);
        if (!io->err && (sym < 0 || sym >= (int64_t)g->n))
            io->err = FSIG_BAD_BLOB;
        if (!io->err)
            tape_put(g, match, (uint32_t)sym, (int)buys, qty, index, bucket);
    }
}

size_t fsig_save(const fsig *g, uint8_t *buf, size_t cap) {
    sio io = {buf, cap, 0, 0, 0};
    serialize((fsig *)g, &io);            /* writing only reads g */
    return io.pos;
}

int fsig_load(fsig *g, const uint8_t *buf, size_t len) {
    if (g->tape_len)                      /* a fresh fsig only: the tape is rebuilt by insertion */
        return FSIG_BAD_BLOB;
    sio io = {(uint8_t *)buf, len, 0, 1, 0};
    serialize(g, &io);
    if (!io.err && io.pos != len)
        io.err = FSIG_BAD_BLOB;
    return io.err;
}

/* A packet's due feeds into the log and the sent mirror, then its reaction (FSIG_QUIET or
 * FSIG_REACT); FSIG_FEED, nothing changed, when the log has no room or a fair value is not
 * finite (on_market would take it as a stale book: a fault, which the reaction reads). */
int fsig_defer_feeds(const fsig *g, const fmd_book *b, fsig_packet *p) {
    fsig_react *r = p->react;
    if (r->n_feed > r->flog_cap - r->n_flog)
        return FSIG_FEED;
    for (uint32_t k = 0; k < r->n_feed; k++)
        if (!isfinite(p->fairs[r->feed[k]]))
            return FSIG_FEED;
    for (uint32_t k = 0; k < r->n_feed; k++) {
        uint32_t i = r->feed[k], s = p->touched[i];
        double fair = p->fairs[i];
        int64_t *sent = &r->sent[(size_t)s * FSIG_S_N];
        sent[FSIG_S_PRICE4] = (int64_t)(fair + 0.5);
        sent[FSIG_S_STALE] = 0;
        sent[FSIG_S_NS] = p->now_ns;
        r->flog_sym[r->n_flog] = s;
        r->flog_fair[r->n_flog] = fair;
        r->flog_ns[r->n_flog++] = p->now_ns;
    }
    r->n_feed = 0;
    int rc = fsig_react_from(g, b, p, 0);
    if (rc == FSIG_QUIET)
        r->n_fed++;
    return rc;
}

/* Metrics.on_time's `late` into *late: now at or past a markout's last chance for a mid (a tenth,
 * 1 / grace_div, of its horizon past it). 0 when the time does not fit (the caller hands it back). */
static int late_at(int64_t fill_ns, int64_t horizon, int64_t grace_div, int64_t now_ns, int *late) {
    int64_t span, last_chance;
    if (horizon <= 0 || __builtin_add_overflow(horizon, horizon / grace_div, &span) ||
        __builtin_add_overflow(fill_ns, span, &last_chance))
        return 0;
    *late = now_ns >= last_chance;
    return 1;
}

/* fsig_mature's first pass: whether every markout due by now can mature in C (see fastsig.h),
 * with the sums it would leave in sums (OUT, [3 * FSIG_MK_MAX_H]) and the next due time (OUT). */
static int mature_check(const fsig *g, const fsig_react *r, int64_t now_ns, int64_t *sums,
                        int64_t *next_due) {
    const int64_t *mid2 = g->iv[FSIG_I_MID2];
    if (r->mk_h > FSIG_MK_MAX_H || r->mk_adverse >= r->mk_h || r->mk_grace_div <= 0)
        return 0;
    *next_due = r->mk_never;
    for (uint32_t h = 0; h < r->mk_h; h++) {
        int64_t *sum = &sums[3 * h];
        memcpy(sum, &r->mk_sum[3 * h], 3 * sizeof *sum);
        const int64_t horizon = r->mk_horizon[h];
        uint32_t j = r->mk_head[h];
        const uint32_t waiting_end = j + r->mk_wait[h];
        if (waiting_end < j || waiting_end > r->mk_len[h])
            return 0;
        for (; j < waiting_end; j++) {      /* they keep waiting only with no mid, in time */
            const int64_t *e = &r->mk_q[((size_t)r->mk_qoff[h] + j) * FSIG_MK_W];
            int late;
            if (e[1] < 0 || e[1] >= (int64_t)g->n || !late_at(e[0], horizon, r->mk_grace_div, now_ns, &late) ||
                late || mid2[e[1]] > 0)
                return 0;
        }
        for (; j < r->mk_len[h]; j++) {
            const int64_t *e = &r->mk_q[((size_t)r->mk_qoff[h] + j) * FSIG_MK_W];
            int64_t due, m2, d, mark;
            if (__builtin_add_overflow(e[0], horizon, &due))
                return 0;
            if (due > now_ns) {
                if (due < *next_due)
                    *next_due = due;
                break;
            }
            if (e[1] < 0 || e[1] >= (int64_t)g->n || e[4] == 0)
                return 0;                   /* no such symbol, or on_time's division by zero */
            m2 = mid2[e[1]];
            if (m2 <= 0) {                  /* it starts waiting for a mid, unless too late */
                int late;
                if (!late_at(e[0], horizon, r->mk_grace_div, now_ns, &late) || late)
                    return 0;
                continue;
            }
            if (__builtin_mul_overflow(e[3], 2, &d) || __builtin_sub_overflow(m2, d, &d) ||
                __builtin_mul_overflow(e[2], d, &mark) || __builtin_mul_overflow(mark, e[4], &mark) ||
                __builtin_add_overflow(sum[0], mark, &sum[0]) ||
                __builtin_add_overflow(sum[1], 1, &sum[1]) ||
                __builtin_add_overflow(sum[2], e[4], &sum[2]))
                return 0;
        }
    }
    return 1;
}

int fsig_mature(fsig *g, fsig_react *r, int64_t now_ns, fsig_packet *p) {
    int64_t sums[3 * FSIG_MK_MAX_H], next_due;
    if (!r->mk_h || !mature_check(g, r, now_ns, sums, &next_due))
        return FSIG_FALLBACK;
    const int64_t *mid2 = g->iv[FSIG_I_MID2];
    const uint32_t adverse = r->mk_adverse;
    uint32_t n_tripped = 0, *tripped = r->feed;     /* scratch: the symbols to evaluate, in order */
    for (uint32_t h = 0; h < r->mk_h; h++) {
        const int64_t horizon = r->mk_horizon[h];
        const uint32_t head = r->mk_head[h], waiting = r->mk_wait[h];
        uint32_t j = head + waiting, waits = waiting;
        for (; j < r->mk_len[h]; j++) {
            const int64_t *e = &r->mk_q[((size_t)r->mk_qoff[h] + j) * FSIG_MK_W];
            if (e[0] + horizon > now_ns)
                break;
            const uint32_t s = (uint32_t)e[1];
            if (mid2[s] <= 0) {             /* it waits for a mid (mature_check: in time) */
                waits++;
                r->blocked[s] = 1;
                continue;
            }
            const int64_t sign = e[2], qty = e[4];
            const int64_t mark_x2 = sign * (mid2[s] - 2 * e[3]) * qty;
            const double per_share = (double)mark_x2 / (2.0 * (double)qty);
            if (h != adverse)
                continue;
            r->mk_marked_by[s] += 1;
            if (mark_x2 < 0) {
                r->mk_adverse_n += 1;
                r->mk_adverse_by[s] += 1;
            }
            r->markout[s] = r->markout[s] + r->mk_alpha * (per_share - r->markout[s]);
            r->adverse[s] = (double)r->mk_adverse_by[s] / (double)r->mk_marked_by[s];
            fsig_on_markout(g, s, sign > 0, per_share);
            uint32_t k = 0;
            while (k < n_tripped && tripped[k] != s)
                k++;
            if (k == n_tripped)
                tripped[n_tripped++] = s;
        }
        /* the waiting ones (no mid: those that waited, then the new) back at the front, in
         * fill order, right before the first entry not due: the matured ones drop out */
        uint32_t front = j;
        if (waits) {
            int64_t *q = &r->mk_q[(size_t)r->mk_qoff[h] * FSIG_MK_W];
            for (uint32_t i = j; i-- > head;) {
                const int64_t *e = &q[(size_t)i * FSIG_MK_W];
                if (mid2[e[1]] > 0)
                    continue;
                if (--front != i)
                    memmove(&q[(size_t)front * FSIG_MK_W], e, FSIG_MK_W * sizeof *e);
            }
        }
        r->mk_head[h] = front;
        r->mk_wait[h] = waits;
    }
    memcpy(r->mk_sum, sums, 3 * r->mk_h * sizeof *sums);
    r->markout_n = sums[3 * adverse + 1];
    r->next_due_ns = next_due;
    r->mk_matured++;
    p->n_trips = 0;
    for (uint32_t k = 0; k < n_tripped; k++)
        p->n_trips += (uint32_t)fsig_evaluate(g, tripped[k], now_ns, &p->trips[p->n_trips]);
    return p->n_trips ? FSIG_TRIPPED : FSIG_OK;
}

void fsig_run_offsets(uint64_t *off, uint32_t n) {
    for (uint32_t i = 1; i <= n; i++)
        off[i] += off[i - 1];
}

int fsig_on_packets(fsig *g, fmd_book *b, const uint8_t *buf, const uint64_t *off,
                    const int64_t *ts, uint32_t from, uint32_t count, const uint8_t *session,
                    uint64_t next_expected, int64_t now, int64_t stop_after, fsig_packet *p,
                    uint32_t *done, uint64_t *messages) {
    uint64_t n_messages = 0;
    int rc = FSIG_QUIET;
    uint32_t i = from;
    for (; i < count; i++) {
        int64_t at = ts[i] > now ? ts[i] : now;
        if (at > stop_after) {
            /* past the clock's deadline (Engine.on_event judges the clock first): Python takes
             * it, at the time of the packets before it */
            p->now_ns = now;
            rc = FSIG_FALLBACK;
            break;
        }
        if (p->react && at >= p->react->next_due_ns) {
            /* markouts due by this packet mature before it (Engine._on_market_data): here, or
             * Python takes the packet at the time of the ones before it */
            rc = fsig_mature(g, p->react, at, p);
            if (rc != FSIG_OK) {
                p->now_ns = now;
                rc = rc == FSIG_TRIPPED ? FSIG_MATURED_TRIPPED : FSIG_FALLBACK;
                break;
            }
        }
        now = at;
        p->now_ns = now;
        rc = fsig_on_packet(g, b, buf + off[i], (size_t)(off[i + 1] - off[i]), session,
                            next_expected, p);
        if (rc == FSIG_FEED && !p->summary->n_errors && p->react->flog_cap)
            rc = fsig_defer_feeds(g, b, p);
        if (rc != FSIG_QUIET || p->summary->n_errors)
            break;
        next_expected += p->summary->n_messages;
        n_messages += p->summary->n_messages;
    }
    *done = i - from;
    *messages = n_messages;
    return rc;
}
