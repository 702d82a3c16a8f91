/*
 * testutil.h - helpers shared by the unit tests (tests/unit/test_*.c), built into the
 * ts_testutil library that every unit test links.
 *
 * - A seeded PRNG: splitmix64 (Steele, Lea and Flood 2014; the generator of Java's
 *   SplittableRandom). One 64-bit state, any value (0 included) is a valid seed, and the
 *   output function tu_mix64() doubles as a hash for workloads that must be a pure
 *   function of (seed, position). tu_seed() takes the seed from TS_SEED when set and
 *   prints it, so a failing run can be repeated.
 * - Files: tu_read_file() reads a whole file; tu_data_path() names a file of the test
 *   data vendored under tests/data/ ($TS_TESTDATA, set by ctest); tu_load_data() and
 *   tu_load_snappy() read one (the latter a snappy-compressed protobuf vector).
 * - Temporary directories under $TMPDIR (ctest points it into the build tree):
 *   tu_mkdtemp() and tu_rmtree().
 * - tu_memdup(): an exact-size heap copy, so that ASan reports any read past the end.
 * - tu_hex_eq(): a byte string against its hex spelling in an expectation file.
 * - tu_utf8_valid_ref(): the definition of well-formed UTF-8, to check the fast one.
 * - tu_bits()/tu_f64(): a double's IEEE-754 bits and back.
 *
 * Functions documented "fails the test" report through cmocka (fail_msg), so they may be
 * called only from inside a cmocka test, setup or teardown. Not thread-safe unless said.
 */
#ifndef TS_TESTUTIL_H
#define TS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- seeded PRNG ----------------------------------------------------------------- */

/*
 * The seed of a test: strtoull($TS_SEED, 0) (decimal, 0x hex or 0 octal) when TS_SEED is
 * set and not empty, else `dflt`. Prints "<who>: seed <n> (set TS_SEED to repeat)" with
 * cmocka's print_message and flushes stdout (so a child forked later does not print it
 * again), so the seed of a failed run stands in its output. `who` is borrowed for the
 * call. Never fails.
 */
uint64_t tu_seed(const char *who, uint64_t dflt);

/*
 * splitmix64's output function of z + 0x9e3779b97f4a7c15: a bijective 64-bit hash with
 * full avalanche. tu_mix64(s) is the value tu_rand() returns for state s.
 */
uint64_t tu_mix64(uint64_t z);

/*
 * The next value of the splitmix64 sequence whose state is *state (any value; advanced
 * by 0x9e3779b97f4a7c15). Each caller owns its state, so sequences do not interfere.
 */
uint64_t tu_rand(uint64_t *state);

/* ---- files ----------------------------------------------------------------------- */

/*
 * Reads the whole file at `path` (borrowed) into a new buffer with a NUL byte after the
 * last one (not counted in *len). Returns the buffer (owned by the caller: free()), or
 * NULL with errno set when the file cannot be opened, sized or read, or on out of
 * memory; *len is then left unchanged.
 */
char *tu_read_file(const char *path, size_t *len);

/*
 * Writes into out[cap] the path of `rel` (borrowed; e.g. "rw/expected.txt") inside the
 * test data: $TS_TESTDATA/rel, else $TS_SRCDIR/tests/data/rel, else tests/data/rel
 * (relative to the working directory). Fails the test if it does not fit.
 */
void tu_data_path(char *out, size_t cap, const char *rel);

/*
 * Reads the test data file `rel` (borrowed; see tu_data_path()) whole, as
 * tu_read_file() does. Returns the buffer (owned by the caller: free()), never NULL:
 * fails the test, naming the path and the error, when the file cannot be read.
 */
char *tu_load_data(const char *rel, size_t *len);

/*
 * Reads the test data file `rel` (borrowed) and decompresses it as one snappy block of at
 * most `limit_bytes` uncompressed bytes (ts_snappy_decompress). Returns an exact-size
 * copy of the result (see tu_memdup(); owned by the caller: free()) and its length in
 * *len; never NULL: fails the test when the file cannot be read or decompressed.
 */
uint8_t *tu_load_snappy(const char *rel, size_t limit_bytes, size_t *len);

/*
 * An exact-size heap copy of p[0..len) (one byte allocated when len is 0, so the result
 * is never NULL): ASan reports a read even one byte past len. Owned by the caller
 * (free()). Fails the test on out of memory.
 */
void *tu_memdup(const void *p, size_t len);

/* ---- temporary directories ------------------------------------------------------- */

/*
 * Creates a new empty directory $TMPDIR/<prefix>XXXXXX (/tmp when TMPDIR is unset or
 * empty) with mkdtemp() and writes its path into out[cap]. `prefix` is borrowed. Fails
 * the test if the path does not fit or the directory cannot be created.
 */
void tu_mkdtemp(char *out, size_t cap, const char *prefix);

/*
 * Removes `dir` (borrowed) and everything below it, not following symbolic links.
 * Returns 0 on success or when dir does not exist; else -errno of the first entry that
 * could not be removed (the others are still tried). Not thread-safe (nftw() keeps the
 * first error in a static).
 */
int tu_rmtree(const char *dir);

/* ---- references ---------------------------------------------------------------- */

/*
 * 1 if `hex` (borrowed, NUL-terminated) spells exactly the bytes p[0..n) as pairs of hex
 * digits (either case), or is "-" and n is 0; else 0. The expectation files of the test
 * data write byte strings so.
 */
int tu_hex_eq(const char *hex, const void *p, size_t n);

/*
 * 1 if p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF), else 0; decoded greedily one code point at a time, straight from the
 * definition, as the reference for tsdb/utf8's fast validator. p is borrowed; may be
 * NULL when n is 0.
 */
int tu_utf8_valid_ref(const void *p, size_t n);

/* ---- doubles --------------------------------------------------------------------- */

/* The IEEE-754 bits of v (NaN payloads and the sign of zero kept). */
uint64_t tu_bits(double v);

/* The double whose IEEE-754 bits are b. */
double tu_f64(uint64_t b);

#endif
