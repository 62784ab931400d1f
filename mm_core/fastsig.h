/* fastsig: the compiled signal state of the engine (stage 1 of a compiled strategy) — the trade
 * tape, the per-symbol quote guard, the trade-flow EWMAs (1a); fair value with the micro-price
 * tables and their estimator counts, lead betas, volatility and the hedger's regressions (1b); and
 * one call per market-data packet (1c) — owned by one C struct and compiled into the same cffi
 * module as fastmd, so one call applies a packet to the book and reads its fmd_summary.
 * Stage 2 decides in C when the rest of a packet's reaction (risk feed, markouts, requotes,
 * hedges) cannot act; stage 3 prices a quote memo miss in C too (fq_price, fastquote.h), and
 * fsig_on_packets takes a run of packets (replay) while they end quiet, logging the risk feeds
 * of packets whose reaction is otherwise quiet for the caller to hand over in order. Every
 * action stays in Python.
 *
 * This header is the specification; mm_core/sigkernel.py is the one Python wrapper, and
 * Engine(compiled=True), the default, runs on it. The Python classes stay the reference
 * (Engine(compiled=False) runs on them), and every function here mirrors one of their methods
 * line by line:
 *   fsig_on_print        TradeTape.on_prints, one print: SymbolGuard.on_print (aggression window,
 *                        Vpin.add with bucket splitting), FairValueModel.on_trade (flow EWMAs),
 *                        then the tape entry (match -> symbol, side, qty, print index, the VPIN
 *                        bucket it sits in whole or -1) with FIFO eviction beyond FSIG_TAPE_MAX;
 *                        a match already on the tape keeps its place and takes the new entry
 *                        (OrderedDict assignment)
 *   fsig_on_summary      fsig_on_print for every print of an fmd_summary, in message order
 *   fsig_break_trade     TradeTape.break_trade: FairValueModel.reverse_trade then
 *                        SymbolGuard.reverse_print
 *   fsig_on_own_fill     SymbolGuard.on_own_fill      fsig_on_markout  SymbolGuard.on_markout
 *   fsig_aggression      SymbolGuard.aggression       fsig_toxicity    SymbolGuard.toxicity
 *   fsig_evaluate        SymbolGuard.evaluate (same Trip fields, same cool-down and trip count)
 *   fsig_own_fill_evaluate  SymbolGuard.on_own_fill then SymbolGuard.evaluate (one call)
 *   fsig_reverse_print   SymbolGuard.reverse_print alone (component tests)
 *   fsig_mature          Engine._mature_markouts: Metrics.on_time on a copy of its queues, then
 *                        the guards' on_markout and evaluate (replay's runs of packets)
 *
 * Determinism: floats are computed with the same operations in the same order as the Python
 * reference (sums left to right from the oldest element; int/int divisions done on doubles of
 * exactly representable integers, which IEEE rounds as Python does; pow() from libm as Python's
 * float ** int calls it). The module is built without -ffast-math or -march and with
 * -ffp-contract=off, so no multiply-add is fused: results are bit-identical to the Python floats
 * (tests/mm_core/test_sig*.py prove it on random operation streams and on whole sessions).
 *
 * Snapshots: fsig_save writes every piece of state as a blob of 8-byte words in the machine's
 * byte order (a snapshot is restored on the same kind of machine), fsig_load reads one back into a fresh fsig built with the same n and
 * parameters. Both are one code path (a symmetric serializer), so they cannot drift.
 */
#ifndef FASTSIG_H
#define FASTSIG_H

#include <stddef.h>
#include <stdint.h>

#include "fastmd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of every function that can fail or stop. */
enum fsig_rc {
    FSIG_OK = 0,
    FSIG_NOT_FOUND = 1,     /* fsig_break_trade: the match is not on the tape */
    FSIG_NOMEM = 2,         /* allocation failed */
    FSIG_BAD_BLOB = 3,      /* fsig_load: truncated blob or one of another shape */
    FSIG_BAD_PARAM = 4,     /* a parameter out of range, or a symbol outside 0..n-1; nothing changed */
    FSIG_CALIBRATE = 5,     /* fsig_fv_update / fsig_reprice / fsig_on_packet: calibrate, then
                               the matching ..._finish / fsig_reprice_touched */
    FSIG_FALLBACK = 6,      /* fsig_on_packet: not applied, nothing changed */
    FSIG_TRIPPED = 7        /* fsig_on_packet: pull, then fsig_reprice_touched */
};

/* Constants (TradeTape's TAPE_MAX; the guard's reason bits). */
enum fsig_const {
    FSIG_TAPE_MAX = 16384,
    FSIG_AGGRESSION = 1,
    FSIG_FILL_SPIKE = 2,
    FSIG_VPIN = 4,
    FSIG_MARKOUT = 8
};

typedef struct fsig fsig;

/* GuardParams, field for field. */
typedef struct fsig_guard_params {
    int64_t prints_window;
    double aggression_threshold;
    int64_t aggression_min_volume;
    int64_t fill_window_ns;
    int64_t fill_spike_count;
    int64_t vpin_bucket_volume;
    int64_t vpin_buckets;
    double vpin_threshold;
    int64_t markout_window;
    double markout_threshold;
    int64_t cooldown_ns;
} fsig_guard_params;

/* A guard trip (guard.Trip). */
typedef struct fsig_trip {
    uint32_t symbol;
    uint8_t bid;                /* 1: pull our bid */
    uint8_t ask;                /* 1: pull our ask */
    uint16_t pad;
    int64_t reasons;            /* FSIG_AGGRESSION | ... bits */
    double aggression;
    double vpin;
} fsig_trip;

/* What a Broken Trade took back out (trades.Reversal). */
typedef struct fsig_reversal {
    uint32_t symbol;
    uint8_t aggressor_buys;
    uint8_t window;             /* removed from the aggression window */
    uint8_t vpin;               /* removed from VPIN's open bucket */
    uint8_t pad;
    int64_t qty;
} fsig_reversal;

/* Scalars of one symbol's guard (SymbolGuard.state_items order, plus the array lengths). */
typedef struct fsig_guard_info {
    int64_t buy_vol, sell_vol, vpin_buy, vpin_sell, vpin_completed, vpin_direction;
    double vpin_value;
    int64_t bid_until, ask_until, trips;
    int64_t n_prints, n_buckets, n_fills_bid, n_fills_ask, n_marks_bid, n_marks_ask;
    int64_t printed;            /* prints seen (SymbolGuard.printed) */
} fsig_guard_info;

/* Signal state for n_symbols (>= 1) symbols with guard parameters p and trade-flow EWMA weight
 * flow_alpha. NULL when out of memory or a parameter is out of range (windows, buckets, bucket
 * volume and markout window must be >= 1). */
fsig *fsig_new(uint32_t n_symbols, const fsig_guard_params *p, double flow_alpha);
/* Free an fsig (NULL allowed). */
void fsig_free(fsig *g);

/* The n_symbols flow EWMAs (FairValueModel.flow_signed / flow_abs), owned by the fsig. */
double *fsig_flow_signed(fsig *g);
double *fsig_flow_abs(fsig *g);
/* The n_symbols tape print counts (TradeTape.seq), owned by the fsig. */
int64_t *fsig_tape_seq(fsig *g);
/* Per symbol s: [2s] bid cool-down end, [2s+1] ask cool-down end (ns), owned by the fsig. */
int64_t *fsig_until(fsig *g);

/* One print (symbol, aggressor side, qty > 0, match number). FSIG_OK, or FSIG_BAD_PARAM (nothing
 * changed) for a symbol outside 0..n-1. */
int fsig_on_print(fsig *g, uint32_t symbol, int aggressor_buys, int64_t qty, uint64_t match);
/* Every print of a packet's summary in order (its symbols are the book's). FSIG_OK. */
int fsig_on_summary(fsig *g, const fmd_summary *s);
/* Reverse the print with this match. OUT r. FSIG_OK or FSIG_NOT_FOUND (nothing changed). */
int fsig_break_trade(fsig *g, uint64_t match, fsig_reversal *r);

/* The guard alone (component tests; the tape calls these itself). */
void fsig_guard_on_print(fsig *g, uint32_t symbol, int aggressor_buys, int64_t qty);
/* Returns window | vpin << 1 (SymbolGuard.reverse_print's two booleans). */
int fsig_reverse_print(fsig *g, uint32_t symbol, int aggressor_buys, int64_t qty, int64_t later,
                       int in_open_bucket);
/* Our fill on a side (bid: 1) at now_ns. FSIG_OK or FSIG_NOMEM. */
int fsig_on_own_fill(fsig *g, uint32_t symbol, int our_side_is_bid, int64_t now_ns);
/* A matured markout per share of one of our fills on a side. */
void fsig_on_markout(fsig *g, uint32_t symbol, int our_side_is_bid, double markout_per_share);
double fsig_aggression(const fsig *g, uint32_t symbol);
double fsig_toxicity(const fsig *g, uint32_t symbol);
/* SymbolGuard.evaluate at now_ns: 1 and OUT trip when a side newly trips, else 0. */
int fsig_evaluate(fsig *g, uint32_t symbol, int64_t now_ns, fsig_trip *trip);
/* Our own fill then the guard's verdict in one call (the engine's fill lane: the guard decides
 * before the fill is decoded and booked): fsig_on_own_fill then fsig_evaluate, same state, same
 * trip. FSIG_TRIPPED and OUT trip when a side newly trips, FSIG_OK when none does, FSIG_NOMEM
 * when the fill could not be recorded (nothing changed, nothing evaluated). */
int fsig_own_fill_evaluate(fsig *g,            /* the kernel */
                           uint32_t symbol,    /* the filled order's symbol, 0..n-1 */
                           int our_side_is_bid,/* 1: our buy was filled */
                           int64_t now_ns,     /* the fill's event time */
                           fsig_trip *trip);   /* OUT: the trip, when FSIG_TRIPPED */

/* Inspection (state_items): the scalars, then the arrays, oldest first, each sized by info. */
void fsig_guard_info_get(const fsig *g, uint32_t symbol, fsig_guard_info *info);
/* Every symbol's guard trip count, OUT trips[n] (the summary's, in one call rather than n). */
void fsig_trips(const fsig *g, int64_t *trips);
void fsig_guard_arrays(const fsig *g, uint32_t symbol, uint8_t *print_buys, int64_t *print_qty,
                       int64_t *imbalances, int64_t *net, int64_t *fills_bid, int64_t *fills_ask,
                       double *marks_bid, double *marks_ask);
/* The aggression window's print numbers (SymbolGuard.print_index), oldest first, n_prints of them. */
void fsig_guard_print_index(const fsig *g, uint32_t symbol, int64_t *index);
/* Tape entries, oldest first, up to cap. Returns the count. OUT the six arrays. */
size_t fsig_tape_entries(const fsig *g, uint64_t *match, uint32_t *symbol, uint8_t *buys,
                         int64_t *qty, int64_t *index, int64_t *bucket, size_t cap);

/* ---- stage 1b: fair value, micro-price estimator counts, lead betas, volatility, hedge betas ----
 * Mirrors (same operation order):
 *   fsig_fv_update    FairValueModel.update: mids, the estimator's observe on a new top
 *                     (MicroPriceEstimator.observe; Python's round() is nearbyint, ties to even),
 *                     micro-price from the table, base, imbalance and flow terms, _lead with its
 *                     EwmaBeta; it stops with FSIG_CALIBRATE where the reference calls calibrate()
 *                     (numpy, in Python, writing the table through fsig_fv_array(FSIG_D_TABLES));
 *                     fsig_fv_finish then prices on the new table
 *   fsig_reprice      Engine._reprice: the top and depth imbalance of everyone else's book
 *                     (fmd_top_depth[_without]), fsig_fv_update, then when fair > 0 mid2,
 *                     VolEstimator.update at mid2 * 0.5, vol_q = (int)(log2(variance_per_s + 1) * 8)
 *                     when the mid moved, and Hedger.observe of a hedged symbol; mid2 = 0 when
 *                     fair <= 0. After FSIG_CALIBRATE, fsig_reprice_finish does the rest.
 * Every piece of this state is an array from fsig_fv_array / fsig_fv_ints (the Python wrappers are
 * views on them) and is in the snapshot. fsig_fv_init must be called once, before any of these
 * (and before fsig_load of a snapshot taken with it). */

typedef struct fsig_fv_params {
    int64_t n_imb, n_spread;    /* micro-price table shape (>= 2, >= 1) */
    int64_t base;               /* 0 micro, 1 mid, 2 weighted mid */
    double w_imbalance, w_flow; /* weights of the depth imbalance and flow terms (x half spread) */
    double lead_alpha, lead_prior;
    int64_t lead_min_samples;   /* the lead uses lead_prior until its beta has this many samples */
    int64_t calibrate_every;    /* observations between calibrations; 0: no estimator */
    double vol_rate;            /* VolEstimator's decay per second: ln 2 / its half-life */
    double hedge_alpha, hedge_prior;    /* the hedger's EwmaBeta */
} fsig_fv_params;

/* Arrays of doubles (fsig_fv_array), sizes in brackets (n symbols, ns = n_imb * n_spread). */
enum fsig_darray {
    FSIG_D_MIDS, FSIG_D_MICRO, FSIG_D_FAIR,                 /* [n] */
    FSIG_D_LEAD_REF, FSIG_D_LEAD_SXY, FSIG_D_LEAD_SXX,      /* [n], used for followers */
    FSIG_D_VOL_VAR, FSIG_D_VOL_LAST_MID, FSIG_D_VOL_PRIOR_VAR,    /* [n] */
    FSIG_D_HEDGE_SXY, FSIG_D_HEDGE_SXX, FSIG_D_HEDGE_LAST_S, FSIG_D_HEDGE_LAST_H,  /* [n] */
    FSIG_D_TABLES,              /* [n * n_spread * n_imb] G* row by row, per symbol */
    FSIG_D_EST_Q, FSIG_D_EST_R1, FSIG_D_EST_R2,             /* [n*ns*ns], [n*ns*4], [n*ns*ns] */
    FSIG_D_COUNT
};
/* Arrays of int64 (fsig_fv_ints). */
enum fsig_iarray {
    FSIG_I_TICKS, FSIG_I_LEADER, FSIG_I_HEDGE,              /* [n] config: tick, leader or -1,
                                                               hedge instrument or -1 */
    FSIG_I_MID2, FSIG_I_VOL_Q, FSIG_I_VOL_LAST_NS, FSIG_I_VOL_N,    /* [n] */
    FSIG_I_LEAD_N, FSIG_I_HEDGE_N,                          /* [n] */
    FSIG_I_HAS_TOP, FSIG_I_LAST_TOP,                        /* [n], [4n] the estimator's last top */
    FSIG_I_EST_OBS, FSIG_I_EST_PREV_STATE, FSIG_I_EST_PREV_MID2,    /* [n] */
    FSIG_I_COUNT
};

/* Set up stage 1b: p, and per symbol ticks[n], leader[n] (-1: none), prior_sigma[n], hedge[n]
 * (-1: not hedged). Tables start at zero. FSIG_OK, FSIG_NOMEM or FSIG_BAD_PARAM. */
int fsig_fv_init(fsig *g, const fsig_fv_params *p, const int64_t *ticks, const int64_t *leader,
                 const double *prior_sigma, const int64_t *hedge);
/* The arrays (NULL before fsig_fv_init, or for the estimator's when calibrate_every is 0). */
double *fsig_fv_array(fsig *g, int which);
int64_t *fsig_fv_ints(fsig *g, int which);
/* The symbols whose fair value is positive (priced), ascending, OUT symbols[n]; returns how many
 * (before fsig_fv_init: 0). The timer refreshes the gateway's view of these, not of every slot. */
uint32_t fsig_priced(const fsig *g, uint32_t *symbols);
/* FairValueModel.update. OUT *fair. FSIG_OK, FSIG_CALIBRATE (then fsig_fv_finish) or FSIG_BAD_PARAM
 * (nothing changed) for a symbol outside 0..n-1. */
int fsig_fv_update(fsig *g, uint32_t symbol, int64_t bid, int64_t bid_qty, int64_t ask,
                   int64_t ask_qty, double depth_imbalance, double *fair);
int fsig_fv_finish(fsig *g, double *fair);
/* Engine._reprice on book b: depth levels / decay of the imbalance (depth 0: none), our own
 * resting quotes as fmd_top_depth_without takes them (own_px NULL: none). OUT *fair.
 * FSIG_OK or FSIG_CALIBRATE (then fsig_reprice_finish). */
int fsig_reprice(fsig *g, const fmd_book *b, uint32_t symbol, uint32_t depth, double decay,
                 const int64_t *own_px, const int64_t *own_qty, uint32_t n_bid, uint32_t n_ask,
                 int64_t now_ns, double *fair);
int fsig_reprice_finish(fsig *g, double *fair);
/* VolEstimator.variance_per_s of a symbol. */
double fsig_variance_per_s(const fsig *g, uint32_t symbol);
/* VolEstimator.update alone (component tests): 1 when the mid moved. */
int fsig_vol_update(fsig *g, uint32_t symbol, double mid, int64_t now_ns);
/* Hedger.observe alone (component tests). */
void fsig_hedge_observe(fsig *g, uint32_t symbol, double s_mid, double h_mid);

/* ---- stage 1c: one call per market-data packet (Engine._on_market_data, its common case) ----
 * fsig_on_packet applies the packet (fmd_apply_packet into p->summary; FSIG_FALLBACK having
 * changed nothing when that falls back, and the caller runs its Python path), feeds its prints to
 * the tape, guards and flow EWMAs (fsig_on_summary), evaluates the guards of the printed symbols
 * in first-print order (fsig_evaluate, trips into p->trips), and builds p->touched: the packet's
 * touched symbols, then each one's followers (fsig_fv_init's follower lists, in order), without
 * repeats. When any guard tripped it returns FSIG_TRIPPED before repricing: the caller pulls the
 * sides at risk first (the reference does, and the pulls change our own quotes that the reprice
 * takes out of the book), refreshes p's own-quote table and calls fsig_reprice_touched.
 * Otherwise it reprices at once. fsig_reprice_touched runs fsig_reprice for p->touched[p->next..]
 * with each fair value into p->fairs; FSIG_CALIBRATE stops it at p->next (the caller runs the
 * reference calibrate() of that symbol and calls it again, which finishes that symbol first).
 * The caller then does the rest in order: the risk feed of each touched symbol with fair > 0,
 * markouts, requotes and hedges. Never called while the engine's book is stale. */

typedef struct fsig_packet {
    /* in: our own resting quotes per symbol (own_px NULL: none): symbol s has own_nb[s] bid
     * prices then own_na[s] ask prices at own_px[own_off[s]..], shares at own_qty[...] */
    const int64_t *own_px;
    const int64_t *own_qty;
    const uint32_t *own_off;
    const uint32_t *own_nb;
    const uint32_t *own_na;
    uint32_t depth;             /* depth-imbalance levels (0: none) and their decay */
    double decay;
    int64_t now_ns;
    fmd_summary *summary;       /* the packet path's buffers (fmd_summary rules) */
    /* out */
    uint32_t n_trips;
    fsig_trip *trips;           /* n_symbols capacity */
    uint32_t n_touched;
    uint32_t *touched;          /* n_symbols capacity */
    double *fairs;              /* fair value of touched[i] (0: not priced) */
    uint32_t next;              /* reprice progress */
    uint32_t pending;           /* 1: touched[next] waits for fsig_reprice_finish */
    struct fsig_react *react;   /* in: stage 2's mirrors (NULL: stop after the reprice) */
} fsig_packet;


/* Follower lists for p->touched: symbol s's followers are fol[fol_off[s] .. fol_off[s+1]).
 * FSIG_OK or FSIG_NOMEM. */
int fsig_set_followers(fsig *g, const uint32_t *fol, const uint32_t *fol_off);
/* One packet (buf, len) with the session's 10 raw bytes and the expected sequence. See above.
 * FSIG_OK (p->react NULL), FSIG_QUIET, FSIG_REACT, FSIG_FEED, FSIG_TRIPPED, FSIG_CALIBRATE,
 * FSIG_FALLBACK or FSIG_NOMEM. */
int fsig_on_packet(fsig *g, fmd_book *b, const uint8_t *buf, size_t len, const uint8_t *session,
                   uint64_t next_expected, fsig_packet *p);
/* The reprice half. FSIG_OK (p->react NULL), FSIG_QUIET, FSIG_REACT, FSIG_FEED or FSIG_CALIBRATE. */
int fsig_reprice_touched(fsig *g, const fmd_book *b, fsig_packet *p);
/* A run's packet offsets from their lengths, in place: off (OUT) holds n + 1 words, 0 then the
 * n packets' lengths, and becomes their offsets in the joined buffer (off[i] += off[i - 1]). */
void fsig_run_offsets(uint64_t *off, uint32_t n);
/* A run of packets (replay): packet i is buf[off[i] .. off[i+1]) received at ts[i], for i from
 * `from` below `count`; each goes through fsig_on_packet at now = max(now, ts[i]) (p->now_ns),
 * with next_expected moved on by the messages of the ones before. The run goes on while a
 * packet ends in FSIG_QUIET without book errors (p->react must be set) and stops after the first
 * one that does not: its code is returned (FSIG_FALLBACK: that packet was not applied) with
 * *done the quiet packets before it, which hold *messages messages; FSIG_QUIET with *done =
 * count - from when all were quiet. A packet whose time is past stop_after (the clock's
 * deadline) is not applied (FSIG_FALLBACK, p->now_ns the time before it): the clock is judged
 * before it (Python). At a packet at or past react->next_due_ns the markouts due mature before
 * it, at its time: by fsig_mature when the queues are loaded, and the run goes on unless a
 * guard tripped (FSIG_MATURED_TRIPPED with p->trips, that packet not applied, p->now_ns the
 * time before it); else (fsig_mature's FSIG_FALLBACK, or none loaded) FSIG_FALLBACK as at the
 * deadline. react->mk_matured counts fsig_mature's maturations (the caller copies them into
 * Metrics before any Python runs).
 * With react->flog_cap set, a packet ending in FSIG_FEED (no book errors) does not stop the run
 * while the log has room: its due feeds are logged (react->flog_*) and written to react->sent as
 * Engine._feed_risk would, then fsig_react_from(0) decides the reaction. Deferring is sound
 * because the gateway's answer to a feed of a book that is not stale (on_market: prices, bands,
 * P&L marks, fault bit cleared) moves nothing the reaction reads (state, limits version,
 * multipliers, collar) and emits no state change; the caller applies the log before anything
 * reads the gateway's marks (Engine._settle_feeds). FSIG_QUIET goes on (react->n_fed counts it), FSIG_REACT stops as above (that packet's
 * feeds are in the log). */
int fsig_on_packets(fsig *g, fmd_book *b, const uint8_t *buf, const uint64_t *off,
                    const int64_t *ts, uint32_t from, uint32_t count, const uint8_t *session,
                    uint64_t next_expected, int64_t now, int64_t stop_after, fsig_packet *p,
                    uint32_t *done, uint64_t *messages);

/* One packet's deferral, as fsig_on_packets defers (the live path, Engine._packet_applied):
 * after fsig_on_packet or fsig_reprice_touched returned FSIG_FEED (no book errors), the due
 * feeds into the log and react->sent, then fsig_react_from(0): FSIG_QUIET (react->n_fed counts
 * it) or FSIG_REACT; FSIG_FEED with nothing changed when the log has no room for them or a fair
 * value is not finite (the gateway would take it as a stale book). The caller applies the log
 * before anything reads the gateway. */
int fsig_defer_feeds(const fsig *g, const fmd_book *b, fsig_packet *p);

/* ---- stage 2: the reaction's no-action case (Engine._react, after the reprice) ----
 * With p->react set, fsig_on_packet and fsig_reprice_touched, once every touched symbol is
 * repriced, decide what of the reaction may act, reading C mirrors of the Python-owned inputs:
 *   the risk feed   Engine._feed_risk of touched[i] with fairs[i] > 0 (the book is never stale
 *                   here): due when int(fair + 0.5) differs from the price4 last told, the
 *                   staleness last told was stale, or now - last >= refresh_ns; the indices of
 *                   the due ones go to react->feed (the caller feeds exactly those, in order)
 *   fsig_react_from the rest, from touched[from]: FSIG_QUIET when nothing can act, else
 *                   FSIG_REACT with react->work_at, the first touched index whose requote or
 *                   hedges may act (the caller runs the reference code for that symbol, then
 *                   calls again from the next one), or react->markouts = 1 (work_at 0) when
 *                   markouts are due (now >= next_due_ns, or a blocked symbol has a mid now:
 *                   Metrics.on_time would mature them): the caller runs the whole reaction. A symbol may act when Engine._quote would miss its memo
 *                   (the key: int(fair * 8 / ref_tick), best bid, best ask, risk state, position,
 *                   held hedge shares, vol_q, bid/ask cool-down running, int(toxicity * 20),
 *                   markouts counted, limits version) and fq_price cannot price it (an exception
 *                   or a big integer: Python prices it), when Engine._requote would call
 *                   have _work_side act on a side (engine._needs_work, the self-trade rules,
 *                   a replace not held back by Engine._can_wait, and not an enter, modify or
 *                   replace that Engine._quote_denied refuses, unless a refused replace then
 *                   pulls a quote the move was away from), or when
 *                   Engine._hedge of one of its hedge targets would change anything (the hold on
 *                   the hedge instrument set with no hedge in flight, the sustain timer to start,
 *                   reset or run out, a hedge to go out, or the pair to end: only a pair at rest
 *                   is quiet: a hedge in flight, idle, its sustain timer running, or active with
 *                   Hedger.decide's goal, from the position, both mids and the regression's
 *                   ratio as Hedger.target computes them, already hedged).
 * Stage 3: on a memo miss fsig_react_from prices the quote itself (fq_price on the same inputs
 * engine_price_quote reads: fsig's fair value, variance and prior, toxicity and cool-downs; the
 * mirrors' position, held shares, recent markout, adverse rate, multipliers, collar and the
 * symbol's max_position and order caps), stores
 * key and quote in r->memo and the symbol in r->memo_new (the caller copies those memos into
 * Engine.quote_memo before running any Python), then decides the requote as on a hit.
 * When no feed is due fsig_on_packet / fsig_reprice_touched run fsig_react_from(0) themselves
 * and return its FSIG_QUIET / FSIG_REACT; when a feed is due they return FSIG_FEED and the caller
 * feeds, refreshes risk_state / limits_version and calls fsig_react_from(0).
 * Mirrors are written by the engine where the Python values change (mm_core/engine.py keeps them
 * and checks them: Engine.mirrors_stale()). */

enum fsig_react_const {
    FSIG_W_PRESENT = 0, FSIG_W_PRICE = 1, FSIG_W_LEAVES = 2, FSIG_W_ANSWERED = 3, FSIG_W_SENT = 4,
    FSIG_W_N = 5,
    FSIG_M_VALID = 0, FSIG_M_KEY = 1, FSIG_M_NKEY = 12, FSIG_M_QUOTE = 13, FSIG_M_N = 17,
    FSIG_P_ACTIVE = 0, FSIG_P_IN_FLIGHT = 1, FSIG_P_OVER_SINCE = 2, FSIG_P_HEDGED = 3, FSIG_P_GOAL = 4,
    FSIG_P_N = 5,
    FSIG_S_PRICE4 = 0, FSIG_S_STALE = 1, FSIG_S_NS = 2, FSIG_S_N = 3,
    FSIG_QUIET = 8,             /* nothing of the reaction can act */
    FSIG_REACT = 9,             /* react->work_at (or react->markouts) needs the caller */
    FSIG_FEED = 10,             /* react->n_feed risk feeds are due */
    FSIG_MATURED_TRIPPED = 11   /* fsig_on_packets: markouts matured before a packet tripped a guard */
};

typedef struct fsig_react {
    /* config (n symbols) */
    const uint8_t *quoted;      /* [n] Engine.is_quoted */
    const int64_t *ref_tick;    /* [n] Engine.ref_ticks */
    const uint32_t *held_of;    /* Engine.hedge_of[s] at held_of[held_off[s] .. held_off[s+1]) */
    const uint32_t *held_off;
    const uint32_t *targets;    /* Engine.hedge_targets[s], the same way */
    const uint32_t *targets_off;
    const int64_t *hedge_id;    /* [n] the hedge instrument of a hedged symbol, else -1 */
    int64_t refresh_ns;         /* EngineConfig.risk_refresh_ns */
    int64_t rest_ns;            /* EngineConfig.requote_rest_ns (Engine._can_wait) */
    int64_t trigger;            /* HedgeParams.trigger */
    int64_t hedge_keep;         /* HedgeParams.keep, lot, band and min_samples (Hedger.target's */
    int64_t hedge_lot;          /* goal and the band's hysteresis, for a pair held at its goal) */
    int64_t hedge_band;
    int64_t hedge_min_samples;
    int64_t hedge_hold_ns;      /* HedgeParams.hold_ns: the sustain timer */
    double hedge_prior;         /* HedgeParams.beta_prior and max_beta (Hedger.ratio) */
    double hedge_max_beta;
    int64_t halted_state;       /* int(TradingState.HALTED) */
    /* mirrors of Python-owned values */
    int64_t *position;          /* [n] InventoryTracker.position */
    int64_t *hold;              /* [n] Engine.hedge_hold */
    int64_t *halted;            /* [n] Engine.halted_symbols */
    int64_t *sent;              /* [n * FSIG_S_N] Engine.risk_sent */
    int64_t *memo;              /* [n * FSIG_M_N] Engine.quote_memo: valid, key, quote */
    int64_t *work;              /* [n * 2 * FSIG_W_N] the working quote of (s, buy), (s, sell) */
    int64_t *pair;              /* [n * FSIG_P_N] the hedger's pair of a hedged symbol */
    int64_t markout_n;          /* Metrics.markout_n[adverse_horizon] */
    int64_t next_due_ns;        /* Metrics.next_due_ns */
    int64_t *blocked;           /* [n] 1: s is in Metrics.blocked (a due markout waits for its mid) */
    int64_t *denied;            /* [n * 2] Engine.denied_until of (s, buy, quote), (s, sell, quote),
                                 * 0 when none: a side backing off after a denial sends nothing */
    int64_t risk_state;         /* int(gateway.state), refreshed by the caller per packet */
    int64_t limits_version;     /* gateway.limits_version, the same */
    /* stage 3: what a memo miss prices with (fq_price's inputs that are not in fsig) */
    const struct fq_config *qc; /* the engine's QuotePricer configuration */
    const uint8_t *half_penny;  /* [n] the symbol's tick table has the $0.005 tier */
    int64_t reducing_state;     /* int(TradingState.REDUCING) */
    double *markout;            /* [n] Metrics.recent_markout */
    double *adverse;            /* [n] Metrics.adverse_rate(s) */
    double spread_mult;         /* gateway.spread_multiplier, size_multiplier and */
    double size_mult;           /* limits.collar_fair_bps: written with risk_state / */
    int64_t collar_bps;         /* limits_version when either changed */
    int64_t *max_position;      /* [n] limits.for_symbol(s).max_position, written with them (at
                                 * most 2^53: beyond, fq_price returns FQ_RANGE and Python prices) */
    int64_t *max_order_qty;     /* [n] gateway.order_caps(s): shares (safe mode's cut included) */
    int64_t *max_order_value;   /* [n] and value, written with them (each at most 2^53, as above) */
    /* out */
    uint32_t n_feed;
    uint32_t *feed;             /* [n] indices into p->touched */
    uint32_t work_at;
    uint32_t markouts;
    uint32_t n_memo;            /* memos fsig_react_from priced and stored since the caller */
    uint32_t *memo_new;         /* [n] last reset n_memo: their symbols (each once), to copy */
    /* fsig_on_packets' deferred risk feeds (flog_cap 0: never deferred); the caller tells the
     * gateway each logged feed, in order, at its packet's time, and resets n_flog and n_fed */
    uint32_t flog_cap;
    uint32_t n_flog;            /* out: feeds logged */
    uint32_t n_fed;             /* out: packets whose feeds were logged and that then ended quiet */
    uint32_t *flog_sym;         /* [flog_cap] the symbol (p->touched[feed[k]]) */
    double *flog_fair;          /* [flog_cap] its fair value (p->fairs[feed[k]]) */
    int64_t *flog_ns;           /* [flog_cap] the packet's p->now_ns */
    /* Metrics' markout queues for fsig_mature (mk_h 0: none loaded, fsig_on_packets stops at a
     * due markout for Python as before). Entry j of horizon h is the 5 words (fill_ns, symbol,
     * sign, price, qty) at mk_q[(mk_qoff[h] + j) * FSIG_MK_W], for mk_head[h] <= j < mk_len[h];
     * fsig_mature moves mk_head[h] past the ones it matures (the caller pops as many from
     * Metrics.pending[h] and rebases). The first mk_wait[h] entries from mk_head[h] wait for a
     * mid (Metrics.waiting[h]); fsig_mature leaves the waiting ones, with any due one that
     * starts waiting (flagged in blocked), at the front in fill order, as on_time puts them
     * back, and sets mk_wait[h] to their count. What Metrics.on_time updates is mirrored
     * beside: */
    uint32_t mk_h;              /* len(Metrics.horizons) (at most FSIG_MK_MAX_H) */
    uint32_t mk_adverse;        /* Metrics.adverse_horizon */
    double mk_alpha;            /* Metrics.markout_alpha */
    int64_t mk_never;           /* Metrics' next_due_ns with nothing pending */
    int64_t *mk_horizon;        /* [FSIG_MK_MAX_H] Metrics.horizons */
    int64_t *mk_q;
    uint32_t *mk_qoff;          /* [FSIG_MK_MAX_H] */
    uint32_t *mk_head;          /* [FSIG_MK_MAX_H] in/out */
    uint32_t *mk_len;           /* [FSIG_MK_MAX_H] */
    int64_t *mk_sum;            /* [3 * FSIG_MK_MAX_H] markout_x2[h], markout_n[h], markout_qty[h] at
                                 * 3h, 3h+1, 3h+2 */
    int64_t mk_adverse_n;       /* Metrics.adverse */
    int64_t *mk_marked_by;      /* [n] Metrics.marked_by (recent_markout is the markout mirror) */
    int64_t *mk_adverse_by;     /* [n] Metrics.adverse_by */
    uint32_t mk_matured;        /* out: fsig_mature calls that matured (ran on_time), since reset */
    uint32_t *mk_wait;          /* [FSIG_MK_MAX_H] Metrics.waiting */
    int64_t mk_grace_div;       /* metrics._GRACE_DIV: a waiting one's last chance is horizon / it past due */
} fsig_react;

enum fsig_mk_const { FSIG_MK_W = 5, FSIG_MK_MAX_H = 8 };

/* Markouts due by now_ns, matured in C: Engine._mature_markouts on the mirrors (Metrics.on_time
 * with the kernel's mids, then SymbolGuard.on_markout of each one at the adverse horizon and
 * SymbolGuard.evaluate of their symbols, in first-matured order), the react mirrors written as
 * ReactMirror.set_metrics would. FSIG_OK (nothing tripped), FSIG_TRIPPED (the trips in p->trips:
 * the caller pulls) or FSIG_FALLBACK, nothing changed: no queues loaded, a markout with no mid
 * past its last chance or a waiting one whose mid is back (on_time would count it unmarked or
 * mark it), a bad entry or a sum past int64_t (Python does it). A due markout with no mid, in
 * time, waits (and one that waited waits on) at the front of its queue, as on_time leaves it.
 * r->feed is its scratch (the symbols to evaluate). fsig_on_packets calls it at a packet due for
 * markouts. */
int fsig_mature(fsig *g, fsig_react *r, int64_t now_ns, fsig_packet *p);

/* Engine._quote's key of a symbol into key[FSIG_M_NKEY] (no state changes; for tests). Returns 0,
 * or 1 when _quote returns no quote before the key (fair <= 0, halted). */
int fsig_quote_key(const fsig *g, const fmd_book *b, const fsig_react *r, uint32_t symbol,
                   int64_t now_ns, int64_t *key);
/* Whether Engine._requote would have _work_side act for this wanted quote (before the hedge
 * hold) at now_ns: send, pull, modify, or replace unless Engine._can_wait holds the quote. */
int fsig_requote_acts(const fsig_react *r, uint32_t symbol, int64_t bid_px, int64_t bid_qty,
                      int64_t ask_px, int64_t ask_qty, int64_t now_ns);
/* Whether Engine._requote(symbol) may act or change state (fsig_react_from's check of one quoted
 * symbol, a memo miss priced into r->memo as there; the book must not be stale): 0 when not. */
int fsig_requote_may_act(const fsig *g, const fmd_book *b, fsig_react *r, uint32_t symbol,
                         int64_t now_ns);
/* See above: FSIG_QUIET or FSIG_REACT. */
int fsig_react_from(const fsig *g, const fmd_book *b, fsig_packet *p, uint32_t from);

/* Snapshot: fsig_save writes up to cap bytes into buf (NULL to size) and returns the size needed;
 * fsig_load restores a blob into g (same n and parameters). FSIG_OK, FSIG_BAD_BLOB or FSIG_NOMEM. */
size_t fsig_save(const fsig *g, uint8_t *buf, size_t cap);
int fsig_load(fsig *g, const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
