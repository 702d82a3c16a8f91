/*
 * tiers.c - a closed partition's downsampled tiers: its raw samples aggregated into
 * 5-minute rows (ts_ds_raw) and those into 1-hour rows (ts_ds_aggr), stored as tier
 * blocks (tsdb/downsample.h) in the partition's "tiers" table. Layout: format.h
 * ("Downsampled tiers of a partition").
 *
 * When: a partition's tiers are built from a partition that is closed and all cold in
 * at most one generation with no hot chunk (what the closed-partition pass of compact.c
 * leaves, right before it rewrites the env, so the tiers are copied into the tight
 * file). A late write or backfill makes hot chunks again; the next closed pass converts
 * them into a new generation, which changes the "gens" row, so the tiers' record no
 * longer matches and they are built again from the new data. ts_db_compact and
 * ts_db_downsample also visit every closed partition and rebuild stale ones.
 *
 * What the tiers were built from is recorded in the meta row "tiers": a hash of the
 * "gens" row bytes (generation numbers only grow, so every conversion changes it) and a
 * hash of the tombstones that intersect the partition (deleted samples are left out of
 * the tiers, so a new deletion makes them stale too).
 *
 * Crash safety: the old tier rows are deleted, the new ones put and the record written
 * in one LMDB write transaction (one ts_env_apply), so a kill at any point leaves either
 * the old tiers with their record or the new ones with theirs; nothing is visible half
 * written. A reader that finds the record not matching the current gens row and
 * tombstones treats the tiers as absent.
 *
 * Sparse data: a 5m tier is stored only when the partition holds at least
 * TIER_5M_MIN_DENSITY samples per series and 5-minute window (a scrape interval up to
 * 30 s); sparser, its rows would cost as much as the raw samples, so only the 1h tier is
 * stored (built from 5m rows in memory) and 5m reads there are raw.
 *
 * Partition widths: 5-minute windows are built only when the width is a multiple of 5
 * minutes, 1-hour windows only when it is a multiple of an hour (partition starts are
 * multiples of the width, so windows then never straddle two partitions). Otherwise the
 * tier is not built (logged once per build) and the record's flags say so.
 *
 * Writer thread only (db->fmu held): it is the only one changing partitions.
 *
 * Uses: cold.c (gens row), tombstone.c, downsample.c, partition.c, storage/.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <xxhash.h>

#include "storage/cold.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/downsample.h"
#include "tsdb/failpoint.h"

#define TIER_ROWS 4096	/* a tier block is cut once it holds this many rows */
#define TIER_SERIES 256 /* or this many series */
#define TIER_LEVEL TS_COLD_LEVEL_DEFAULT
#define TIER_5M_MIN_DENSITY 10.0 /* samples per 5-minute window for a 5m tier */

/* One tier being cut into blocks. Rows are copied into one growing array; series point
 * into it by offset until the block is encoded (the array may move). */
struct tier {
	uint8_t res; /* TS_FORMAT_TIER_RES_* */
	int64_t res_ms;
	struct ts_ds_tier_series *ser;
	size_t *off;
	size_t n_ser, cap_ser, cap_off;
	struct ts_ds_row *rows;
	size_t n_rows, cap_rows;
	uint64_t rows_total, bytes_total;
};

static void tier_fini(struct tier *t)
{
	ts_free(t->ser);
	ts_free(t->off);
	ts_free(t->rows);
}

static int tier_cut(struct tier *t, struct ts_batch *b, unsigned table)
{
	if (t->n_ser == 0)
		return 0;
	for (size_t i = 0; i < t->n_ser; i++)
		t->ser[i].agg.rows = t->rows + t->off[i];
	uint8_t *blk;
	size_t len;
	int rc = ts_ds_tier_encode(t->ser, t->n_ser, TIER_LEVEL, &blk, &len);
	if (rc)
		return rc;
	uint8_t key[TS_FORMAT_TIER_KEY_LEN];
	key[0] = t->res;
	ts_format_put_be64(key + 1, t->ser[t->n_ser - 1].id);
	rc = ts_batch_put(b, table, key, sizeof key, blk, len);
	ts_free(blk);
	t->bytes_total += len;
	t->n_ser = 0;
	t->n_rows = 0;
	return rc;
}

/* Adds a series' rows (copied) and cuts a block when it is full. */
static int tier_add(struct tier *t, uint64_t id, const struct ts_ds_agg *a, struct ts_batch *b,
		    unsigned table)
{
	if (a->n_rows == 0)
		return 0;
	if (ts_grow((void **)&t->rows, &t->cap_rows, t->n_rows + a->n_rows, sizeof *t->rows))
		return -ENOMEM;
	if (ts_grow((void **)&t->ser, &t->cap_ser, t->n_ser + 1, sizeof *t->ser) ||
	    ts_grow((void **)&t->off, &t->cap_off, t->n_ser + 1, sizeof *t->off))
		return -ENOMEM;
	memcpy(t->rows + t->n_rows, a->rows, a->n_rows * sizeof *a->rows);
	t->ser[t->n_ser] = (struct ts_ds_tier_series){ .id = id, .agg = *a };
	t->off[t->n_ser++] = t->n_rows;
	t->n_rows += a->n_rows;
	t->rows_total += a->n_rows;
	if (t->n_rows >= TIER_ROWS || t->n_ser >= TIER_SERIES)
		return tier_cut(t, b, table);
	return 0;
}

/* The build in progress: one series' samples gathered over its pieces, and the tiers. */
struct build {
	struct ts_db *db;
	struct ts_partition *p;
	const struct ts__tombs *tombs;
	struct ts_batch *b;
	uint64_t id; /* the series being gathered, 0: none */
	int64_t *t;
	uint64_t *v;
	size_t n, cap, vcap;
	struct ts_ds_row *r5, *r1h; /* scratch, cap rows each */
	size_t rcap;
	struct tier tier[2]; /* 5m, 1h */
	int do5m, do1h;
	int keep5m; /* the 5m rows are stored (not too sparse: sparse_5m) */
	uint32_t n_series;
};

static int series_done(struct build *bd)
{
	if (bd->id == 0 || !bd->do5m)
		return 0;
	const struct ts__tomb *tr;
	size_t nt = ts__tombs_of(bd->tombs, bd->id, &tr);
	if (nt)
		bd->n = ts__tombs_filter(tr, nt, bd->t, bd->v, bd->n);
	if (bd->n == 0)
		return 0;
	if (bd->n > bd->rcap) {
		ts_free(bd->r5);
		ts_free(bd->r1h);
		bd->rcap = bd->n;
		bd->r5 = ts_malloc(bd->rcap * sizeof *bd->r5);
		bd->r1h = ts_malloc(bd->rcap * sizeof *bd->r1h);
		if (!bd->r5 || !bd->r1h) {
			bd->rcap = 0;
			return -ENOMEM;
		}
	}
	struct ts_ds_agg a5, a1h;
	int rc = ts_ds_raw(bd->t, bd->v, bd->n, TS_DS_RES_5M_MS, bd->r5, bd->rcap, &a5);
	if (rc == 0 && a5.n_rows)
		bd->n_series++;
	if (rc == 0 && bd->keep5m)
		rc = tier_add(&bd->tier[0], bd->id, &a5, bd->b, bd->p->tiers);
	if (rc == 0 && bd->do1h && a5.n_rows) {
		rc = ts_ds_aggr(&a5, 1, TS_DS_RES_1H_MS, bd->r1h, bd->rcap, &a1h);
		if (rc == 0)
			rc = tier_add(&bd->tier[1], bd->id, &a1h, bd->b, bd->p->tiers);
	}
	return rc;
}

/* Appends series i of block blk to the series being gathered (finishing the previous
 * series first when the id changes). */
static int take_piece(struct build *bd, const struct ts_cold_block *blk, size_t i)
{
	uint64_t id;
	uint32_t n;
	ts_cold_series(blk, i, &id, &n, NULL, NULL);
	int rc;
	if (id != bd->id) {
		if (id < bd->id)
			return TS_CORRUPT();
		if ((rc = series_done(bd)))
			return rc;
		bd->id = id;
		bd->n = 0;
	}
	if (ts_grow((void **)&bd->t, &bd->cap, bd->n + n, sizeof *bd->t) ||
	    ts_grow((void **)&bd->v, &bd->vcap, bd->n + n, sizeof *bd->v))
		return -ENOMEM;
	if ((rc = ts_cold_decode(blk, i, bd->t + bd->n, bd->v + bd->n)))
		return rc;
	if (bd->n && bd->t[bd->n] <= bd->t[bd->n - 1])
		return TS_CORRUPT(); /* pieces of a series follow each other in time */
	bd->n += n;
	return 0;
}

/* Hash of the tombstones of t clipped to [start, end). 0 when none intersects. */
static uint64_t tombs_hash(const struct ts__tombs *t, int64_t start, int64_t end)
{
	if (!t || !ts__tombs_overlap(t, start, end - 1))
		return 0;
	XXH3_state_t *s = XXH3_createState();
	if (!s)
		return UINT64_MAX; /* never matches a record: rebuilt next time */
	XXH3_64bits_reset(s);
	for (size_t i = 0; i < t->n; i++) {
		const struct ts__tomb *r = &t->v[i];
		if (r->maxt < start || r->mint > end - 1)
			continue;
		int64_t f[3] = { (int64_t)r->id, r->mint < start ? start : r->mint,
				 r->maxt > end - 1 ? end - 1 : r->maxt };
		XXH3_64bits_update(s, f, sizeof f);
	}
	uint64_t h = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	return h ? h : 1;
}

/* Hash of the partition's "gens" row bytes (of nothing when absent): what the tiers'
 * record names as their source. */
static int gens_hash(struct ts_rtxn *r, unsigned meta, uint64_t *out)
{
	const void *gv = NULL;
	size_t gl = 0;
	int rc = ts_env_get(r, meta, TS_FORMAT_PART_META_GENS, strlen(TS_FORMAT_PART_META_GENS),
			    &gv, &gl);
	if (rc && rc != TS_ENOTFOUND)
		return rc;
	*out = XXH3_64bits(rc ? "" : gv, rc ? 0 : gl);
	return 0;
}

int ts__tiers_read(struct ts_rtxn *r, unsigned meta, struct ts__tiers_rec *out)
{
	const void *v;
	size_t vl;
	memset(out, 0, sizeof *out);
	int rc = ts_env_get(r, meta, TS_FORMAT_PART_META_TIERS, strlen(TS_FORMAT_PART_META_TIERS),
			    &v, &vl);
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	const uint8_t *p = v;
	if (vl != TS_FORMAT_TIERS_REC_LEN || p[0] != TS_FORMAT_TIERS_REC_VERSION)
		return TS_CORRUPT();
	out->have = 1;
	out->gens_hash = ts_format_get_le64(p + 1);
	out->tombs_hash = ts_format_get_le64(p + 9);
	out->n_series = ts_format_get_le32(p + 17);
	out->rows[0] = ts_format_get_le64(p + 21);
	out->rows[1] = ts_format_get_le64(p + 29);
	out->bytes[0] = ts_format_get_le64(p + 37);
	out->bytes[1] = ts_format_get_le64(p + 45);
	out->flags = ts_format_get_le32(p + 53);
	return 0;
}

static int rec_put(struct ts_batch *b, unsigned meta, const struct ts__tiers_rec *rec)
{
	uint8_t p[TS_FORMAT_TIERS_REC_LEN];
	p[0] = TS_FORMAT_TIERS_REC_VERSION;
	ts_format_put_le64(p + 1, rec->gens_hash);
	ts_format_put_le64(p + 9, rec->tombs_hash);
	ts_format_put_le32(p + 17, rec->n_series);
	ts_format_put_le64(p + 21, rec->rows[0]);
	ts_format_put_le64(p + 29, rec->rows[1]);
	ts_format_put_le64(p + 37, rec->bytes[0]);
	ts_format_put_le64(p + 45, rec->bytes[1]);
	ts_format_put_le32(p + 53, rec->flags);
	return ts_batch_put(b, meta, TS_FORMAT_PART_META_TIERS, strlen(TS_FORMAT_PART_META_TIERS),
			    p, sizeof p);
}

/* Whether generation gen of p holds too few samples per 5-minute window for a 5m tier to
 * pay: a row holds five aggregates, so at fewer than TIER_5M_MIN_DENSITY samples per
 * window (a scrape interval above 30 s) the 5m rows cost as much as the raw samples
 * (measured: 119 % of them at 60 s) and a query reads nearly as many points either way.
 * Estimated from the block headers: samples over (series x windows the block spans).
 * 1 sparse, 0 not, <0 an error. */
static int sparse_5m(struct ts_rtxn *r, const struct ts_partition *p, uint32_t gen)
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, p->cold, &c);
	if (rc)
		return rc;
	uint8_t key[4] = { (uint8_t)(gen >> 24), (uint8_t)(gen >> 16), (uint8_t)(gen >> 8),
			   (uint8_t)gen };
	double samples = 0, slots = 0;
	for (rc = ts_cursor_seek(c, key, sizeof key); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		struct ts_cold_info info;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			break;
		if (kl != TS_FORMAT_COLD_KEY_LEN || memcmp(k, key, 4) != 0)
			break;
		if ((rc = ts_cold_peek(v, vl, &info)))
			break;
		samples += (double)info.n_samples;
		slots += (double)info.n_series *
			 (double)((info.max_t - info.min_t) / TS_DS_RES_5M_MS + 1);
	}
	ts_cursor_close(c);
	if (rc && rc != TS_ENOTFOUND)
		return rc;
	return slots > 0 && samples < TIER_5M_MIN_DENSITY * slots;
}

/* Reads every block of generation gen in key order and gathers its series. */
static int scan_gen(struct build *bd, struct ts_rtxn *r, uint32_t gen)
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, bd->p->cold, &c);
	if (rc)
		return rc;
	uint8_t key[4] = { (uint8_t)(gen >> 24), (uint8_t)(gen >> 16), (uint8_t)(gen >> 8),
			   (uint8_t)gen };
	for (rc = ts_cursor_seek(c, key, sizeof key); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			break;
		if (kl != TS_FORMAT_COLD_KEY_LEN) {
			rc = TS_CORRUPT();
			break;
		}
		if (memcmp(k, key, 4) != 0)
			break;
		struct ts_cold_block *blk;
		if ((rc = ts_cold_open(v, vl, &blk)))
			break;
		for (size_t i = 0; i < ts_cold_nseries(blk) && rc == 0; i++)
			rc = take_piece(bd, blk, i);
		ts_cold_free(blk);
		if (rc)
			break;
	}
	ts_cursor_close(c);
	if (rc == TS_ENOTFOUND)
		rc = 0;
	return rc ? rc : series_done(bd);
}

int ts__tiers_build(struct ts_db *db, struct ts_partition *p, int force, int *state,
		    struct ts__tiers_rec *rec)
{
	struct ts_rtxn *r = NULL;
	struct ts__gen *gens = NULL;
	size_t n_gens = 0;
	struct ts__tombs *tombs = ts__tombs_get(db);
	struct build bd = { .db = db, .p = p, .tombs = tombs };
	struct ts__tiers_rec cur;
	*state = TS__TIERS_SKIPPED;
	if (atomic_load(&p->expired) & TS_FORMAT_EXPIRED_RAW) {
		/* Raw samples are gone: the tiers are all that is left, never rebuilt. */
		ts__tombs_put(tombs);
		struct ts_rtxn *rr;
		int rc = ts_env_read_begin(p->env, &rr);
		if (rc)
			return rc;
		rc = ts__tiers_read(rr, p->meta, rec);
		ts_env_read_end(rr);
		*state = TS__TIERS_CURRENT;
		return rc;
	}
	int rc = ts_env_read_begin(p->env, &r);
	if (rc)
		goto out;
	uint64_t gh;
	if ((rc = gens_hash(r, p->meta, &gh)))
		goto out;
	uint64_t th = tombs_hash(tombs, p->start, p->end);
	if ((rc = ts__cold_gens_read(r, p->meta, &gens, &n_gens)) ||
	    (rc = ts__tiers_read(r, p->meta, &cur)))
		goto out;
	struct ts_cursor *c;
	if ((rc = ts_cursor_open(r, p->chunks, &c)))
		goto out;
	int hot = ts_cursor_seek(c, NULL, 0);
	ts_cursor_close(c);
	if (cur.have && cur.rows[0] + cur.rows[1] > 0) {
		/* An older binary's rewrite keeps the row but not the table. */
		if ((rc = ts_cursor_open(r, p->tiers, &c)))
			goto out;
		int any = ts_cursor_seek(c, NULL, 0);
		ts_cursor_close(c);
		if (any == TS_ENOTFOUND)
			cur.have = 0;
		else if (any) {
			rc = any;
			goto out;
		}
	}
	if (hot != TS_ENOTFOUND || n_gens > 1) {
		rc = hot == 0 || hot == TS_ENOTFOUND ? 0 : hot;
		goto out; /* not settled: the next conversion merges it first */
	}
	if (!force && cur.have && cur.gens_hash == gh && cur.tombs_hash == th) {
		*state = TS__TIERS_CURRENT;
		*rec = cur;
		goto out;
	}
	int64_t width = p->end - p->start;
	bd.do5m = width % TS_DS_RES_5M_MS == 0;
	bd.do1h = width % TS_DS_RES_1H_MS == 0;
	if (!bd.do1h)
		ts_log(TS_LOG_WARN,
		       "%s: partition width %" PRId64 " ms is not a multiple of %s; no %s tier",
		       p->dir, width, bd.do5m ? "1h" : "5m", bd.do5m ? "1h" : "5m or 1h");
	bd.tier[0] = (struct tier){ .res = TS_FORMAT_TIER_RES_5M, .res_ms = TS_DS_RES_5M_MS };
	bd.tier[1] = (struct tier){ .res = TS_FORMAT_TIER_RES_1H, .res_ms = TS_DS_RES_1H_MS };
	if ((rc = ts_batch_new(&bd.b)) || (rc = ts__table_clear(r, p->tiers, -1, bd.b)))
		goto out;
	bd.keep5m = bd.do5m;
	if (bd.do5m && n_gens == 1 && (rc = sparse_5m(r, p, gens[0].gen)) != 0) {
		if (rc < 0)
			goto out;
		bd.keep5m = 0; /* the 1h rows are still built from 5m rows in memory */
	}
	if (n_gens == 1 && (rc = scan_gen(&bd, r, gens[0].gen)))
		goto out;
	if ((rc = tier_cut(&bd.tier[0], bd.b, p->tiers)) ||
	    (rc = tier_cut(&bd.tier[1], bd.b, p->tiers)))
		goto out;
	struct ts__tiers_rec nr = {
		.have = 1,
		.gens_hash = gh,
		.tombs_hash = th,
		.n_series = bd.n_series,
		.rows = { bd.tier[0].rows_total, bd.tier[1].rows_total },
		.bytes = { bd.tier[0].bytes_total, bd.tier[1].bytes_total },
		.flags = (bd.do5m && bd.keep5m ? TS_FORMAT_TIERS_FLAG_5M : 0u) |
			 (bd.do1h ? TS_FORMAT_TIERS_FLAG_1H : 0u),
	};
	if ((rc = rec_put(bd.b, p->meta, &nr)))
		goto out;
	/* The snapshot ends before the write; only this thread changes the partition. */
	ts_env_read_end(r);
	r = NULL;
	ts__failpoint("tiers.before_commit");
	if ((rc = ts__failpoint_err("tiers.commit")) || (rc = ts_env_apply(p->env, bd.b)))
		goto out;
	ts__failpoint("tiers.committed");
	*state = TS__TIERS_BUILT;
	*rec = nr;
	atomic_fetch_add(&db->n_tier_builds, 1);
	ts_log(TS_LOG_INFO,
	       "%s: tiers of %" PRIu32 " series: 5m %" PRIu64 " rows, %" PRIu64
	       " bytes; 1h %" PRIu64 " rows, %" PRIu64 " bytes",
	       p->dir, nr.n_series, nr.rows[0], nr.bytes[0], nr.rows[1], nr.bytes[1]);
out:
	ts_env_read_end(r);
	ts_batch_free(bd.b);
	tier_fini(&bd.tier[0]);
	tier_fini(&bd.tier[1]);
	ts_free(bd.t);
	ts_free(bd.v);
	ts_free(bd.r5);
	ts_free(bd.r1h);
	ts_free(gens);
	ts__tombs_put(tombs);
	return rc;
}

/* ---- reading ---- */

int ts__tiers_usable(struct ts_rtxn *r, const struct ts_partition *p, const struct ts__tombs *tombs,
		     uint32_t *flags)
{
	struct ts__tiers_rec rec;
	*flags = 0;
	int rc = ts__tiers_read(r, p->meta, &rec);
	if (rc || !rec.have || !rec.flags)
		return rc;
	uint64_t gh;
	if ((rc = gens_hash(r, p->meta, &gh)))
		return rc;
	unsigned gone = atomic_load(&p->expired);
	/* Where raw samples are gone, later tombstones hide rows at read time (select.c). */
	if (rec.gens_hash != gh || (!(gone & TS_FORMAT_EXPIRED_RAW) &&
				    rec.tombs_hash != tombs_hash(tombs, p->start, p->end)))
		return 0;
	if (gone & TS_FORMAT_EXPIRED_5M)
		rec.flags &= ~TS_FORMAT_TIERS_FLAG_5M;
	if (gone & TS_FORMAT_EXPIRED_1H)
		rec.flags &= ~TS_FORMAT_TIERS_FLAG_1H;
	/* A hot chunk is a late write the tiers do not hold yet. */
	struct ts_cursor *c;
	if ((rc = ts_cursor_open(r, p->chunks, &c)))
		return rc;
	int hot = ts_cursor_seek(c, NULL, 0);
	ts_cursor_close(c);
	if (hot == TS_ENOTFOUND)
		*flags = rec.flags;
	return hot == 0 || hot == TS_ENOTFOUND ? 0 : hot;
}

int ts__tiers_series(struct ts_db *db, struct ts_rtxn *r, const struct ts_partition *p, uint8_t res,
		     uint64_t id, unsigned kinds, struct ts_ds_row **rows, size_t *cap,
		     struct ts_ds_agg *out)
{
	memset(out, 0, sizeof *out);
	if (id > TS_DS_MAX_SERIES_ID)
		return 0;
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, p->tiers, &c);
	if (rc)
		return rc;
	uint8_t key[TS_FORMAT_TIER_KEY_LEN];
	key[0] = res;
	ts_format_put_be64(key + 1, id);
	const void *k = NULL, *v = NULL;
	size_t kl = 0, vl = 0;
	rc = ts_cursor_seek(c, key, sizeof key);
	if (rc == 0)
		rc = ts_cursor_get(c, &k, &kl, &v, &vl);
	ts_cursor_close(c); /* k and v stay valid while the snapshot is open */
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (kl != TS_FORMAT_TIER_KEY_LEN)
		return TS_CORRUPT();
	if (((const uint8_t *)k)[0] != res)
		return 0; /* past this resolution's blocks: the series has none */
	/* The block cache is keyed like cold blocks; tier blocks take generation numbers
	 * no partition reaches (0xffffff00 | res), then the block's last id. */
	uint8_t ck[TS_FORMAT_COLD_KEY_LEN] = { 0xff, 0xff, 0xff, res };
	memcpy(ck + 4, (const uint8_t *)k + 1, 8);
	struct ts__blk_ref ref = { 0 };
	if ((rc = ts__cold_cache_get(db, p->start, ck, v, vl, &ref)))
		return rc;
	long i = ts_cold_find(ref.b, id << TS_DS_KIND_BITS);
	if (i >= 0) {
		uint32_t n;
		ts_cold_series(ref.b, (size_t)i, NULL, &n, NULL, NULL);
		if (n > *cap && ts_grow((void **)rows, cap, n, sizeof **rows))
			rc = -ENOMEM;
		if (rc == 0)
			rc = ts_ds_tier_decode_kinds(ref.b, id, kinds, *rows, *cap, out);
		if (rc == TS_ENOTFOUND)
			rc = 0;
	}
	ts__cold_cache_put(db, &ref);
	return rc;
}
