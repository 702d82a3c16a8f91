/*
 * types.h - the plain value types shared by the engine's public API and by the ingest
 * decoders that feed it: a label (name/value pair of byte strings, not NUL-terminated)
 * and a sample. Kept apart from tsdb.h so a decoder can produce them without pulling
 * in the engine.
 */
#ifndef TS_TSDB_TYPES_H
#define TS_TSDB_TYPES_H

#include <stdint.h>

/* A label whose bytes are borrowed from somewhere else (request buffer, label set). */
struct ts_label {
	const char *name;
	const char *value;
	uint32_t name_len;
	uint32_t value_len;
};

/* One sample. Values are compared and stored by their bits: NaN payloads (the
 * Prometheus stale marker TS_STALE_NAN_BITS) survive bit-exact. */
struct ts_sample {
	int64_t t_ms;
	double v;
};

#define TS_STALE_NAN_BITS 0x7ff0000000000002ULL

#endif
