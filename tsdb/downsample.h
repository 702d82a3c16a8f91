/*
 * downsample.h - downsampling in Thanos' model (issue 12): per series and window the
 * aggregates count, sum, min, max and counter, at 5 minutes (from raw samples) and 1 hour
 * (from 5-minute rows), and tier blocks that store such rows with the cold block codec.
 *
 * The semantics are those of Thanos' pkg/compact/downsample/downsample.go (read, not
 * copied): floatAggregator.add/reset, downsampleBatch, currentWindow, downsampleRawLoop,
 * downsampleFloatBatch, downsampleFloatAggrBatch and ApplyCounterResetsSeriesIterator.
 *
 * Windows. A window is [s, s + res) with s = floor(t / res) * res (also for t < 0). A row
 * exists for every window holding at least one input sample (raw: one that is not NaN);
 * empty windows have no row. A row's timestamp is min(s + res - 1, T) where T is the
 * last input timestamp of the call (raw: of the last sample that is not NaN): the last
 * millisecond of the window, except for the last window of the call, which ends at T.
 * This is Thanos' currentWindow() clamped to the batch's last sample in downsampleBatch.
 *
 * Aggregates of a window (raw -> 5m, ts_ds_raw; any NaN, the stale marker
 * 0x7ff0000000000002 included, is dropped before anything, as downsampleRawLoop does):
 *   count    number of samples in the window
 *   sum      their sum, added in time order
 *   min/max  smallest/largest value (-0.0 and 0.0: the first seen)
 *   counter  the counter state at the window's last sample: the first sample of the call
 *            sets it to its value; each later sample v adds v - prev, or v when v < prev
 *            (a counter reset). It runs across windows (never reset per window), so it
 *            is v_first + the increase since the first sample, resets accumulated.
 * Beside the rows, an aggregate set keeps the two raw samples Thanos' counter chunk
 * carries at its ends: the first sample (first_t_ms, first_v: the counter's base, so a
 * rate() over the start of the range sees the increase inside the first window) and the
 * last raw value (last_v, at the last row's timestamp: the next set's first raw value is
 * compared with it to find a reset between sets, since the counter column itself is
 * cumulative and not comparable with raw values).
 *
 * Aggregates of a window (5m -> 1h, ts_ds_aggr, from one or more sets in time order):
 *   count    sum of the counts;   sum   sum of the sums (in time order)
 *   min      min of the mins;     max   max of the maxes (NaN inputs ignored)
 *   counter  the sets are turned into one monotonic stream (ts_ds_counter_next: each
 *            set's first raw sample, its counter rows, its last raw value as a
 *            correction at the same timestamp; a value below the previous one adds
 *            itself, as a reset), and that stream aggregated as the raw counter is.
 *            first/last raw samples carry over from the first/last set.
 * For counters that never go negative, 5m -> 1h gives the counter raw -> 1h gives, up to
 * rounding; count, min and max are always equal, sum is equal when the additions are
 * exact (otherwise it differs by rounding only).
 *
 * Where this deliberately differs from Thanos, and why:
 *  - Negative timestamps: Thanos computes t - t % res with Go's truncating %, which puts
 *    t < 0 into the wrong window (and starts its windowing with the sentinel -1); here
 *    windows are floor-aligned everywhere.
 *  - min/max start from the first value instead of +-MaxFloat64, so the min of samples
 *    that are all +Inf is +Inf (Thanos gives 1.8e308).
 *  - Rows never hold the stale marker; Thanos skips it per aggregate when reading rows
 *    back. Here rows that hold it are refused (TS_EINVALID, or TS_ECORRUPT from a block).
 *  - Thanos cuts a series into batches of about 140 rows, each with its own first/last
 *    raw samples; one call here is one batch (callers cut where they like: at a window
 *    boundary, since the last row of a call ends at the call's last sample).
 * Histograms are not handled (floats only).
 *
 * Tier block: a cold block (storage/cold.h, unchanged format) holding, per series, 7
 * pseudo-series with id = series_id << 3 | kind:
 *   | kind | TS_DS_*       | samples | value                                           |
 *   |------|---------------|---------|-------------------------------------------------|
 *   | 0    | COUNT         | n_rows  | count (an integer-valued double, 1 .. 2^53)     |
 *   | 1    | SUM           | n_rows  | sum                                             |
 *   | 2    | MIN           | n_rows  | min                                             |
 *   | 3    | MAX           | n_rows  | max                                             |
 *   | 4    | COUNTER       | n_rows  | counter                                         |
 *   | 5    | KIND_FIRST    | 1       | first raw sample: (first_t_ms, first_v)         |
 *   | 6    | KIND_LAST     | 1       | last raw value, at the last row's timestamp     |
 * Kinds 0..4 have the row timestamps, one column the codec stores once. Kind 7 is never
 * written. series_id <= TS_DS_MAX_SERIES_ID so the shift cannot overflow. The block says
 * nothing of its resolution: the caller keeps it (tiers live apart).
 *
 * Threading: no function keeps state between calls; all are thread-safe on distinct
 * outputs, and any number of threads may decode from one opened block.
 */
#ifndef TS_TSDB_DOWNSAMPLE_H
#define TS_TSDB_DOWNSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/cold.h"

#define TS_DS_RES_5M_MS INT64_C(300000)
#define TS_DS_RES_1H_MS INT64_C(3600000)
#define TS_DS_MAX_RES_MS (INT64_C(1) << 40) /* so window ends never overflow */

/* Aggregates, the index into ts_ds_row.v and the kind of a tier pseudo-series. Never
 * renumbered: they are on disk. */
#define TS_DS_COUNT 0
#define TS_DS_SUM 1
#define TS_DS_MIN 2
#define TS_DS_MAX 3
#define TS_DS_COUNTER 4
#define TS_DS_N_AGGR 5
#define TS_DS_KIND_FIRST 5
#define TS_DS_KIND_LAST 6
#define TS_DS_N_KINDS 7
#define TS_DS_KIND_BITS 3

#define TS_DS_MAX_SERIES_ID (UINT64_MAX >> TS_DS_KIND_BITS)
#define TS_DS_TIER_MAX_SERIES (TS_COLD_MAX_SERIES / TS_DS_N_KINDS)

/* One window of one series. */
struct ts_ds_row {
	int64_t t_ms;		/* see "Windows" above */
	double v[TS_DS_N_AGGR]; /* indexed by TS_DS_COUNT .. TS_DS_COUNTER */
};

/*
 * One series' aggregates from one call (Thanos' aggregate chunk). rows is borrowed from
 * whoever filled it (the caller's buffer in every function here). When n_rows is 0 (no
 * sample that is not NaN) the other fields are 0.
 */
struct ts_ds_agg {
	struct ts_ds_row *rows;
	size_t n_rows;
	int64_t first_t_ms; /* first raw sample, <= rows[0].t_ms, in the first row's window */
	double first_v;
	double last_v; /* last raw value; its time is rows[n_rows - 1].t_ms */
};

/*
 * Downsamples one series' raw samples t_ms[0..n), v[0..n) (IEEE-754 bits; borrowed for
 * the call) to windows of res_ms, writing rows into rows[0..rows_cap) and describing them
 * in *out (out->rows = rows). n rows always suffice. Allocates nothing.
 * Returns 0 (also for n == 0 or all samples NaN: out->n_rows = 0); TS_EINVALID if
 * res_ms is not in 1 .. TS_DS_MAX_RES_MS, an array is NULL while n > 0, out is NULL,
 * timestamps are not strictly ascending or outside TS_FORMAT_MIN_T_MS ..
 * TS_FORMAT_MAX_T_MS; TS_ELIMIT if rows_cap is too small. On error *out is not written
 * and rows holds garbage.
 */
int ts_ds_raw(const int64_t *t_ms, const uint64_t *v, size_t n, int64_t res_ms,
	      struct ts_ds_row *rows, size_t rows_cap, struct ts_ds_agg *out);

/*
 * Downsamples the sets in[0..n_in) of one series (borrowed for the call; in time order:
 * each set's first_t_ms after the previous set's last row; sets with n_rows == 0 are
 * skipped) to windows of res_ms (normally TS_DS_RES_1H_MS from 5-minute sets), writing
 * rows into rows[0..rows_cap) and *out (out->rows = rows). The total number of input rows
 * always suffices. Allocates nothing. rows must not overlap the input rows.
 * Returns 0 (out->n_rows = 0 when there is no input row); TS_EINVALID if res_ms is out of
 * range, a pointer is NULL where data is needed, a set's rows are not strictly ascending
 * or outside the timestamp range, first_t_ms > rows[0].t_ms, the sets overlap, or a value
 * is the stale marker; TS_ELIMIT if rows_cap is too small. On error *out is not written.
 */
int ts_ds_aggr(const struct ts_ds_agg *in, size_t n_in, int64_t res_ms, struct ts_ds_row *rows,
	       size_t rows_cap, struct ts_ds_agg *out);

/*
 * The counter of sets as one monotonic series, for rate()/increase() over downsampled
 * data (Thanos' ApplyCounterResetsSeriesIterator): for each set, in order, its first raw
 * sample, its counter rows, and its last raw value. NaN values are skipped. The first
 * sample starts the total at its value; a sample later in time adds v - prev (or v when
 * v < prev: a reset); a sample at the same time as the previous one only replaces prev
 * (that is how the last raw value lets the next set's first raw value be compared with
 * a raw value); a sample earlier in time is skipped.
 * The iterator borrows in[0..n_in) until its last use; its fields are private.
 */
struct ts_ds_counter_it {
	const struct ts_ds_agg *set;
	size_t n_set, k, j;
	uint64_t total;
	int64_t last_t;
	double last_v, total_v;
};

void ts_ds_counter_init(struct ts_ds_counter_it *it, const struct ts_ds_agg *in, size_t n_in);

/* Writes the next sample of the stream to *t_ms, *v (the running total) and returns 1,
 * or returns 0 at the end. */
int ts_ds_counter_next(struct ts_ds_counter_it *it, int64_t *t_ms, double *v);

/*
 * The last raw value the stream has seen (the last set's last_v once ts_ds_counter_next
 * returned 0): what a following set's first raw value is compared with.
 */
double ts_ds_counter_last_raw(const struct ts_ds_counter_it *it);

/* One series of a tier block to encode. agg.rows is borrowed for the call. */
struct ts_ds_tier_series {
	uint64_t id; /* <= TS_DS_MAX_SERIES_ID, strictly ascending across the input */
	struct ts_ds_agg agg;
};

/*
 * Encodes in[0..n) into one tier block (a cold block; see the table above) at zstd level
 * `level` (TS_COLD_LEVEL_DEFAULT unless there is a reason). On success *out is a new
 * buffer of *out_len bytes (ts_malloc; free with ts_free); on error they are not written.
 * Returns 0; TS_EINVALID if in or out is NULL, n is 0 or above TS_DS_TIER_MAX_SERIES, ids
 * are not strictly ascending or above TS_DS_MAX_SERIES_ID, a series has no rows (or more
 * than UINT32_MAX), rows not strictly ascending, first_t_ms > rows[0].t_ms, a count that
 * is not an integer in 1 .. 2^53, or the stale marker as a value; TS_ELIMIT if the block
 * would exceed the codec's limits; -ENOMEM. Thread-safe.
 */
int ts_ds_tier_encode(const struct ts_ds_tier_series *in, size_t n, int level, uint8_t **out,
		      size_t *out_len);

/*
 * Open a tier block with ts_cold_open and free it with ts_cold_free. Series i of the
 * block (0 <= i < ts_cold_nseries(b) / TS_DS_N_KINDS in a well-formed block) is at
 * pseudo-series i * TS_DS_N_KINDS; ts_ds_tier_id gives its series id and row count.
 * Returns 0; TS_ENOTFOUND if i is past the end; TS_ECORRUPT if the pseudo-series there
 * is not a kind 0 one. Output pointers may be NULL.
 */
int ts_ds_tier_id(const struct ts_cold_block *b, size_t i, uint64_t *series_id, size_t *n_rows);

/*
 * Decodes series `series_id` of the tier block b into rows[0..rows_cap) and *out
 * (out->rows = rows). ts_ds_tier_id or ts_cold_series on its kind-0 pseudo-series gives
 * the row count. Checks the 7 pseudo-series against the table above (kinds 0..4 with one
 * identical timestamp column, kinds 5 and 6 one sample each, kind 6 at the last row's
 * time, first_t_ms <= rows[0].t_ms, timestamps within TS_FORMAT_MIN_T_MS ..
 * TS_FORMAT_MAX_T_MS, counts integers in 1 .. 2^53, no stale marker), so a decoded set is
 * valid input to ts_ds_aggr.
 * Allocates one scratch buffer of 16 bytes per row for the call (not per sample).
 * Returns 0; TS_ENOTFOUND if the block has no kind-0 pseudo-series of series_id (or
 * series_id > TS_DS_MAX_SERIES_ID); TS_ECORRUPT (rows then hold garbage and *out is not
 * written); TS_ELIMIT if rows_cap is too small; TS_EINVALID if b, rows (with rows_cap >
 * 0) or out is NULL; -ENOMEM. Does not modify b (thread-safe as ts_cold_decode).
 */
int ts_ds_tier_decode(const struct ts_cold_block *b, uint64_t series_id, struct ts_ds_row *rows,
		      size_t rows_cap, struct ts_ds_agg *out);

/* ts_ds_tier_decode of the kinds in `kinds` only (bit k: kind k; COUNT is always
 * decoded: it holds the timestamps): a reader that needs one aggregate decodes two
 * columns instead of seven. Rows' other aggregates are left as they were; first_t_ms,
 * first_v and last_v are the first row's time, 0 and 0 unless KIND_FIRST / KIND_LAST are
 * asked. Same checks on what is decoded. */
#define TS_DS_KINDS_ALL ((1u << TS_DS_N_KINDS) - 1)
int ts_ds_tier_decode_kinds(const struct ts_cold_block *b, uint64_t series_id, unsigned kinds,
			    struct ts_ds_row *rows, size_t rows_cap, struct ts_ds_agg *out);

#endif
