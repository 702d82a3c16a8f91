/*
 * env.c - LMDB environments: named tables, write batches applied in one transaction
 * with map growth, read snapshots, cursors, u64 postings, reader hygiene and hot copy.
 *
 * One env is one directory (`index.mdb/`, `raw/<start>-<end>/`) holding LMDB's
 * data.mdb and lock.mdb. It is opened with MDB_NOTLS (snapshots move between worker
 * threads, and each takes its own reader slot) and MDB_NORDAHEAD (index lookups and
 * chunk reads are random; kernel read-ahead would evict useful pages).
 *
 * Invariants
 * - Only ts_env_apply()/ts_env_table() write, serialised by write_mu. The map is only
 *   resized while holding write_mu and the map gate exclusively.
 * - mdb_env_set_mapsize() unmaps the file, so no read transaction of this process may
 *   be live during it: every read transaction (ts_env_read_begin..ts_env_read_end, and
 *   the one inside ts_env_copy) holds the map gate shared. The gate is a counter under
 *   a mutex rather than a pthread rwlock because a snapshot may be ended by another
 *   thread than the one that began it, which POSIX rwlocks do not allow. The gate
 *   prefers the resizer: once it waits, new snapshots wait too, so a busy query load
 *   cannot starve the writer. Consequence: a thread must not begin a second snapshot
 *   of the same env while holding one (it would wait for a resize that waits for it).
 *   A long reader (a backup) delays a resize, and so the writer, until it ends.
 * - A batch is never lost to a full map: on MDB_MAP_FULL (from a put or from the
 *   commit) the transaction is aborted, the map doubled and the whole batch applied
 *   again from its first operation. MDB_MAP_RESIZED (another process grew the file)
 *   adopts the size recorded in the file and retries.
 * - A commit that fails for want of space (ENOSPC, EDQUOT, or EIO from a short write on
 *   a file system with under 1 MiB left) is returned as -ENOSPC and
 *   the env stays writable, so writes resume by themselves once space returns: LMDB
 *   writes a transaction's new pages before the meta page that makes them live, and a
 *   failure before the meta page leaves the previous state intact; a failed meta-page
 *   write makes LMDB itself refuse further transactions (MDB_PANIC, below).
 * - Any other commit failure (EIO...) and MDB_PANIC are sticky: the env logs it once
 *   and every later write returns TS_EIO. Nothing is retried silently.
 * - DUPFIXED_U64 tables are MDB_DUPSORT|MDB_DUPFIXED|MDB_INTEGERDUP: values are 8-byte
 *   integers in host byte order, so what a caller puts is byte-identical to what a
 *   cursor returns, LMDB sorts them numerically, and MDB_GET_MULTIPLE pages can be
 *   copied straight into a uint64_t array. (LMDB files are host-endian anyway.)
 * - U64_BLOCKS tables are plain MDB_DUPSORT whose duplicates are delta blocks (env.h).
 *   They cost about a byte per dense id where DUPFIXED costs eight plus LMDB's pages.
 *   A block starts with its first id big-endian, so memcmp (LMDB's default duplicate
 *   order) sorts a key's blocks by id, MDB_LAST_DUP finds the block to append to and
 *   MDB_GET_BOTH_RANGE the block that covers an id. Only the add operation (OP_ADD)
 *   writes them, so every stored block was made by ts_env_u64_block_encode; readers
 *   still decode them as untrusted bytes. New tail blocks go in with MDB_APPENDDUP, so
 *   LMDB splits a growing key's pages at the end and leaves them full.
 * - Only one handle per env directory per process (LMDB's POSIX locks are per process:
 *   closing a second handle would drop the first one's locks); a second open in the
 *   same process returns TS_EBUSY. Forked children are not affected.
 *
 * Batch arena: one growable buffer of records, each 4-byte aligned:
 *
 *   offset  size  field
 *   0       4     klen    (u32, host order)
 *   4       4     vlen    (u32; 0 when no value)
 *   8       2     table   (u16 index returned by ts_env_table)
 *   10      1     kind    (OP_PUT, OP_DEL, OP_ADD: value is n host-order u64; OP_DROP,
 *                         OP_CLEAR: a one-byte dummy key)
 *   11      1     has_val (DEL: 1 when a value was given)
 *   12      klen  key bytes
 *   12+klen vlen  value bytes, then 0-3 pad bytes
 */
#include "storage/env.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include "storage/env_int.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define MAX_READERS 510
/* lock.mdb: LMDB's reader table (64 bytes a reader) after a header of a few hundred
 * bytes; allocated up front, see lock_file_allocate(). */
#define LOCK_FILE_BYTES (64u << 10)
_Static_assert(MAX_READERS * 64 + 4096 <= LOCK_FILE_BYTES, "lock file holds the readers");
#define DEFAULT_MAP_BYTES (256ull << 20)
#define MAX_RESIZE_RETRIES 64

enum { OP_PUT = 1, OP_DEL = 2, OP_ADD = 3, OP_DROP = 4, OP_CLEAR = 5 };

/* env->flags bit (not a public flag): the table was dropped by a committed batch. */
#define TABLE_DROPPED 0x100
/* Ids one block of at most 511 bytes (LMDB's bound on a DUPSORT value) can hold. */
#define BLOCK_IDS_MAX TS_ENV_U64_BLOCK_IDS(511)

struct op_hdr {
	uint32_t klen;
	uint32_t vlen;
	uint16_t table;
	uint8_t kind;
	uint8_t has_val;
};
_Static_assert(sizeof(struct op_hdr) == 12, "batch records: 4-byte aligned header");

struct ts_batch {
	unsigned char *buf;
	size_t len;
	size_t cap;
	size_t n_ops;
	int append; /* puts use MDB_APPEND (see ts_batch_set_append) */
};

/* Shared/exclusive gate around the mapping (see the invariants above). */
struct map_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned readers;
	unsigned resizers_waiting;
	int resizing;
};

struct ts_env {
	MDB_env *mdb;
	char *dir;
	int read_only;
	unsigned n_tables;
	MDB_dbi dbi[TS_ENV_MAX_TABLES];
	unsigned flags[TS_ENV_MAX_TABLES];
	char *names[TS_ENV_MAX_TABLES];
	pthread_mutex_t write_mu;
	struct map_gate gate;
	int sync_init; /* 1: write_mu, 2: gate.mu, 3: gate.cv initialised */
	atomic_int failed;
	int fail_next_commit; /* test hook, errno */
	unsigned long n_grows;
	/* process-wide registry of open env directories */
	dev_t dev;
	ino_t ino;
	pid_t pid;
	int registered;
	struct ts_env *reg_next;
};

struct ts_rtxn {
	struct ts_env *env;
	MDB_txn *txn;
};

struct ts_cursor {
	MDB_cursor *cur;
	MDB_val k;
	MDB_val v;
	int valid;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ts_env *reg_head;

/* MDB_* and errno codes to ours; our own TS_E* codes pass through. MDB_PANIC means the
 * env is unusable, which for callers is the same as an I/O failure. */
static int xlate(int rc)
{
	if (rc <= -40000 && rc > -40100)
		return rc;
	if (rc == MDB_PANIC)
		return TS_EIO;
	if (rc == EAGAIN || rc == MDB_MAP_RESIZED) /* locked; or still growing elsewhere */
		return TS_EBUSY;
	return ts_err_from_mdb(rc);
}

/* ---- map gate ---------------------------------------------------------------- */

static void gate_enter_shared(struct map_gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (g->resizing || g->resizers_waiting)
		pthread_cond_wait(&g->cv, &g->mu);
	g->readers++;
	pthread_mutex_unlock(&g->mu);
}

static void gate_leave_shared(struct map_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->readers--;
	if (g->readers == 0)
		pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void gate_enter_excl(struct map_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->resizers_waiting++;
	while (g->readers || g->resizing)
		pthread_cond_wait(&g->cv, &g->mu);
	g->resizers_waiting--;
	g->resizing = 1;
	pthread_mutex_unlock(&g->mu);
}

static void gate_leave_excl(struct map_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->resizing = 0;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* ---- open / close -------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = c;
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Claims (dev, ino) for this process; TS_EBUSY if a handle already has it. */
static int registry_add(struct ts_env *env)
{
	int rc = 0;
	pthread_mutex_lock(&reg_mu);
	for (struct ts_env *e = reg_head; e; e = e->reg_next) {
		/* entries inherited through fork() belong to the parent */
		if (e->pid == env->pid && e->dev == env->dev && e->ino == env->ino) {
			rc = TS_EBUSY;
			goto out;
		}
	}
	env->reg_next = reg_head;
	reg_head = env;
	env->registered = 1;
out:
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

static void registry_del(struct ts_env *env)
{
	if (!env->registered)
		return;
	pthread_mutex_lock(&reg_mu);
	for (struct ts_env **p = &reg_head; *p; p = &(*p)->reg_next) {
		if (*p == env) {
			*p = env->reg_next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	env->registered = 0;
}

/* A data file shorter than its last committed page would fault (SIGBUS) on access;
 * report it as corruption instead. */
static int check_file_size(struct ts_env *env)
{
	MDB_envinfo info;
	MDB_stat st;
	int fd;
	struct stat fs;
	int rc = mdb_env_info(env->mdb, &info);
	if (!rc)
		rc = mdb_env_stat(env->mdb, &st);
	if (!rc)
		rc = mdb_env_get_fd(env->mdb, &fd);
	if (rc)
		return xlate(rc);
	if (fstat(fd, &fs) != 0)
		return -errno;
	if ((uint64_t)fs.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize) {
		ts_log(TS_LOG_ERROR, "env %s: data.mdb has %lld bytes, last page needs %llu",
		       env->dir, (long long)fs.st_size,
		       (unsigned long long)(((uint64_t)info.me_last_pgno + 1) * st.ms_psize));
		return TS_CORRUPT();
	}
	return 0;
}

/*
 * LMDB sizes lock.mdb with ftruncate (a sparse file) and then writes its reader table
 * through a shared mapping. On a full file system (or a full tmpfs, such as a memory-
 * backed Kubernetes emptyDir) that first write to a hole cannot get a block and the
 * kernel kills the process with SIGBUS. So the lock file gets its blocks up front, where
 * running out of space is an ordinary -ENOSPC; LMDB keeps a lock file that is at least as
 * large as it needs (it then derives its reader count from the size).
 */
static int lock_file_allocate(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/lock.mdb", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) != 0 ? -errno : 0;
	off_t want = (off_t)LOCK_FILE_BYTES;
	if (rc == 0 && (st.st_size < want || st.st_blocks * 512 < want)) {
		rc = -posix_fallocate(fd, 0, want);
		if (rc == -EOPNOTSUPP || rc == -EINVAL) {
			/* No fallocate here (some network file systems): write the zeros. */
			static const char zeros[4096];
			rc = 0;
			for (off_t off = 0; off < want && rc == 0; off += (off_t)sizeof zeros)
				if (pwrite(fd, zeros, sizeof zeros, off) != (ssize_t)sizeof zeros)
					rc = errno ? -errno : -ENOSPC;
		}
	}
	close(fd);
	if (rc == -EDQUOT)
		rc = -ENOSPC;
	return rc;
}

int ts_env_open(const char *dir, const struct ts_env_opts *opts, struct ts_env **out)
{
	static const struct ts_env_opts defaults;
	struct ts_env *env = NULL;
	struct stat st;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	env = ts_calloc(1, sizeof *env);
	if (!env)
		return -ENOMEM;
	env->read_only = opts->read_only != 0;
	env->pid = getpid();
	env->dir = ts_strdup(dir);
	if (!env->dir) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = -pthread_mutex_init(&env->write_mu, NULL)) != 0)
		goto out;
	env->sync_init = 1;
	if ((rc = -pthread_mutex_init(&env->gate.mu, NULL)) != 0)
		goto out;
	env->sync_init = 2;
	if ((rc = -pthread_cond_init(&env->gate.cv, NULL)) != 0)
		goto out;
	env->sync_init = 3;

	if (!env->read_only && (rc = mkdir_p(dir)) != 0)
		goto out;
	if (stat(dir, &st) != 0) {
		rc = -errno;
		goto out;
	}
	env->dev = st.st_dev;
	env->ino = st.st_ino;
	if ((rc = registry_add(env)) != 0) {
		ts_log(TS_LOG_ERROR, "env %s: already open in this process", dir);
		goto out;
	}

	if (!env->read_only && (rc = lock_file_allocate(dir)) != 0)
		goto out;
	if ((rc = mdb_env_create(&env->mdb)) != 0)
		goto out;
	if ((rc = mdb_env_set_maxdbs(env->mdb, TS_ENV_MAX_TABLES)) != 0 ||
	    (rc = mdb_env_set_maxreaders(env->mdb, MAX_READERS)) != 0)
		goto out;
	/* Read-only openers take the size the writer recorded in the file. */
	if (!env->read_only) {
		uint64_t map = opts->map_bytes ? opts->map_bytes : DEFAULT_MAP_BYTES;
		if (map > SIZE_MAX) {
			rc = TS_ELIMIT;
			goto out;
		}
		if ((rc = mdb_env_set_mapsize(env->mdb, (size_t)map)) != 0)
			goto out;
	}
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	if (env->read_only)
		flags |= MDB_RDONLY;
	if (opts->no_sync)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_open(env->mdb, dir, flags, 0644)) != 0)
		goto out;
	if ((rc = check_file_size(env)) != 0)
		goto out;

	int dead = 0;
	if ((rc = mdb_reader_check(env->mdb, &dead)) != 0)
		goto out;
	if (dead > 0)
		ts_log(TS_LOG_INFO, "env %s: cleared %d stale reader slot(s)", dir, dead);
	*out = env;
	return 0;

out:
	rc = xlate(rc); /* MDB_* and positive errno from LMDB; ours pass through */
	if (rc == TS_ECORRUPT)
		ts_log(TS_LOG_ERROR, "env %s: cannot open: %s", dir, ts_strerror(rc));
	ts_env_close(env);
	return rc;
}

void ts_env_close(struct ts_env *env)
{
	if (!env)
		return;
	/* LMDB requires mdb_env_close even after a failed mdb_env_open */
	if (env->mdb)
		mdb_env_close(env->mdb);
	registry_del(env);
	if (env->sync_init >= 3)
		pthread_cond_destroy(&env->gate.cv);
	if (env->sync_init >= 2)
		pthread_mutex_destroy(&env->gate.mu);
	if (env->sync_init >= 1)
		pthread_mutex_destroy(&env->write_mu);
	for (unsigned i = 0; i < env->n_tables; i++)
		ts_free(env->names[i]);
	ts_free(env->dir);
	ts_free(env);
}

/* ---- map size ---------------------------------------------------------------------- */

/* Adopts the map size another process recorded (MDB_MAP_RESIZED). Caller holds
 * write_mu. */
static int adopt_map_size(struct ts_env *env)
{
	gate_enter_excl(&env->gate);
	int rc = mdb_env_set_mapsize(env->mdb, 0);
	gate_leave_excl(&env->gate);
	return rc ? xlate(rc) : 0;
}

/* Doubles the map after MDB_MAP_FULL. Caller holds write_mu, no write txn open. */
static int grow_map(struct ts_env *env)
{
	MDB_envinfo info;
	int rc = mdb_env_info(env->mdb, &info);
	if (rc)
		return xlate(rc);
	size_t old = info.me_mapsize;
	if (old > SIZE_MAX / 2)
		return TS_EFULL;
	size_t want = old * 2;
	gate_enter_excl(&env->gate);
	rc = mdb_env_set_mapsize(env->mdb, want);
	gate_leave_excl(&env->gate);
	if (rc) {
		ts_log(TS_LOG_ERROR, "env %s: cannot grow map to %zu bytes: %s", env->dir, want,
		       mdb_strerror(rc));
		return xlate(rc);
	}
	env->n_grows++;
	ts_log(TS_LOG_INFO, "env %s: map grown from %zu to %zu KiB", env->dir, old >> 10,
	       want >> 10);
	return 0;
}

/* ---- write transactions --------------------------------------------------------- */

typedef int (*write_fn)(struct ts_env *env, MDB_txn *txn, void *arg);

static int commit(struct ts_env *env, MDB_txn *txn)
{
	if (env->fail_next_commit) {
		int err = env->fail_next_commit;
		env->fail_next_commit = 0;
		mdb_txn_abort(txn);
		return err;
	}
	return mdb_txn_commit(txn);
}

/* LMDB reports a short pwrite as EIO, and on a regular file a write comes up short when
 * the file system is full: so an EIO with (almost) no space left is taken for ENOSPC. */
static int no_space(const struct ts_env *env)
{
	struct statvfs v;
	if (statvfs(env->dir, &v) != 0)
		return 0;
	return (uint64_t)v.f_bavail * v.f_frsize < (1u << 20) || v.f_favail == 0;
}

/* Marks the env failed (logged once) after a commit failure; returns TS_EIO. */
static int set_failed(struct ts_env *env, int rc)
{
	if (!atomic_exchange(&env->failed, 1))
		ts_log(TS_LOG_ERROR, "env %s: commit failed (%s); refusing further writes",
		       env->dir, mdb_strerror(rc));
	return TS_EIO;
}

/* Runs fn inside a write transaction and commits, retrying the whole of fn after
 * growing or adopting the map size. fn returns MDB_* / errno / TS_E*. */
static int run_write(struct ts_env *env, write_fn fn, void *arg)
{
	int rc;
	if (env->read_only)
		return -EACCES;
	pthread_mutex_lock(&env->write_mu);
	for (int resized = 0;;) {
		MDB_txn *txn = NULL;
		if (atomic_load(&env->failed)) {
			rc = TS_EIO;
			break;
		}
		rc = mdb_txn_begin(env->mdb, NULL, 0, &txn);
		if (rc == MDB_MAP_RESIZED && resized++ < MAX_RESIZE_RETRIES) {
			if ((rc = adopt_map_size(env)) != 0)
				break;
			continue;
		}
		if (rc) {
			rc = rc == MDB_PANIC ? set_failed(env, rc) : xlate(rc);
			break;
		}
		int at_commit = 0;
		rc = fn(env, txn, arg);
		if (rc) {
			mdb_txn_abort(txn);
		} else {
			at_commit = 1;
			rc = commit(env, txn); /* frees txn whatever the outcome */
		}
		if (rc == MDB_MAP_FULL) {
			if ((rc = grow_map(env)) != 0)
				break;
			continue;
		}
		if (at_commit && (rc == ENOSPC || rc == EDQUOT || (rc == EIO && no_space(env)))) {
			rc = -ENOSPC; /* nothing became live: the caller may retry later */
			break;
		}
		if (rc == MDB_PANIC || (rc && at_commit))
			rc = set_failed(env, rc);
		break;
	}
	pthread_mutex_unlock(&env->write_mu);
	return xlate(rc);
}

/* ---- tables ---------------------------------------------------------------------- */

struct table_open {
	const char *name;
	unsigned mdb_flags;
	MDB_dbi dbi;
};

static int table_open_fn(struct ts_env *env, MDB_txn *txn, void *arg)
{
	(void)env;
	struct table_open *t = arg;
	return mdb_dbi_open(txn, t->name, t->mdb_flags | MDB_CREATE, &t->dbi);
}

/* Begins a read txn with the gate held shared, adopting a grown map if needed. */
static int begin_read(struct ts_env *env, MDB_txn **txn)
{
	for (int tries = 0;; tries++) {
		gate_enter_shared(&env->gate);
		int rc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, txn);
		if (rc == 0)
			return 0;
		gate_leave_shared(&env->gate);
		if (rc != MDB_MAP_RESIZED || tries >= MAX_RESIZE_RETRIES)
			return xlate(rc);
		pthread_mutex_lock(&env->write_mu);
		rc = adopt_map_size(env);
		pthread_mutex_unlock(&env->write_mu);
		if (rc)
			return rc;
	}
}

static unsigned mdb_flags_of(unsigned flags)
{
	if (flags & TS_TABLE_DUPFIXED_U64)
		return MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
	if (flags & TS_TABLE_U64_BLOCKS)
		return MDB_DUPSORT;
	return 0;
}

int ts_env_table(struct ts_env *env, const char *name, unsigned flags, unsigned *table)
{
	int rc;
	unsigned known = TS_TABLE_DUPFIXED_U64 | TS_TABLE_U64_BLOCKS | TS_TABLE_IF_EXISTS;
	if (!name || !*name || (flags & ~known) ||
	    (flags & TS_TABLE_DUPFIXED_U64 && flags & TS_TABLE_U64_BLOCKS))
		return TS_EINVALID;
	int if_exists = (flags & TS_TABLE_IF_EXISTS) != 0;
	flags &= ~(unsigned)TS_TABLE_IF_EXISTS;
	for (unsigned i = 0; i < env->n_tables; i++) {
		if (strcmp(env->names[i], name) == 0) {
			if (env->flags[i] & TABLE_DROPPED)
				return TS_ENOTFOUND;
			if (env->flags[i] != flags)
				return TS_EINVALID;
			*table = i;
			return 0;
		}
	}
	if (env->n_tables >= TS_ENV_MAX_TABLES)
		return TS_ELIMIT;
	char *copy = ts_strdup(name);
	if (!copy)
		return -ENOMEM;
	struct table_open t = { .name = name, .mdb_flags = mdb_flags_of(flags) };
	/* Without MDB_CREATE a read transaction can open the handle (LMDB keeps it once
	 * committed), so a writable env need not write to look. */
	if (env->read_only || if_exists) {
		MDB_txn *txn;
		if ((rc = begin_read(env, &txn)) != 0)
			goto out;
		rc = mdb_dbi_open(txn, name, t.mdb_flags, &t.dbi);
		/* commit, not abort: an aborted txn would close the new handle */
		rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
		gate_leave_shared(&env->gate);
		rc = xlate(rc);
	} else {
		rc = run_write(env, table_open_fn, &t);
	}
	if (rc)
		goto out;
	env->dbi[env->n_tables] = t.dbi;
	env->flags[env->n_tables] = flags;
	env->names[env->n_tables] = copy;
	copy = NULL;
	*table = env->n_tables++;
out:
	ts_free(copy);
	return rc;
}

/* ---- batches ----------------------------------------------------------------------- */

int ts_batch_new(struct ts_batch **out)
{
	*out = ts_calloc(1, sizeof **out);
	return *out ? 0 : -ENOMEM;
}

void ts_batch_free(struct ts_batch *b)
{
	if (!b)
		return;
	ts_free(b->buf);
	ts_free(b);
}

void ts_batch_reset(struct ts_batch *b)
{
	b->len = 0;
	b->n_ops = 0;
}

void ts_batch_set_append(struct ts_batch *b, int on)
{
	b->append = on != 0;
}

size_t ts_batch_len(const struct ts_batch *b)
{
	return b->n_ops;
}

static size_t rec_size(size_t klen, size_t vlen)
{
	return (sizeof(struct op_hdr) + klen + vlen + 3) & ~(size_t)3;
}

static int batch_add(struct ts_batch *b, int kind, unsigned table, const void *key, size_t klen,
		     const void *val, size_t vlen)
{
	if (table >= TS_ENV_MAX_TABLES || klen == 0 || !key || (vlen && !val))
		return TS_EINVALID;
	if (klen > UINT32_MAX || vlen > UINT32_MAX)
		return TS_ELIMIT;
	size_t rec = rec_size(klen, vlen);
	if (rec > SIZE_MAX - b->len)
		return TS_ELIMIT;
	if (b->len + rec > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + rec) {
			if (cap > SIZE_MAX / 2)
				return TS_ELIMIT;
			cap *= 2;
		}
		unsigned char *nb = ts_realloc(b->buf, cap);
		if (!nb)
			return -ENOMEM;
		b->buf = nb;
		b->cap = cap;
	}
	struct op_hdr h = {
		.klen = (uint32_t)klen,
		.vlen = (uint32_t)vlen,
		.table = (uint16_t)table,
		.kind = (uint8_t)kind,
		.has_val = val != NULL,
	};
	unsigned char *p = b->buf + b->len;
	memcpy(p, &h, sizeof h);
	memcpy(p + sizeof h, key, klen);
	if (vlen)
		memcpy(p + sizeof h + klen, val, vlen);
	b->len += rec;
	b->n_ops++;
	return 0;
}

int ts_batch_put(struct ts_batch *b, unsigned table, const void *key, size_t klen, const void *val,
		 size_t vlen)
{
	static const char empty;
	return batch_add(b, OP_PUT, table, key, klen, val ? val : &empty, val ? vlen : 0);
}

int ts_batch_del(struct ts_batch *b, unsigned table, const void *key, size_t klen, const void *val,
		 size_t vlen)
{
	return batch_add(b, OP_DEL, table, key, klen, val, val ? vlen : 0);
}

int ts_batch_add_u64s(struct ts_batch *b, unsigned table, const void *key, size_t klen,
		      const uint64_t *ids, size_t n)
{
	if (!ids || n == 0)
		return TS_EINVALID;
	if (n > UINT32_MAX / sizeof *ids)
		return TS_ELIMIT;
	return batch_add(b, OP_ADD, table, key, klen, ids, n * sizeof *ids);
}

int ts_batch_drop(struct ts_batch *b, unsigned table)
{
	static const char dummy;
	return batch_add(b, OP_DROP, table, &dummy, 1, NULL, 0);
}

int ts_batch_clear(struct ts_batch *b, unsigned table)
{
	static const char dummy;
	return batch_add(b, OP_CLEAR, table, &dummy, 1, NULL, 0);
}

/* ---- delta blocks ------------------------------------------------------------------- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t ts_env_u64_block_encode(const uint64_t *ids, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	uint64_t first = ids[0];
	for (int i = 7; i >= 0; i--, first >>= 8)
		out[i] = (uint8_t)first;
	size_t pos = 8, i = 1;
	for (; i < n; i++) {
		uint64_t d = ids[i] - ids[i - 1];
		if (pos + varint_len(d) > cap)
			break;
		while (d >= 0x80) {
			out[pos++] = (uint8_t)(d | 0x80);
			d >>= 7;
		}
		out[pos++] = (uint8_t)d;
	}
	*len = pos;
	return i;
}

int ts_env_u64_block_decode(const void *p, size_t len, uint64_t *out, size_t cap, size_t *n)
{
	const uint8_t *b = p;
	*n = 0;
	if (len < 8 || len > 511)
		return TS_CORRUPT();
	uint64_t id = 0;
	for (int i = 0; i < 8; i++)
		id = id << 8 | b[i];
	if (cap == 0)
		return TS_ELIMIT;
	out[0] = id;
	size_t k = 1;
	for (size_t pos = 8; pos < len;) {
		uint64_t d = 0;
		for (unsigned shift = 0;; shift += 7) {
			if (pos >= len || shift > 63)
				return TS_CORRUPT(); /* cut off, or more than ten bytes */
			uint8_t c = b[pos++];
			if (shift == 63 && c > 1)
				return TS_CORRUPT(); /* over 64 bits */
			if (shift && c == 0)
				return TS_CORRUPT(); /* overlong: encode never writes it */
			d |= (uint64_t)(c & 0x7f) << shift;
			if (!(c & 0x80))
				break;
		}
		if (d == 0 || d > UINT64_MAX - id)
			return TS_CORRUPT();
		id += d;
		if (k == cap) {
			*n = k;
			return TS_ELIMIT;
		}
		out[k++] = id;
	}
	*n = k;
	return 0;
}

/* Decodes the block v of a table we write: a block LMDB hands back must decode whole
 * into BLOCK_IDS_MAX ids, anything else is corruption. */
static int block_read(const MDB_val *v, uint64_t *out, size_t *n)
{
	int rc = ts_env_u64_block_decode(v->mv_data, v->mv_size, out, BLOCK_IDS_MAX, n);
	return rc == TS_ELIMIT ? TS_CORRUPT() : rc;
}

/* Writes ids[0..n) (ascending, unique) as full blocks at the cursor's key: the first
 * with first_flags, the others with MDB_APPENDDUP when append (they follow it, and LMDB
 * then leaves full pages behind instead of half ones). first_flags is MDB_APPENDDUP when
 * all of them sort after the key's remaining blocks. */
static int blocks_put(MDB_cursor *cur, const MDB_val *key, const uint64_t *ids, size_t n,
		      unsigned first_flags, int append)
{
	unsigned flags = first_flags;
	uint8_t blk[TS_ENV_U64_BLOCK_MAX];
	for (size_t i = 0; i < n;) {
		size_t len;
		i += ts_env_u64_block_encode(ids + i, n - i, blk, sizeof blk, &len);
		MDB_val k = *key, v = { .mv_size = len, .mv_data = blk };
		int rc = mdb_cursor_put(cur, &k, &v, flags);
		if (rc)
			return rc;
		flags = append ? MDB_APPENDDUP : 0;
	}
	return 0;
}

/* Adds x, which is not above the key's largest id, to the block covering it: the block
 * with the largest first id <= x (or the first block), rewritten whole. Rare (the
 * engine's ids only grow), so simple rather than fast. */
static int block_insert(MDB_cursor *cur, const MDB_val *key, uint64_t x)
{
	MDB_val k0 = *key, *k = &k0; /* cursor gets overwrite the key with map pointers */
	uint8_t be[8];
	for (int i = 7; i >= 0; i--)
		be[i] = (uint8_t)(x >> (8 * (7 - i)));
	uint64_t ids[BLOCK_IDS_MAX + 1];
	size_t n;
	MDB_val v = { .mv_size = sizeof be, .mv_data = be };
	int rc = mdb_cursor_get(cur, k, &v, MDB_GET_BOTH_RANGE);
	if (rc == MDB_NOTFOUND) { /* every block starts below x: the last one */
		k0 = *key;
		if ((rc = mdb_cursor_get(cur, k, &v, MDB_SET_KEY)) == 0)
			rc = mdb_cursor_get(cur, k, &v, MDB_LAST_DUP);
	} else if (rc == 0 && (v.mv_size < 8 || memcmp(v.mv_data, be, 8) != 0)) {
		/* the block found starts above x: x belongs to the one before, if any */
		rc = mdb_cursor_get(cur, k, &v, MDB_PREV_DUP);
		if (rc == MDB_NOTFOUND) {
			k0 = *key;
			v = (MDB_val){ .mv_size = sizeof be, .mv_data = be };
			rc = mdb_cursor_get(cur, k, &v, MDB_GET_BOTH_RANGE);
		}
	}
	if (rc)
		return rc;
	if ((rc = block_read(&v, ids, &n)) != 0)
		return rc;
	size_t at = 0;
	while (at < n && ids[at] < x)
		at++;
	if (at < n && ids[at] == x)
		return 0; /* present */
	memmove(ids + at + 1, ids + at, (n - at) * sizeof *ids);
	ids[at] = x;
	if ((rc = mdb_cursor_del(cur, 0)) != 0)
		return rc;
	return blocks_put(cur, key, ids, n + 1, 0, 0);
}

/* Adds ids[0..n) (ascending, unique) to key's set. */
static int set_add(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, const uint64_t *ids, size_t n,
		   uint64_t **scratch, size_t *scratch_cap)
{
	/* Cursor gets overwrite the key they are given with a pointer into the map, which a
	 * delete may free: every get takes a copy (k), every put the caller's key. */
	MDB_val k0 = *key, *k = &k0;
	MDB_cursor *cur;
	MDB_val v;
	uint64_t last[BLOCK_IDS_MAX];
	size_t n_last = 0, i = 0;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	rc = mdb_cursor_get(cur, k, &v, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND) {
		rc = blocks_put(cur, key, ids, n, 0, 1);
		goto out;
	}
	if (rc || (rc = mdb_cursor_get(cur, k, &v, MDB_LAST_DUP)) != 0 ||
	    (rc = block_read(&v, last, &n_last)) != 0)
		goto out;
	for (; i < n && ids[i] <= last[n_last - 1]; i++)
		if ((rc = block_insert(cur, key, ids[i])) != 0)
			goto out;
	if (i == n)
		goto out;
	/* The rest follow the largest id: the last block (read again, an insert may have
	 * split it) is rewritten with as many of them as fit, the others fill new blocks. */
	k0 = *key;
	if ((rc = mdb_cursor_get(cur, k, &v, MDB_SET_KEY)) != 0 ||
	    (rc = mdb_cursor_get(cur, k, &v, MDB_LAST_DUP)) != 0 ||
	    (rc = block_read(&v, last, &n_last)) != 0)
		goto out;
	size_t m = n_last + (n - i);
	if (m > *scratch_cap) {
		uint64_t *p = ts_realloc(*scratch, m * sizeof *p);
		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		*scratch = p;
		*scratch_cap = m;
	}
	memcpy(*scratch, last, n_last * sizeof *last);
	memcpy(*scratch + n_last, ids + i, (n - i) * sizeof *ids);
	if ((rc = mdb_cursor_del(cur, 0)) == 0)
		rc = blocks_put(cur, key, *scratch, m, MDB_APPENDDUP, 1);
out:
	mdb_cursor_close(cur);
	return rc;
}

/* One OP_ADD record of a run, for sorting by (table, key). */
struct add_ref {
	const unsigned char *key, *ids;
	uint32_t klen, n;
	uint16_t table;
};

static int add_ref_cmp(const void *x, const void *y)
{
	const struct add_ref *a = x, *b = y;
	if (a->table != b->table)
		return a->table < b->table ? -1 : 1;
	int c = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

/* Applies the run of consecutive OP_ADD records starting at *off (advanced past it),
 * grouped by key so that each key's last block is rewritten once per batch. */
static int apply_adds(struct ts_env *env, MDB_txn *txn, const struct ts_batch *b, size_t *off)
{
	struct add_ref *refs = NULL;
	uint64_t *ids = NULL, *scratch = NULL;
	size_t n_refs = 0, cap_refs = 0, cap_ids = 0, cap_scratch = 0;
	int rc = 0;
	while (*off < b->len) {
		struct op_hdr h;
		memcpy(&h, b->buf + *off, sizeof h);
		if (h.kind != OP_ADD)
			break;
		if (h.table >= env->n_tables ||
		    (env->flags[h.table] & (TS_TABLE_U64_BLOCKS | TABLE_DROPPED)) !=
			    TS_TABLE_U64_BLOCKS ||
		    h.vlen % sizeof(uint64_t)) {
			rc = TS_EINVALID;
			goto out;
		}
		if (n_refs == cap_refs) {
			size_t cap = cap_refs ? cap_refs * 2 : 64;
			struct add_ref *p = ts_realloc(refs, cap * sizeof *p);
			if (!p) {
				rc = -ENOMEM;
				goto out;
			}
			refs = p;
			cap_refs = cap;
		}
		const unsigned char *key = b->buf + *off + sizeof h;
		refs[n_refs++] = (struct add_ref){ .key = key,
						   .ids = key + h.klen,
						   .klen = h.klen,
						   .n = h.vlen / (uint32_t)sizeof(uint64_t),
						   .table = h.table };
		*off += rec_size(h.klen, h.vlen);
	}
	qsort(refs, n_refs, sizeof *refs, add_ref_cmp);
	for (size_t i = 0, j; i < n_refs && rc == 0; i = j) {
		size_t n = 0;
		for (j = i; j < n_refs && add_ref_cmp(&refs[i], &refs[j]) == 0; j++) {
			if (n + refs[j].n > cap_ids) {
				size_t cap = (n + refs[j].n) * 2;
				uint64_t *p = ts_realloc(ids, cap * sizeof *p);
				if (!p) {
					rc = -ENOMEM;
					goto out;
				}
				ids = p;
				cap_ids = cap;
			}
			memcpy(ids + n, refs[j].ids, refs[j].n * sizeof *ids);
			n += refs[j].n;
		}
		qsort(ids, n, sizeof *ids, u64_cmp);
		size_t u = 0;
		for (size_t x = 0; x < n; x++)
			if (u == 0 || ids[x] != ids[u - 1])
				ids[u++] = ids[x];
		MDB_val k = { .mv_size = refs[i].klen, .mv_data = (void *)refs[i].key };
		rc = set_add(txn, env->dbi[refs[i].table], &k, ids, u, &scratch, &cap_scratch);
	}
out:
	ts_free(refs);
	ts_free(ids);
	ts_free(scratch);
	return rc;
}

static int apply_fn(struct ts_env *env, MDB_txn *txn, void *arg)
{
	const struct ts_batch *b = arg;
	for (size_t off = 0; off < b->len;) {
		struct op_hdr h;
		memcpy(&h, b->buf + off, sizeof h);
		if (h.kind == OP_ADD) {
			int rc = apply_adds(env, txn, b, &off);
			if (rc)
				return rc;
			continue;
		}
		unsigned char *key = b->buf + off + sizeof h;
		unsigned char *val = key + h.klen;
		off += rec_size(h.klen, h.vlen);
		if (h.table >= env->n_tables || (env->flags[h.table] & TABLE_DROPPED))
			return TS_EINVALID;
		MDB_dbi dbi = env->dbi[h.table];
		int rc;
		if (h.kind == OP_DROP) {
			/* mdb_drop closes the handle even if this transaction then aborts (a
			 * MAP_FULL retry): take it by name again, which reopens it then. */
			rc = mdb_dbi_open(txn, env->names[h.table],
					  mdb_flags_of(env->flags[h.table]), &dbi);
			if (rc == 0) {
				env->dbi[h.table] = dbi;
				rc = mdb_drop(txn, dbi, 1);
			}
			if (rc)
				return rc;
			continue;
		}
		if (h.kind == OP_CLEAR) {
			if ((rc = mdb_drop(txn, dbi, 0)))
				return rc;
			continue;
		}
		MDB_val k = { .mv_size = h.klen, .mv_data = key };
		MDB_val v = { .mv_size = h.vlen, .mv_data = val };
		uint64_t u;
		int dup = (env->flags[h.table] & TS_TABLE_DUPFIXED_U64) != 0;
		/* blocks are only ever made by OP_ADD; a key is deleted whole */
		if ((env->flags[h.table] & TS_TABLE_U64_BLOCKS) && (h.kind == OP_PUT || h.has_val))
			return TS_EINVALID;
		if (dup && (h.kind == OP_PUT || h.has_val)) {
			if (h.vlen != sizeof u)
				return TS_EINVALID;
			/* INTEGERDUP compares values as aligned integers */
			memcpy(&u, val, sizeof u);
			v.mv_data = &u;
		}
		if (h.kind == OP_PUT) {
			rc = mdb_put(txn, dbi, &k, &v, b->append && !dup ? MDB_APPEND : 0);
		} else {
			rc = mdb_del(txn, dbi, &k, h.has_val ? &v : NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0; /* deleting what is absent is done */
		}
		if (rc)
			return rc;
	}
	return 0;
}

int ts_env_apply(struct ts_env *env, struct ts_batch *b)
{
	if (b->n_ops == 0)
		return 0;
	int rc = run_write(env, apply_fn, b);
	for (size_t off = 0; rc == 0 && off < b->len;) {
		struct op_hdr h;
		memcpy(&h, b->buf + off, sizeof h);
		if (h.kind == OP_DROP) /* committed: LMDB closed the handle */
			env->flags[h.table] |= TABLE_DROPPED;
		off += rec_size(h.klen, h.vlen);
	}
	return rc;
}

/* ---- reads -------------------------------------------------------------------------- */

int ts_env_read_begin(struct ts_env *env, struct ts_rtxn **out)
{
	*out = NULL;
	struct ts_rtxn *r = ts_malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	int rc = begin_read(env, &r->txn);
	if (rc) {
		ts_free(r);
		return rc;
	}
	r->env = env;
	*out = r;
	return 0;
}

void ts_env_read_end(struct ts_rtxn *r)
{
	if (!r)
		return;
	mdb_txn_abort(r->txn);
	gate_leave_shared(&r->env->gate);
	ts_free(r);
}

int ts_env_get(struct ts_rtxn *r, unsigned table, const void *key, size_t klen, const void **val,
	       size_t *vlen)
{
	if (table >= r->env->n_tables || (r->env->flags[table] & TABLE_DROPPED) || klen == 0)
		return TS_EINVALID;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v;
	int rc = mdb_get(r->txn, r->env->dbi[table], &k, &v);
	if (rc)
		return xlate(rc);
	if (val)
		*val = v.mv_data;
	if (vlen)
		*vlen = v.mv_size;
	return 0;
}

int ts_cursor_open(struct ts_rtxn *r, unsigned table, struct ts_cursor **out)
{
	*out = NULL;
	if (table >= r->env->n_tables || (r->env->flags[table] & TABLE_DROPPED))
		return TS_EINVALID;
	struct ts_cursor *c = ts_calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	int rc = mdb_cursor_open(r->txn, r->env->dbi[table], &c->cur);
	if (rc) {
		ts_free(c);
		return xlate(rc);
	}
	*out = c;
	return 0;
}

void ts_cursor_close(struct ts_cursor *c)
{
	if (!c)
		return;
	mdb_cursor_close(c->cur);
	ts_free(c);
}

static int cursor_op(struct ts_cursor *c, MDB_cursor_op op)
{
	int rc = mdb_cursor_get(c->cur, &c->k, &c->v, op);
	c->valid = rc == 0;
	return xlate(rc);
}

int ts_cursor_seek(struct ts_cursor *c, const void *key, size_t klen)
{
	if (klen == 0)
		return cursor_op(c, MDB_FIRST);
	c->k.mv_size = klen;
	c->k.mv_data = (void *)key;
	return cursor_op(c, MDB_SET_RANGE);
}

int ts_cursor_next(struct ts_cursor *c)
{
	return cursor_op(c, MDB_NEXT);
}

int ts_cursor_get(struct ts_cursor *c, const void **key, size_t *klen, const void **val,
		  size_t *vlen)
{
	if (!c->valid)
		return TS_ENOTFOUND;
	if (key)
		*key = c->k.mv_data;
	if (klen)
		*klen = c->k.mv_size;
	if (val)
		*val = c->v.mv_data;
	if (vlen)
		*vlen = c->v.mv_size;
	return 0;
}

/* Makes room for `more` values in the caller's array. */
static int reserve_u64s(uint64_t **vals, size_t n, size_t *cap, size_t more)
{
	if (more > SIZE_MAX / sizeof(uint64_t) - n)
		return -ENOMEM;
	if (n + more <= *cap)
		return 0;
	size_t want = n + more;
	if (*cap <= SIZE_MAX / sizeof(uint64_t) / 2 && want < *cap * 2)
		want = *cap * 2;
	uint64_t *p = ts_realloc(*vals, want * sizeof *p);
	if (!p)
		return -ENOMEM;
	*vals = p;
	*cap = want;
	return 0;
}

/* ts_env_get_u64s of a U64_BLOCKS table: the key's blocks in order, each decoded
 * straight into the caller's array. */
static int get_blocks(struct ts_rtxn *r, unsigned table, const void *key, size_t klen,
		      uint64_t **vals, size_t *n, size_t *cap)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(r->txn, r->env->dbi[table], &cur);
	if (rc)
		return xlate(rc);
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v;
	size_t n0 = *n;
	for (MDB_cursor_op op = MDB_SET_KEY;; op = MDB_NEXT_DUP) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		size_t m, room = TS_ENV_U64_BLOCK_IDS(v.mv_size);
		if (v.mv_size > 511) {
			rc = TS_CORRUPT();
			break;
		}
		if ((rc = reserve_u64s(vals, *n, cap, room)) != 0)
			break;
		if ((rc = ts_env_u64_block_decode(v.mv_data, v.mv_size, *vals + *n, room, &m)))
			break;
		/* blocks of a key must follow each other: ids ascend across them too */
		if (*n > n0 && (*vals)[*n] <= (*vals)[*n - 1]) {
			rc = TS_CORRUPT();
			break;
		}
		*n += m;
	}
	if (rc)
		*n = n0;
	mdb_cursor_close(cur);
	return xlate(rc);
}

int ts_env_get_u64s(struct ts_rtxn *r, unsigned table, const void *key, size_t klen,
		    uint64_t **vals, size_t *n, size_t *cap)
{
	if (table >= r->env->n_tables || klen == 0)
		return TS_EINVALID;
	unsigned f = r->env->flags[table];
	if ((f & (TS_TABLE_U64_BLOCKS | TABLE_DROPPED)) == TS_TABLE_U64_BLOCKS)
		return get_blocks(r, table, key, klen, vals, n, cap);
	if ((f & (TS_TABLE_DUPFIXED_U64 | TABLE_DROPPED)) != TS_TABLE_DUPFIXED_U64)
		return TS_EINVALID;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(r->txn, r->env->dbi[table], &cur);
	if (rc)
		return xlate(rc);
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v;
	size_t count;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND) {
		rc = 0;
		goto out;
	}
	if (rc || (rc = mdb_cursor_count(cur, &count)) != 0)
		goto out;
	if ((rc = reserve_u64s(vals, *n, cap, count)) != 0)
		goto out;
	if (count == 1) {
		/* a lone value is stored inline: GET_MULTIPLE has no page to return */
		if (v.mv_size != sizeof(uint64_t)) {
			rc = TS_CORRUPT();
			goto out;
		}
		memcpy(*vals + *n, v.mv_data, sizeof(uint64_t));
		(*n)++;
		goto out;
	}
	for (MDB_cursor_op op = MDB_GET_MULTIPLE;; op = MDB_NEXT_MULTIPLE) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc)
			goto out;
		if (v.mv_size % sizeof(uint64_t)) {
			rc = TS_CORRUPT();
			goto out;
		}
		size_t m = v.mv_size / sizeof(uint64_t);
		if ((rc = reserve_u64s(vals, *n, cap, m)) != 0)
			goto out;
		memcpy(*vals + *n, v.mv_data, v.mv_size);
		*n += m;
	}
out:
	mdb_cursor_close(cur);
	return xlate(rc);
}

/* ---- maintenance --------------------------------------------------------------------- */

int ts_env_reader_check(struct ts_env *env)
{
	int dead = 0;
	int rc = mdb_reader_check(env->mdb, &dead);
	if (rc)
		return xlate(rc);
	if (dead > 0)
		ts_log(TS_LOG_INFO, "env %s: cleared %d stale reader slot(s)", env->dir, dead);
	return dead;
}

/* Where LMDB mapped the env's data file: LMDB keeps the address to itself
 * (mdb_env_info reports it only with MDB_FIXEDMAP), so it is looked up in the process's
 * map list by the file's inode. 0 found, TS_ENOTFOUND, or -errno. */
static int find_map(struct ts_env *env, uintptr_t *start, uintptr_t *end)
{
	mdb_filehandle_t fd;
	struct stat st;
	if (mdb_env_get_fd(env->mdb, &fd) != 0 || fstat(fd, &st) != 0)
		return TS_ENOTFOUND;
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	char line[512];
	int rc = TS_ENOTFOUND;
	while (rc && fgets(line, sizeof line, f)) {
		unsigned long a, b, off, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &a, &b, perms, &off, &maj, &min,
			   &ino) == 7 &&
		    ino == (unsigned long)st.st_ino && off == 0 && makedev(maj, min) == st.st_dev) {
			*start = a;
			*end = b;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

int ts_env_unmap_pages(struct ts_env *env)
{
	uintptr_t a, b;
	gate_enter_shared(&env->gate);
	int rc = find_map(env, &a, &b);
	if (rc == 0 && madvise((void *)a, b - a, MADV_DONTNEED) != 0)
		rc = -errno;
	gate_leave_shared(&env->gate);
	return rc;
}

void ts_env_size(struct ts_env *env, uint64_t *map_bytes, uint64_t *used_bytes)
{
	MDB_envinfo info;
	MDB_stat st;
	uint64_t map = 0, used = 0;
	if (mdb_env_info(env->mdb, &info) == 0 && mdb_env_stat(env->mdb, &st) == 0) {
		map = info.me_mapsize;
		used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	}
	if (map_bytes)
		*map_bytes = map;
	if (used_bytes)
		*used_bytes = used;
}

/* Pages on LMDB's free list (dbi 0): each record's value is an ID list whose first
 * word is its count. Sets *pages or returns an MDB_* / TS_E* code. */
static int free_pages(MDB_txn *txn, uint64_t *pages)
{
	MDB_cursor *cur;
	MDB_val k, v;
	*pages = 0;
	int rc = mdb_cursor_open(txn, 0, &cur);
	if (rc)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		size_t count;
		if (v.mv_size < sizeof count) {
			rc = TS_CORRUPT();
			break;
		}
		memcpy(&count, v.mv_data, sizeof count);
		if (count > v.mv_size / sizeof count - 1) {
			rc = TS_CORRUPT();
			break;
		}
		*pages += count;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Every page up to the last one in use is a meta page, a page of some tree (a table, a
 * DUPSORT key's sub-database, LMDB's table of tables), a page of the free list's own
 * tree, or a free page the free list names. Summing mdb_stat over tables would miss the
 * sub-databases (mdb_stat counts a table's main tree only), which for a postings table
 * is most of it; so count from the other side: all pages minus the free ones. The free
 * list's own tree is left out too, because a compacting copy does not write it.
 */
uint64_t ts_env_live_bytes(struct ts_env *env)
{
	MDB_txn *txn;
	MDB_stat st;
	MDB_envinfo info;
	uint64_t n_free = 0, live = 0;
	if (begin_read(env, &txn) != 0)
		return 0;
	/* mdb_env_info reads the newest meta page: at least as new as txn's snapshot, so a
	 * commit in between can only make the free list look short (live too large). */
	if (mdb_stat(txn, 0, &st) == 0 && mdb_env_info(env->mdb, &info) == 0 &&
	    free_pages(txn, &n_free) == 0) {
		uint64_t all = (uint64_t)info.me_last_pgno + 1;
		uint64_t tree = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
		if (n_free + tree <= all)
			live = (all - n_free - tree) * st.ms_psize;
	}
	mdb_txn_abort(txn);
	gate_leave_shared(&env->gate);
	return live;
}

/* mdb_env_copy2 does not sync what it wrote; a backup must survive a power cut. */
static int sync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) != 0 ? -errno : 0;
	close(fd);
	return rc;
}

int ts_env_copy(struct ts_env *env, const char *dst_dir, int compact)
{
	char path[4096];
	int rc = mkdir_p(dst_dir);
	if (rc)
		return rc;
	if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dst_dir) >= sizeof path)
		return -ENAMETOOLONG;
	/* the copy reads the map through its own read txn */
	gate_enter_shared(&env->gate);
	rc = mdb_env_copy2(env->mdb, dst_dir, compact ? MDB_CP_COMPACT : 0);
	gate_leave_shared(&env->gate);
	if (rc)
		return xlate(rc);
	if ((rc = sync_path(path, O_RDONLY)) != 0)
		return rc;
	return sync_path(dst_dir, O_RDONLY | O_DIRECTORY);
}

/* ---- test hooks ------------------------------------------------------------------------ */

void ts__env_fail_next_commit(struct ts_env *env, int err)
{
	env->fail_next_commit = err;
}

unsigned long ts__env_n_grows(struct ts_env *env)
{
	return env->n_grows;
}

static int count_reader_line(const char *msg, void *ctx)
{
	(void)msg;
	(*(int *)ctx)++;
	return 0;
}

int ts__env_reader_slots(struct ts_env *env)
{
	int lines = 0;
	int rc = mdb_reader_list(env->mdb, count_reader_line, &lines);
	if (rc < 0)
		return xlate(rc);
	/* mdb_reader_list prints a header line, or "(no active readers)" alone */
	return lines > 0 ? lines - 1 : 0;
}
