/* crc32c — the CRC-32C (Castagnoli) checksum that guards every log record,
 * metadata slot, snapshot chunk and peer frame. Uses the SSE4.2 instruction
 * when the CPU has it and a table otherwise; both give the same answer. */
#ifndef COHORT_CRC32C_H
#define COHORT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over size bytes of data. crc32c(crc32c(0, a), b)
 * equals crc32c(0, a || b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t size);

/* The portable table implementation, exposed so tests can compare it with
 * the hardware path. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t size);

#endif
