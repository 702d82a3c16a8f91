/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * chunk records, WAL records and remote-read frames. Uses SSE4.2 crc32 instructions
 * when the CPU has them (checked once at run time), a slicing table otherwise; both
 * give identical results.
 */
#ifndef TS_STORAGE_CRC32C_H
#define TS_STORAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 to start) over buf[0..len). ts_crc32c(0, "123456789", 9) == 0xE3069283.
 * Thread-safe, never fails. */
uint32_t ts_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
