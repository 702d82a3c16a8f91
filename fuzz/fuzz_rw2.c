/*
 * fuzz_rw2.c - remote-write 2.0 decoding and label validation on hostile bytes: the
 * harness and invariants of fuzz_rw1.c (byte 0 odd = snappy block), with symbol-table
 * refs resolved. The corpus holds RW2 requests.
 */
#define FUZZ_RW_VERSION TS_RW_V2
#include "fuzz_rw1.c"
