/* fastmd: level-2 books in C arrays and the one-call MoldUDP64/ITCH packet path (fastmd.h is
 * the specification). Knows nothing of Python, sockets, clocks, fair value or our own orders. */
#include "fastmd.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct fmd_level {
    int64_t price;
    int64_t qty;
} fmd_level;

/* One side of one symbol: levels sorted so that the best is last (bids ascending, asks
 * descending), which keeps inserts and removals near the top cheap. */
typedef struct fmd_side {
    fmd_level *lv;
    uint32_t n;
    uint32_t cap;
} fmd_side;

typedef struct fmd_order {
    uint64_t ref;
    int64_t price;
    int64_t qty;
    uint32_t symbol;
    uint8_t is_buy;
    uint8_t used;
} fmd_order;

struct fmd_book {
    uint32_t n_symbols;
    uint32_t watch;
    fmd_side *sides;            /* 2 per symbol: [2s] bids, [2s+1] asks */
    uint8_t *dirty;
    uint8_t *known;
    uint32_t *touch_gen;        /* per symbol: packet generation of its last touch / print */
    uint32_t *print_gen;
    uint32_t gen;
    fmd_order *slots;           /* open addressing, power-of-two capacity, load <= 1/2 */
    size_t cap;
    size_t count;
    uint64_t unknown_refs;
};

/* ------------------------------------------------------------------ order map */

static size_t slot_of(uint64_t ref, size_t cap)
{
    return (size_t)((ref * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

static fmd_order *find(const fmd_book *b, uint64_t ref)
{
    size_t mask = b->cap - 1;
    for (size_t i = slot_of(ref, b->cap);; i = (i + 1) & mask) {
        fmd_order *o = &b->slots[i];
        if (!o->used)
            return NULL;
        if (o->ref == ref)
            return o;
    }
}

static int grow(fmd_book *b, size_t want)
{
    if (want * 2 <= b->cap)
        return FMD_OK;
    size_t cap = b->cap;
    while (want * 2 > cap)
        cap *= 2;
    fmd_order *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return FMD_NOMEM;
    for (size_t i = 0; i < b->cap; i++) {
        fmd_order *o = &b->slots[i];
        if (!o->used)
            continue;
        size_t j = slot_of(o->ref, cap);
        while (slots[j].used)
            j = (j + 1) & (cap - 1);
        slots[j] = *o;
    }
    free(b->slots);
    b->slots = slots;
    b->cap = cap;
    return FMD_OK;
}

/* Remove the order at *o, shifting back the probe chain behind it (no tombstones). */
static void erase(fmd_book *b, fmd_order *o)
{
    size_t mask = b->cap - 1;
    size_t i = (size_t)(o - b->slots);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!b->slots[j].used)
            break;
        size_t home = slot_of(b->slots[j].ref, b->cap);
        /* move j into the hole at i when its home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            b->slots[i] = b->slots[j];
            i = j;
        }
    }
    b->slots[i].used = 0;
    b->count--;
}

/* ------------------------------------------------------------------ levels */

/* Index of price in the side, or where it would go; *found set when present. Bids ascending,
 * asks descending: `better(x, y)` is x > y for bids and x < y for asks. */
static uint32_t level_pos(const fmd_side *sd, int is_buy, int64_t price, int *found)
{
    uint32_t lo = 0, hi = sd->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t p = sd->lv[mid].price;
        if (p == price) {
            *found = 1;
            return mid;
        }
        if (is_buy ? p < price : p > price)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* Book._mark: flag the symbol when price is within the watched top levels of its side. */
static void mark(fmd_book *b, uint32_t symbol, int is_buy, int64_t price, const fmd_side *sd)
{
    uint32_t w = b->watch;
    if (sd->n <= w) {
        b->dirty[symbol] = 1;
        return;
    }
    int64_t edge = sd->lv[sd->n - w].price;
    if (is_buy ? price >= edge : price <= edge)
        b->dirty[symbol] = 1;
}

static int level_add(fmd_book *b, uint32_t symbol, int is_buy, int64_t price, int64_t qty)
{
    fmd_side *sd = &b->sides[2 * symbol + (is_buy ? 0 : 1)];
    int found;
    uint32_t i = level_pos(sd, is_buy, price, &found);
    if (found) {
        sd->lv[i].qty += qty;
    } else {
        if (sd->n == sd->cap) {
            uint32_t cap = sd->cap ? sd->cap * 2 : 16;
            fmd_level *lv = realloc(sd->lv, cap * sizeof *lv);
            if (!lv)
                return FMD_NOMEM;
            sd->lv = lv;
            sd->cap = cap;
        }
        memmove(&sd->lv[i + 1], &sd->lv[i], (sd->n - i) * sizeof *sd->lv);
        sd->lv[i].price = price;
        sd->lv[i].qty = qty;
        sd->n++;
    }
    mark(b, symbol, is_buy, price, sd);
    return FMD_OK;
}

/* Book._reduce: take min(qty, left) shares off order *o; returns the shares done. */
static int64_t reduce(fmd_book *b, fmd_order *o, int64_t qty)
{
    int64_t left = o->qty;
    int64_t done = qty < left ? qty : left;
    uint32_t symbol = o->symbol;
    int is_buy = o->is_buy;
    fmd_side *sd = &b->sides[2 * symbol + (is_buy ? 0 : 1)];
    mark(b, symbol, is_buy, o->price, sd);
    int found;
    uint32_t i = level_pos(sd, is_buy, o->price, &found);
    assert(found);
    int64_t rest = sd->lv[i].qty - done;
    if (rest > 0) {
        sd->lv[i].qty = rest;
    } else {
        memmove(&sd->lv[i], &sd->lv[i + 1], (sd->n - i - 1) * sizeof *sd->lv);
        sd->n--;
    }
    if (done == left)
        erase(b, o);
    else
        o->qty = left - done;
    return done;
}

/* ------------------------------------------------------------------ the book API */

fmd_book *fmd_new(uint32_t n_symbols, uint32_t watch)
{
    if (n_symbols == 0 || watch == 0)
        return NULL;
    fmd_book *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->n_symbols = n_symbols;
    b->watch = watch;
    b->sides = calloc(2 * (size_t)n_symbols, sizeof *b->sides);
    b->dirty = calloc(n_symbols, 1);
    b->known = malloc(n_symbols);
    b->touch_gen = calloc(n_symbols, sizeof *b->touch_gen);
    b->print_gen = calloc(n_symbols, sizeof *b->print_gen);
    b->cap = 1024;
    b->slots = calloc(b->cap, sizeof *b->slots);
    if (!b->sides || !b->dirty || !b->known || !b->touch_gen || !b->print_gen || !b->slots) {
        fmd_free(b);
        return NULL;
    }
    memset(b->known, 1, n_symbols);
    return b;
}

void fmd_free(fmd_book *b)
{
    if (!b)
        return;
    if (b->sides)
        for (size_t i = 0; i < 2 * (size_t)b->n_symbols; i++)
            free(b->sides[i].lv);
    free(b->sides);
    free(b->dirty);
    free(b->known);
    free(b->touch_gen);
    free(b->print_gen);
    free(b->slots);
    free(b);
}

void fmd_set_known(fmd_book *b, uint32_t symbol, int known)
{
    if (symbol < b->n_symbols)
        b->known[symbol] = known ? 1 : 0;
}

uint8_t *fmd_dirty(fmd_book *b) { return b->dirty; }

uint64_t fmd_unknown_refs(const fmd_book *b) { return b->unknown_refs; }

void fmd_set_unknown_refs(fmd_book *b, uint64_t n) { b->unknown_refs = n; }

size_t fmd_order_count(const fmd_book *b) { return b->count; }

int fmd_add(fmd_book *b, uint64_t ref, int64_t symbol, int is_buy, int64_t qty, int64_t price)
{
    if (find(b, ref))
        return FMD_DUPLICATE;
    if (symbol < 0 || symbol >= (int64_t)b->n_symbols)
        return FMD_BAD_SYMBOL;
    if (qty <= 0 || price <= 0)
        return FMD_BAD_ORDER;
    if (grow(b, b->count + 1) != FMD_OK)
        return FMD_NOMEM;
    if (level_add(b, (uint32_t)symbol, is_buy, price, qty) != FMD_OK)
        return FMD_NOMEM;
    size_t mask = b->cap - 1;
    size_t i = slot_of(ref, b->cap);
    while (b->slots[i].used)
        i = (i + 1) & mask;
    fmd_order *o = &b->slots[i];
    o->ref = ref;
    o->price = price;
    o->qty = qty;
    o->symbol = (uint32_t)symbol;
    o->is_buy = is_buy ? 1 : 0;
    o->used = 1;
    b->count++;
    return FMD_OK;
}

int fmd_execute(fmd_book *b, uint64_t ref, int64_t qty, uint32_t *symbol, int *is_buy,
                int64_t *price, int64_t *done)
{
    fmd_order *o = find(b, ref);
    if (!o) {
        b->unknown_refs++;
        return FMD_UNKNOWN_REF;
    }
    *symbol = o->symbol;
    *is_buy = o->is_buy;
    *price = o->price;
    *done = reduce(b, o, qty);
    return FMD_OK;
}

int fmd_cancel(fmd_book *b, uint64_t ref, int64_t qty, uint32_t *symbol)
{
    fmd_order *o = find(b, ref);
    if (!o) {
        b->unknown_refs++;
        return FMD_UNKNOWN_REF;
    }
    *symbol = o->symbol;
    reduce(b, o, qty);
    return FMD_OK;
}

int fmd_delete(fmd_book *b, uint64_t ref, uint32_t *symbol)
{
    fmd_order *o = find(b, ref);
    if (!o) {
        b->unknown_refs++;
        return FMD_UNKNOWN_REF;
    }
    *symbol = o->symbol;
    reduce(b, o, o->qty);
    return FMD_OK;
}

int fmd_replace(fmd_book *b, uint64_t old_ref, uint64_t new_ref, int64_t qty, int64_t price,
                uint32_t *symbol)
{
    fmd_order *o = find(b, old_ref);
    if (!o) {
        b->unknown_refs++;
        return FMD_UNKNOWN_REF;
    }
    uint32_t s = o->symbol;
    int is_buy = o->is_buy;
    *symbol = s;
    reduce(b, o, o->qty);
    return fmd_add(b, new_ref, s, is_buy, qty, price);
}

void fmd_top(const fmd_book *b, uint32_t symbol, int64_t *top)
{
    if (symbol >= b->n_symbols) {
        top[0] = top[1] = top[2] = top[3] = 0;
        return;
    }
    const fmd_side *bid = &b->sides[2 * symbol], *ask = &b->sides[2 * symbol + 1];
    top[0] = bid->n ? bid->lv[bid->n - 1].price : 0;
    top[1] = bid->n ? bid->lv[bid->n - 1].qty : 0;
    top[2] = ask->n ? ask->lv[ask->n - 1].price : 0;
    top[3] = ask->n ? ask->lv[ask->n - 1].qty : 0;
}

size_t fmd_levels(const fmd_book *b, uint32_t symbol, int is_buy, size_t depth, int64_t *prices,
                  int64_t *qtys)
{
    if (symbol >= b->n_symbols)
        return 0;
    const fmd_side *sd = &b->sides[2 * symbol + (is_buy ? 0 : 1)];
    size_t k = 0;
    for (; k < depth && k < sd->n; k++) {
        prices[k] = sd->lv[sd->n - 1 - k].price;
        qtys[k] = sd->lv[sd->n - 1 - k].qty;
    }
    return k;
}

double fmd_depth_imbalance(const fmd_book *b, uint32_t symbol, uint32_t depth, double decay)
{
    if (symbol >= b->n_symbols)
        return 0.0;
    const fmd_side *bid = &b->sides[2 * symbol], *ask = &b->sides[2 * symbol + 1];
    uint32_t nb = bid->n, na = ask->n;
    uint32_t most = nb > na ? nb : na;
    uint32_t levels = depth < most ? depth : most;
    double num = 0.0, den = 0.0, w = 1.0;
    for (uint32_t i = 0; i < levels; i++) {
        int64_t bq = i < nb ? bid->lv[nb - 1 - i].qty : 0;
        int64_t aq = i < na ? ask->lv[na - 1 - i].qty : 0;
        /* Python computes w * (b - a) on exact integers then one float multiply: same here */
        num += w * (double)(bq - aq);
        den += w * (double)(bq + aq);
        w *= decay;
    }
    return den > 0 ? num / den : 0.0;
}

double fmd_top_depth(const fmd_book *b, uint32_t symbol, uint32_t depth, double decay, int64_t *top)
{
    fmd_top(b, symbol, top);
    return fmd_depth_imbalance(b, symbol, depth, decay);
}

/* Walks one side from its best level, our shares taken out, levels left empty skipped. */
typedef struct {
    const fmd_side *sd;
    int64_t i;                   /* next level index (levels are stored worst first) */
    const int64_t *px, *qty;     /* our shares per price on this side */
    uint32_t n;
} fmd_walk;

static int64_t walk_next(fmd_walk *w, int64_t *price)
{
    while (w->i >= 0) {
        const fmd_level *lv = &w->sd->lv[w->i--];
        int64_t q = lv->qty;
        for (uint32_t j = 0; j < w->n; j++)
            if (w->px[j] == lv->price)
                q -= w->qty[j];
        if (q > 0) {
            *price = lv->price;
            return q;
        }
    }
    return 0;
}

double fmd_top_depth_without(const fmd_book *b, uint32_t symbol, uint32_t depth, double decay,
                             const int64_t *own_px, const int64_t *own_qty, uint32_t n_bid,
                             uint32_t n_ask, int64_t *top)
{
    top[0] = top[1] = top[2] = top[3] = 0;
    if (symbol >= b->n_symbols)
        return 0.0;
    const fmd_side *bid = &b->sides[2 * symbol], *ask = &b->sides[2 * symbol + 1];
    fmd_walk bw = {bid, (int64_t)bid->n - 1, own_px, own_qty, n_bid};
    fmd_walk aw = {ask, (int64_t)ask->n - 1, own_px + n_bid, own_qty + n_bid, n_ask};
    int64_t bp = 0, ap = 0;
    int64_t bq = walk_next(&bw, &bp), aq = walk_next(&aw, &ap);
    top[0] = bq ? bp : 0;
    top[1] = bq;
    top[2] = aq ? ap : 0;
    top[3] = aq;
    double num = 0.0, den = 0.0, w = 1.0;
    for (uint32_t i = 0; i < depth && (bq || aq); i++) {
        num += w * (double)(bq - aq);
        den += w * (double)(bq + aq);
        w *= decay;
        bq = walk_next(&bw, &bp);
        aq = walk_next(&aw, &ap);
    }
    return den > 0 ? num / den : 0.0;
}

size_t fmd_orders(const fmd_book *b, uint64_t *refs, uint32_t *symbols, uint8_t *is_buy,
                  int64_t *prices, int64_t *qtys, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < b->cap && k < cap; i++) {
        const fmd_order *o = &b->slots[i];
        if (!o->used)
            continue;
        refs[k] = o->ref;
        symbols[k] = o->symbol;
        is_buy[k] = o->is_buy;
        prices[k] = o->price;
        qtys[k] = o->qty;
        k++;
    }
    return k;
}

void fmd_clear(fmd_book *b)
{
    for (size_t i = 0; i < 2 * (size_t)b->n_symbols; i++)
        b->sides[i].n = 0;
    memset(b->slots, 0, b->cap * sizeof *b->slots);
    b->count = 0;
}

/* ------------------------------------------------------------------ the packet path */

#define MOLD_HEADER 20

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static int ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] & 0x80)
            return 0;
    return 1;
}

/* The exact size of a message type the fast path handles, 0 for every other type. */
static size_t fast_size(uint8_t t)
{
    switch (t) {
    case 'A': return 36;
    case 'F': return 40;
    case 'E': return 31;
    case 'C': return 36;
    case 'X': return 23;
    case 'D': return 19;
    case 'U': return 35;
    case 'P': return 44;
    default: return 0;
    }
}

/* Field checks the Python codec makes (code sets, ASCII text); m points at the type byte. */
static int valid_fields(const uint8_t *m)
{
    switch (m[0]) {
    case 'A': case 'P':
        return (m[19] == 'B' || m[19] == 'S') && ascii(m + 24, 8);
    case 'F':
        return (m[19] == 'B' || m[19] == 'S') && ascii(m + 24, 8) && ascii(m + 36, 4);
    case 'C':
        return m[31] == 'Y' || m[31] == 'N';
    default:
        return 1;
    }
}

static void touch(fmd_book *b, fmd_summary *out, uint32_t s)
{
    if (b->touch_gen[s] != b->gen) {
        b->touch_gen[s] = b->gen;
        out->touched[out->n_touched++] = s;
    }
}

static void print(fmd_book *b, fmd_summary *out, uint32_t s, int aggressor_buys, int64_t qty,
                  uint64_t match)
{
    uint32_t k = out->n_prints++;
    out->print_symbol[k] = s;
    out->print_aggressor_buys[k] = (uint8_t)aggressor_buys;
    out->print_qty[k] = qty;
    out->print_match[k] = match;
    if (b->print_gen[s] != b->gen) {
        b->print_gen[s] = b->gen;
        out->printed[out->n_printed++] = s;
    }
}

static int book_error(fmd_summary *out, int rc, uint64_t ref, int64_t qty, int64_t price)
{
    if (rc == FMD_NOMEM)
        return FMD_NOMEM;
    fmd_error *e = &out->errors[out->n_errors++];
    /* fmd_add from a packet sees known symbols only, so BAD_SYMBOL cannot occur here */
    assert(rc == FMD_DUPLICATE || rc == FMD_BAD_ORDER);
    e->kind = rc == FMD_DUPLICATE ? FMD_EV_DUPLICATE : FMD_EV_BAD_ORDER;
    e->pad = 0;
    e->ref = ref;
    e->qty = qty;
    e->price = price;
    return FMD_OK;
}

/* Keep the touched symbols whose change reached the watched levels or that printed. */
static void filter_touched(fmd_book *b, fmd_summary *out)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < out->n_touched; i++) {
        uint32_t s = out->touched[i];
        if (b->dirty[s] || b->print_gen[s] == b->gen) {
            b->dirty[s] = 0;
            out->touched[kept++] = s;
        }
    }
    out->n_touched = kept;
}

int fmd_apply_packet(fmd_book *b, const uint8_t *buf, size_t len, const uint8_t *session,
                     uint64_t next_expected, fmd_summary *out)
{
    out->n_messages = out->n_touched = out->n_printed = out->n_prints = out->n_errors = 0;
    if (len < MOLD_HEADER || memcmp(buf, session, 10) != 0 || be64(buf + 10) != next_expected)
        return FMD_FALLBACK;
    uint32_t count = be16(buf + 18);
    if (count == 0 || count == 0xFFFF || count > out->events_cap)
        return FMD_FALLBACK;
    /* pass 1: validate every block; nothing changes unless the whole packet is ours */
    size_t off = MOLD_HEADER;
    for (uint32_t k = 0; k < count; k++) {
        if (off + 2 > len)
            return FMD_FALLBACK;
        size_t n = be16(buf + off);
        off += 2;
        if (n == 0 || off + n > len || fast_size(buf[off]) != n || !valid_fields(buf + off))
            return FMD_FALLBACK;
        off += n;
    }
    if (off != len)
        return FMD_FALLBACK;
    if (grow(b, b->count + count) != FMD_OK)
        return FMD_NOMEM;
    /* pass 2: apply, as mdpath.apply_messages does */
    b->gen++;
    if (b->gen == 0) {          /* wrapped: restart the generations */
        memset(b->touch_gen, 0, b->n_symbols * sizeof *b->touch_gen);
        memset(b->print_gen, 0, b->n_symbols * sizeof *b->print_gen);
        b->gen = 1;
    }
    off = MOLD_HEADER;
    for (uint32_t k = 0; k < count; k++) {
        const uint8_t *m = buf + off + 2;
        off += 2 + be16(buf + off);
        uint32_t locate = be16(m + 1), s;
        int rc, is_buy;
        int64_t price, done;
        switch (m[0]) {
        case 'A': case 'F':
            if (locate < b->n_symbols && b->known[locate]) {
                rc = fmd_add(b, be64(m + 11), locate, m[19] == 'B', be32(m + 20), be32(m + 32));
                if (rc == FMD_OK)
                    touch(b, out, locate);
                else if (book_error(out, rc, be64(m + 11), be32(m + 20), be32(m + 32)) != FMD_OK)
                    return FMD_NOMEM;
            }
            break;
        case 'E': case 'C':
            if (fmd_execute(b, be64(m + 11), be32(m + 19), &s, &is_buy, &price, &done) == FMD_OK) {
                touch(b, out, s);
                if (m[0] == 'E' || m[31] == 'Y')
                    print(b, out, s, !is_buy, done, be64(m + 23));
            }
            break;
        case 'X':
            if (fmd_cancel(b, be64(m + 11), be32(m + 19), &s) == FMD_OK)
                touch(b, out, s);
            break;
        case 'D':
            if (fmd_delete(b, be64(m + 11), &s) == FMD_OK)
                touch(b, out, s);
            break;
        case 'U':
            rc = fmd_replace(b, be64(m + 11), be64(m + 19), be32(m + 27), be32(m + 31), &s);
            if (rc != FMD_UNKNOWN_REF)  /* the original is gone even when the new order is refused */
                touch(b, out, s);
            if (rc != FMD_OK && rc != FMD_UNKNOWN_REF &&
                book_error(out, rc, be64(m + 19), be32(m + 27), be32(m + 31)) != FMD_OK)
                return FMD_NOMEM;
            break;
        case 'P':
            if (locate < b->n_symbols && b->known[locate])
                print(b, out, locate, m[19] != 'B', be32(m + 20), be64(m + 36));
            break;
        default:
            assert(0 && "validated in pass 1");
        }
    }
    filter_touched(b, out);
    out->n_messages = count;
    return FMD_OK;
}
