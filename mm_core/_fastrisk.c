/* fastrisk: the risk gateway's order-path windows (see fastrisk.h). */
#include "fastrisk.h"

#include <stdlib.h>
#include <string.h>

typedef struct { int64_t ts, price; } frk_pt;

/* A ring of (time, price) points: a queue popped at both ends, pushed at the back. */
typedef struct { frk_pt *buf; size_t cap, head, len; } frk_ring;

typedef struct {
    int64_t symbol_id;
    frk_ring q[2][2];       /* [is_buy][0 max, 1 min] */
} frk_side;

typedef struct { int64_t symbol_id, is_buy, price, qty, last; } frk_dup;

struct frk {
    int64_t rate_window, max_rate[2], drift_window, dup_window;   /* max_rate[enter] */
    frk_ring rate[2];                       /* [enter]: modifies, submits (times in .ts) */
    frk_side *sides;                        /* one per symbol seen, in order of first sight */
    size_t n_sides, cap_sides;
    uint32_t *side_index;                   /* open addressing: 1 + index into sides, 0 empty */
    size_t side_icap;
    frk_dup *dups;                          /* in insertion order */
    size_t n_dups, cap_dups;
    uint32_t *dup_index;                    /* 1 + index into dups, 0 empty */
    size_t dup_icap;
    int64_t purge_at;
    struct {                                /* the order frk_check passed last, for frk_commit */
        int enter, is_buy, dup;
        frk_side *side;
        int64_t now, price, qty, symbol_id;
        size_t dup_at;                      /* its duplicate row, or n_dups for a new one */
    } p;
    int64_t value;
};

static int in_range(int64_t v) { return v >= -FRK_LIMIT && v <= FRK_LIMIT; }

static uint64_t mix(uint64_t h) {           /* splitmix64's finaliser */
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27; h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

/* ------------------------------------------------------------------------------ rings */
static frk_pt *ring_at(const frk_ring *r, size_t i) { return &r->buf[(r->head + i) & (r->cap - 1)]; }

static int ring_reserve(frk_ring *r, size_t n) {       /* room for n points in all */
    if (n <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 8;
    while (cap < n)
        cap *= 2;
    frk_pt *buf = malloc(cap * sizeof *buf);
    if (!buf)
        return 1;
    for (size_t i = 0; i < r->len; i++)
        buf[i] = *ring_at(r, i);
    free(r->buf);
    r->buf = buf;
    r->cap = cap;
    r->head = 0;
    return 0;
}

static void ring_push(frk_ring *r, int64_t ts, int64_t price) {    /* room reserved */
    frk_pt *p = &r->buf[(r->head + r->len++) & (r->cap - 1)];
    p->ts = ts;
    p->price = price;
}

static void ring_expire(frk_ring *r, int64_t horizon) {            /* popleft while ts <= horizon */
    while (r->len && r->buf[r->head].ts <= horizon) {
        r->head = (r->head + 1) & (r->cap - 1);
        r->len--;
    }
}

static int ring_load(frk_ring *r, const int64_t *pairs, size_t n, size_t stride) {
    if (ring_reserve(r, n))
        return FRK_NOMEM;
    r->head = 0;
    r->len = 0;
    for (size_t i = 0; i < n; i++)
        ring_push(r, pairs[i * stride], stride > 1 ? pairs[i * stride + 1] : 0);
    return FRK_PASS;
}

static void ring_copy(const frk_ring *r, int64_t *out, size_t stride) {
    for (size_t i = 0; i < r->len; i++) {
        const frk_pt *p = ring_at(r, i);
        out[i * stride] = p->ts;
        if (stride > 1)
            out[i * stride + 1] = p->price;
    }
}

/* ----------------------------------------------------------------- open-addressed indexes */
/* Rebuilds an index of `icap` slots (a power of two) over n rows hashed by `hash`. */
static void index_fill(uint32_t *index, size_t icap, size_t n, uint64_t (*hash)(const void *, size_t),
                       const void *rows) {
    memset(index, 0, icap * sizeof *index);
    for (size_t i = 0; i < n; i++) {
        size_t s = hash(rows, i) & (icap - 1);
        while (index[s])
            s = (s + 1) & (icap - 1);
        index[s] = (uint32_t)(i + 1);
    }
}

/* Room in an index for n rows at a load of at most a half; 1 when out of memory. */
static int index_reserve(uint32_t **index, size_t *icap, size_t n, uint64_t (*hash)(const void *, size_t),
                         const void *rows, size_t have) {
    if (2 * n <= *icap)
        return 0;
    size_t cap = *icap ? *icap : 16;
    while (2 * n > cap)
        cap *= 2;
    if (cap > ((size_t)1 << 32))
        return 1;
    uint32_t *fresh = malloc(cap * sizeof *fresh);
    if (!fresh)
        return 1;
    index_fill(fresh, cap, have, hash, rows);
    free(*index);
    *index = fresh;
    *icap = cap;
    return 0;
}

static int grow(void **rows, size_t *cap, size_t n, size_t size) {
    if (n <= *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : 16;
    while (c < n)
        c *= 2;
    void *fresh = realloc(*rows, c * size);
    if (!fresh)
        return 1;
    *rows = fresh;
    *cap = c;
    return 0;
}

static uint64_t side_hash_of(int64_t symbol_id) { return mix((uint64_t)symbol_id); }
static uint64_t side_hash(const void *rows, size_t i) { return side_hash_of(((const frk_side *)rows)[i].symbol_id); }

static uint64_t dup_hash_of(int64_t symbol_id, int64_t is_buy, int64_t price, int64_t qty) {
    return mix(mix(mix((uint64_t)symbol_id * 2 + (uint64_t)is_buy) ^ (uint64_t)price) ^ (uint64_t)qty);
}
static uint64_t dup_hash(const void *rows, size_t i) {
    const frk_dup *d = &((const frk_dup *)rows)[i];
    return dup_hash_of(d->symbol_id, d->is_buy, d->price, d->qty);
}

static frk_side *side_find(const frk *w, int64_t symbol_id) {
    if (!w->side_icap)
        return NULL;
    for (size_t s = side_hash_of(symbol_id) & (w->side_icap - 1); w->side_index[s]; s = (s + 1) & (w->side_icap - 1))
        if (w->sides[w->side_index[s] - 1].symbol_id == symbol_id)
            return &w->sides[w->side_index[s] - 1];
    return NULL;
}

static frk_side *side_get(frk *w, int64_t symbol_id) {  /* found or added; NULL out of memory */
    frk_side *side = side_find(w, symbol_id);
    if (side)
        return side;
    if (grow((void **)&w->sides, &w->cap_sides, w->n_sides + 1, sizeof *w->sides) ||
        index_reserve(&w->side_index, &w->side_icap, w->n_sides + 1, side_hash, w->sides, w->n_sides))
        return NULL;
    side = &w->sides[w->n_sides];
    memset(side, 0, sizeof *side);
    side->symbol_id = symbol_id;
    size_t s = side_hash_of(symbol_id) & (w->side_icap - 1);
    while (w->side_index[s])
        s = (s + 1) & (w->side_icap - 1);
    w->side_index[s] = (uint32_t)++w->n_sides;
    return side;
}

/* The duplicate row of a key, or n_dups; *slot: where a new one's index entry goes. */
static size_t dup_find(const frk *w, int64_t symbol_id, int64_t is_buy, int64_t price, int64_t qty,
                       size_t *slot) {
    size_t s = dup_hash_of(symbol_id, is_buy, price, qty) & (w->dup_icap - 1);
    for (; w->dup_index[s]; s = (s + 1) & (w->dup_icap - 1)) {
        const frk_dup *d = &w->dups[w->dup_index[s] - 1];
        if (d->symbol_id == symbol_id && d->is_buy == is_buy && d->price == price && d->qty == qty) {
            *slot = s;
            return w->dup_index[s] - 1;
        }
    }
    *slot = s;
    return w->n_dups;
}

static int dup_reserve(frk *w, size_t n) {
    return grow((void **)&w->dups, &w->cap_dups, n, sizeof *w->dups) ||
           index_reserve(&w->dup_index, &w->dup_icap, n, dup_hash, w->dups, w->n_dups);
}

/* --------------------------------------------------------------------------------- API */
frk *frk_new(void) {
    frk *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->purge_at = FRK_DUP_PURGE;
    if (dup_reserve(w, 1)) {
        frk_free(w);
        return NULL;
    }
    return w;
}

void frk_free(frk *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_sides; i++)
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < 2; k++)
                free(w->sides[i].q[b][k].buf);
    free(w->rate[0].buf);
    free(w->rate[1].buf);
    free(w->sides);
    free(w->side_index);
    free(w->dups);
    free(w->dup_index);
    free(w);
}

int frk_set_limits(frk *w, int64_t rate_window, int64_t max_submits, int64_t max_modifies,
                   int64_t drift_window, int64_t dup_window) {
    int64_t v[5] = {rate_window, max_submits, max_modifies, drift_window, dup_window};
    for (int i = 0; i < 5; i++)
        if (v[i] < 0 || v[i] > FRK_LIMIT)
            return FRK_RANGE;
    w->rate_window = rate_window;
    w->max_rate[1] = max_submits;
    w->max_rate[0] = max_modifies;
    w->drift_window = drift_window;
    w->dup_window = dup_window;
    return FRK_PASS;
}

int64_t frk_rate(frk *w, int enter, int64_t now) {
    if (!in_range(now))
        return -1;
    frk_ring *r = &w->rate[enter != 0];
    ring_expire(r, now - w->rate_window);
    return (int64_t)r->len;
}

int frk_check(frk *w, int enter, int64_t now, int64_t symbol_id, int is_buy, int64_t price,
              int64_t qty, int64_t drift_band) {
    enter = enter != 0;
    is_buy = is_buy != 0;
    if (!in_range(now) || !in_range(symbol_id) || !in_range(price) || !in_range(qty) || !in_range(drift_band))
        return FRK_RANGE;
    frk_ring *rate = &w->rate[enter];
    frk_side *side = side_get(w, symbol_id);
    if (!side || ring_reserve(rate, rate->len + 1))
        return FRK_NOMEM;
    frk_ring *dmax = &side->q[is_buy][0], *dmin = &side->q[is_buy][1];
    if (ring_reserve(dmax, dmax->len + 1) || ring_reserve(dmin, dmin->len + 1) ||
        dup_reserve(w, w->n_dups + 1))
        return FRK_NOMEM;

    ring_expire(rate, now - w->rate_window);
    if ((int64_t)rate->len >= w->max_rate[enter]) {
        w->value = (int64_t)rate->len;
        return FRK_RATE;
    }
    int64_t horizon = now - w->drift_window;
    ring_expire(dmax, horizon);
    ring_expire(dmin, horizon);
    if (dmax->len || dmin->len) {
        if (!dmax->len || !dmin->len)       /* both or neither: the queues were pushed together */
            return FRK_EMPTY;
        int64_t high = dmax->buf[dmax->head].price, low = dmin->buf[dmin->head].price;
        int64_t spread = (price > high ? price : high) - (price < low ? price : low);
        if (spread > drift_band) {
            w->value = spread;
            return FRK_DRIFT;
        }
    }
    int dup = enter && w->dup_window;
    size_t at = w->n_dups, slot;
    if (dup) {
        at = dup_find(w, symbol_id, is_buy, price, qty, &slot);
        if (at < w->n_dups && now - w->dups[at].last < w->dup_window) {
            w->value = now - w->dups[at].last;
            return FRK_DUPLICATE;
        }
    }
    w->p.enter = enter, w->p.is_buy = is_buy, w->p.dup = dup, w->p.side = side, w->p.now = now;
    w->p.price = price, w->p.qty = qty, w->p.symbol_id = symbol_id, w->p.dup_at = at;
    return FRK_PASS;
}

static void dup_purge(frk *w, int64_t now) {
    int64_t horizon = now - w->dup_window;
    size_t kept = 0;
    for (size_t i = 0; i < w->n_dups; i++)
        if (w->dups[i].last > horizon)
            w->dups[kept++] = w->dups[i];
    w->n_dups = kept;
    index_fill(w->dup_index, w->dup_icap, kept, dup_hash, w->dups);
    w->purge_at = 2 * (int64_t)kept > FRK_DUP_PURGE ? 2 * (int64_t)kept : FRK_DUP_PURGE;
}

void frk_commit(frk *w) {
    int64_t now = w->p.now, price = w->p.price;
    ring_push(&w->rate[w->p.enter], now, 0);
    frk_ring *dmax = &w->p.side->q[w->p.is_buy][0], *dmin = &w->p.side->q[w->p.is_buy][1];
    while (dmax->len && ring_at(dmax, dmax->len - 1)->price <= price)
        dmax->len--;
    ring_push(dmax, now, price);
    while (dmin->len && ring_at(dmin, dmin->len - 1)->price >= price)
        dmin->len--;
    ring_push(dmin, now, price);
    if (!w->p.dup)
        return;
    if (w->p.dup_at < w->n_dups) {
        w->dups[w->p.dup_at].last = now;
    } else {
        size_t slot;
        dup_find(w, w->p.symbol_id, w->p.is_buy, price, w->p.qty, &slot);
        w->dups[w->n_dups] = (frk_dup){w->p.symbol_id, w->p.is_buy, price, w->p.qty, now};
        w->dup_index[slot] = (uint32_t)++w->n_dups;
    }
    if ((int64_t)w->n_dups >= w->purge_at)
        dup_purge(w, now);
}

int64_t frk_value(const frk *w) { return w->value; }

/* ---------------------------------------------------------------------------- snapshots */
size_t frk_rate_len(const frk *w, int enter) { return w->rate[enter != 0].len; }
void frk_rate_copy(const frk *w, int enter, int64_t *out) { ring_copy(&w->rate[enter != 0], out, 1); }
int frk_rate_load(frk *w, int enter, const int64_t *times, size_t n) {
    return ring_load(&w->rate[enter != 0], times, n, 1);
}

size_t frk_drift_len(const frk *w, int64_t symbol_id, int is_buy, int which) {
    const frk_side *side = side_find(w, symbol_id);
    return side ? side->q[is_buy != 0][which != 0].len : 0;
}

void frk_drift_copy(const frk *w, int64_t symbol_id, int is_buy, int which, int64_t *out) {
    const frk_side *side = side_find(w, symbol_id);
    if (side)
        ring_copy(&side->q[is_buy != 0][which != 0], out, 2);
}

int frk_drift_load(frk *w, int64_t symbol_id, int is_buy, int which, const int64_t *pairs, size_t n) {
    frk_side *side = side_get(w, symbol_id);
    return side ? ring_load(&side->q[is_buy != 0][which != 0], pairs, n, 2) : FRK_NOMEM;
}

size_t frk_dup_len(const frk *w) { return w->n_dups; }

int64_t frk_dup_last(const frk *w, int64_t symbol_id, int is_buy, int64_t price, int64_t qty) {
    size_t slot, at = dup_find(w, symbol_id, is_buy != 0, price, qty, &slot);
    return at < w->n_dups ? w->dups[at].last : INT64_MIN;
}
int64_t frk_dup_purge_at(const frk *w) { return w->purge_at; }

void frk_dup_copy(const frk *w, int64_t *out) {
    for (size_t i = 0; i < w->n_dups; i++) {
        const frk_dup *d = &w->dups[i];
        int64_t row[5] = {d->symbol_id, d->is_buy, d->price, d->qty, d->last};
        memcpy(out + 5 * i, row, sizeof row);
    }
}

int frk_dup_load(frk *w, const int64_t *rows, size_t n, int64_t purge_at) {
    w->n_dups = 0;
    if (dup_reserve(w, n + 1))
        return FRK_NOMEM;
    index_fill(w->dup_index, w->dup_icap, 0, dup_hash, w->dups);
    for (size_t i = 0; i < n; i++) {
        const int64_t *r = rows + 5 * i;
        size_t slot;
        if (dup_find(w, r[0], r[1] != 0, r[2], r[3], &slot) < w->n_dups)
            return FRK_RANGE;                       /* a key twice */
        w->dups[w->n_dups] = (frk_dup){r[0], r[1] != 0, r[2], r[3], r[4]};
        w->dup_index[slot] = (uint32_t)++w->n_dups;
    }
    w->purge_at = purge_at;
    return FRK_PASS;
}
