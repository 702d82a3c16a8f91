/*
 * index.h - old names of on-disk facts now defined in format.h, kept only while
 * tools/ still uses them; new code includes tsdb/format.h. The engine does not include
 * this header.
 */
#ifndef TS_TSDB_INDEX_H
#define TS_TSDB_INDEX_H

#include "tsdb/format.h"

#define TS_POSTING_VALUE_MAX TS_FORMAT_POSTING_VALUE_MAX
#define TS_POSTING_KEY_MAX TS_FORMAT_POSTING_KEY_MAX
#define TS_PART_COMPACT_SUFFIX TS_FORMAT_PART_COMPACT_SUFFIX
#define TS_PART_OLD_SUFFIX TS_FORMAT_PART_OLD_SUFFIX
#define ts_part_dir ts_format_part_dir
#define TS_PART_DIR_OTHER TS_FORMAT_PART_DIR_OTHER
#define TS_PART_DIR_LIVE TS_FORMAT_PART_DIR_LIVE
#define TS_PART_DIR_COMPACT TS_FORMAT_PART_DIR_COMPACT
#define TS_PART_DIR_OLD TS_FORMAT_PART_DIR_OLD
#define ts__part_dir_kind ts_format_part_dir_kind
#define ts__be64 ts_format_put_be64
#define ts__get_be64 ts_format_get_be64
#define ts__posting_key ts_format_posting_key

#endif
