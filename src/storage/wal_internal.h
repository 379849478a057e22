/* wal_internal — what wal.c (writing) and wal_recover.c (wal_open) share:
 * the format constants, segment names and headers, and the FAILED state.
 * Not for use outside the wal. */
#ifndef COHORT_WAL_INTERNAL_H
#define COHORT_WAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/wal.h"

/* 4: a record's header word at 12 holds its commit note (wal.h); format 3
 * records have zero there and are read as they are. 3: the entry header
 * inside each record is 72 bytes with a 64-bit view (common/entry.h); 2
 * added the record trailer. */
#define WAL_FORMAT_VERSION 4u
#define WAL_FORMAT_VERSION_READ_MIN 3u
#define WAL_SEGMENT_MAGIC 0x53574f43u /* "COWS" */
#define WAL_RECORD_MAGIC 0x52574f43u  /* "COWR" */
#define WAL_TRAILER_MAGIC 0x45574f43u /* "COWE" */
/* The unit in which a write cut short by the death of its process stops. */
#define WAL_PAGE_SIZE 4096u
/* "%020llu.log.tmp" */
#define WAL_SEGMENT_NAME_MAX 28

/* 0 if OPEN; -COHORT_EIO naming the first failure if FAILED. */
int wal_check_open(const struct wal *wal, struct cohort_err *err);
/* Enter FAILED after a failed fdatasync or directory fsync; returns rc. */
int wal_fail(struct wal *wal, int rc, struct cohort_err *err);

/* The path of the segment starting at first_op (temp: its ".tmp" twin). */
void wal_segment_path(const struct wal *wal, uint64_t first_op, bool temp,
                      char *out);
void wal_segment_header_encode(uint64_t first_op, uint64_t segment_size,
                               uint8_t *out);
/* Create the segment for first_op and make it the (empty) tail. */
int wal_segment_create(struct wal *wal, uint64_t first_op,
                       struct cohort_err *err);
/* NULL if the header at p is valid for first_op, or what is wrong. */
const char *wal_segment_header_check(const uint8_t *p, size_t size,
                                     uint64_t first_op);
/* The format version of an intact segment header (magic and checksum good)
 * that this build does not read (not WAL_FORMAT_VERSION_READ_MIN to
 * WAL_FORMAT_VERSION); 0 otherwise. Such a segment is not
 * damage: wal_open() refuses the log. */
uint32_t wal_segment_other_version(const uint8_t *p, size_t size);
/* The format version of a segment header wal_segment_header_check()
 * accepted. */
uint32_t wal_segment_version(const uint8_t *p);

#endif
