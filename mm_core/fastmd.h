/* fastmd: the compiled market-data path of the engine — one MoldUDP64 packet of ITCH 5.0
 * order-level messages in, the per-symbol level-2 books updated, a compact summary out.
 *
 * This header is the specification; mm_core/_build_fastmd.py reads the cffi cdef from it and
 * mm_core/fastbook.py is the one Python wrapper. mm_core/book.py (pure Python) is the reference:
 * every function here must leave the book exactly as the same calls on Book would
 * (tests/mm_core/test_fastbook.py proves it on random streams).
 *
 * Book model: symbols 0..n-1; per symbol and side an array of aggregated price levels; one order
 * map keyed by the day-unique ITCH order reference (open addressing, backward-shift deletion).
 * All quantities and prices are int64 (ITCH price4 and share counts fit; negative inputs are
 * rejected by fmd_add as Book.add rejects them).
 *
 * dirty[s] (fmd_dirty) is set when a change reaches the top `watch` levels of a side of symbol s
 * (Book._mark); the caller clears it.
 *
 * fmd_apply_packet applies one packet only when every one of these holds, and otherwise returns
 * FMD_FALLBACK having changed nothing (the caller then runs the Python path, which raises the
 * precise ProtocolError or handles the rarer messages):
 *   - the header's session equals `session` (10 raw bytes) and its sequence equals next_expected;
 *   - 1 <= count <= events capacity; the blocks fill the packet exactly;
 *   - every message is one of A F E C X D U P, of its exact ITCH 5.0 size, with valid codes
 *     (side B/S, printable Y/N) and ASCII text fields.
 * Per message it does what mdpath.apply_messages does: adds and trades for symbols outside the
 * known set are skipped; E and printable C executions and P trades become prints; a duplicate
 * reference or a non-positive size/price becomes an fmd_error (the message is not applied, as
 * Book raises BookError); unknown references are counted. Touched symbols are then kept only
 * when dirty or printed, and their dirty flags cleared (MarketDataPath._filter).
 */
#ifndef FASTMD_H
#define FASTMD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of every function that can fail. */
enum fmd_rc {
    FMD_OK = 0,
    FMD_FALLBACK = 1,       /* packet not applied: use the Python path */
    FMD_NOMEM = 2,          /* allocation failed; the book is unchanged */
    FMD_UNKNOWN_REF = 3,    /* no live order with this reference (counted in unknown_refs) */
    FMD_DUPLICATE = 4,      /* fmd_add: the reference is live already */
    FMD_BAD_SYMBOL = 5,     /* fmd_add: symbol outside 0..n-1 */
    FMD_BAD_ORDER = 6       /* fmd_add: qty <= 0 or price <= 0 */
};

/* Kinds of fmd_error. */
enum fmd_error_kind {
    FMD_EV_DUPLICATE = 2,   /* add of a live reference */
    FMD_EV_BAD_ORDER = 3    /* add with qty or price <= 0 */
};

typedef struct fmd_book fmd_book;

/* A message the book refused (Book raises BookError for it), in message order. */
typedef struct fmd_error {
    uint32_t kind;              /* enum fmd_error_kind */
    uint32_t pad;
    uint64_t ref;               /* the refused order reference */
    int64_t qty;                /* its qty */
    int64_t price;              /* its price */
} fmd_error;

/* What fmd_apply_packet did; the caller owns the arrays and their capacities. */
typedef struct fmd_summary {
    uint32_t n_messages;        /* OUT: messages applied (the packet's count) */
    uint32_t n_touched;         /* OUT: entries in touched */
    uint32_t n_printed;         /* OUT: entries in printed */
    uint32_t n_prints;          /* OUT: entries in the three print_ arrays */
    uint32_t n_errors;          /* OUT: entries in errors */
    uint32_t events_cap;        /* capacity of the print_ arrays and errors; a packet with more
                                   messages falls back */
    uint32_t *touched;          /* symbols whose change reached the watched levels or that printed,
                                   in first-touch order, their dirty flag cleared (n_symbols cap) */
    uint32_t *printed;          /* symbols with prints, in first-print order (n_symbols cap) */
    uint32_t *print_symbol;     /* trade prints in message order: symbol, */
    uint8_t *print_aggressor_buys;  /* 1 when the aggressor bought, */
    int64_t *print_qty;         /* shares, */
    uint64_t *print_match;      /* ITCH match number (a Broken Trade names it) */
    fmd_error *errors;          /* refused adds in message order */
} fmd_summary;

/* A book for n_symbols symbols (>= 1) watching the top `watch` (>= 1) levels; NULL on failure. */
fmd_book *fmd_new(uint32_t n_symbols, uint32_t watch);
/* Free a book from fmd_new (NULL is allowed). */
void fmd_free(fmd_book *b);
/* Mark symbol (< n_symbols) as known (1) or not (0) for fmd_apply_packet; all start known. */
void fmd_set_known(fmd_book *b, uint32_t symbol, int known);
/* The n_symbols dirty flags, owned by the book. */
uint8_t *fmd_dirty(fmd_book *b);
/* Events naming references the book never saw (or no longer holds). */
uint64_t fmd_unknown_refs(const fmd_book *b);
/* Set the unknown-reference count (restoring a snapshot). */
void fmd_set_unknown_refs(fmd_book *b, uint64_t n);
/* Live orders. */
size_t fmd_order_count(const fmd_book *b);

/* Add order `ref` (ITCH A/F). Returns FMD_OK, FMD_DUPLICATE, FMD_BAD_SYMBOL, FMD_BAD_ORDER or FMD_NOMEM. */
int fmd_add(fmd_book *b, uint64_t ref, int64_t symbol, int is_buy, int64_t qty, int64_t price);
/* Execute up to qty shares of `ref` (ITCH E/C). OUT: its symbol, side, price and the shares done.
 * Returns FMD_OK or FMD_UNKNOWN_REF. */
int fmd_execute(fmd_book *b, uint64_t ref, int64_t qty, uint32_t *symbol, int *is_buy,
                int64_t *price, int64_t *done);
/* Cancel up to qty shares of `ref` (ITCH X). OUT: its symbol. FMD_OK or FMD_UNKNOWN_REF. */
int fmd_cancel(fmd_book *b, uint64_t ref, int64_t qty, uint32_t *symbol);
/* Delete `ref` (ITCH D). OUT: its symbol. FMD_OK or FMD_UNKNOWN_REF. */
int fmd_delete(fmd_book *b, uint64_t ref, uint32_t *symbol);
/* Replace old_ref by new_ref on the same side (ITCH U): the original is removed first, then the
 * add may fail as fmd_add does. OUT: the symbol. FMD_OK, FMD_UNKNOWN_REF or an fmd_add code. */
int fmd_replace(fmd_book *b, uint64_t old_ref, uint64_t new_ref, int64_t qty, int64_t price,
                uint32_t *symbol);

/* Queries below take any symbol: one outside 0..n-1 reads as an empty book.
 * OUT top[4]: bid price, bid qty, ask price, ask qty of symbol (zeros for an empty side). */
void fmd_top(const fmd_book *b, uint32_t symbol, int64_t *top);
/* Up to depth levels of one side, best first. OUT prices[], qtys[]. Returns the count. */
size_t fmd_levels(const fmd_book *b, uint32_t symbol, int is_buy, size_t depth, int64_t *prices,
                  int64_t *qtys);
/* sum w_i (bid_i - ask_i) / sum w_i (bid_i + ask_i) over the top depth levels, w_i = decay^i
 * (Book.depth_imbalance, same operation order); 0 when both sides are empty. */
double fmd_depth_imbalance(const fmd_book *b, uint32_t symbol, uint32_t depth, double decay);
/* fmd_top and fmd_depth_imbalance in one call (depth 0: no imbalance, returns 0). OUT top[4]. */
double fmd_top_depth(const fmd_book *b, uint32_t symbol, uint32_t depth, double decay, int64_t *top);
/* fmd_top_depth over the book less our own resting shares: own_px/own_qty hold n_bid bid prices
 * and then n_ask ask prices with our shares at each; a level left with nothing of anyone else's
 * is skipped (fairvalue.without_own + multi_level_imbalance, same operation order). OUT top[4]. */
double fmd_top_depth_without(const fmd_book *b, uint32_t symbol, uint32_t depth, double decay,
                             const int64_t *own_px, const int64_t *own_qty, uint32_t n_bid,
                             uint32_t n_ask, int64_t *top);
/* Every live order in no particular order, up to cap. OUT the five arrays. Returns the count. */
size_t fmd_orders(const fmd_book *b, uint64_t *refs, uint32_t *symbols, uint8_t *is_buy,
                  int64_t *prices, int64_t *qtys, size_t cap);
/* Forget every order and level (dirty flags and unknown_refs are kept, as Book.clear). */
void fmd_clear(fmd_book *b);

/* Apply one MoldUDP64 packet (buf, len) whose first sequence must be next_expected and whose
 * session must be the 10 bytes at `session`. OUT: summary. FMD_OK, FMD_FALLBACK or FMD_NOMEM
 * (out of memory part-way: the book is then unusable and the caller must stop). */
int fmd_apply_packet(fmd_book *b, const uint8_t *buf, size_t len, const uint8_t *session,
                     uint64_t next_expected, fmd_summary *out);

#ifdef __cplusplus
}
#endif
#endif
