/* listing — the store's listing reads: SCAN, KEYS, TYPE, RANDOMKEY and
 * COHORT.RANGE. kv_query() hands them here; like every read they run on
 * the member's applied state and change nothing.
 *
 *     SCAN cursor [MATCH pattern] [COUNT n] [TYPE name]
 *         Redis's reply: [next cursor, [keys]]. The cursor is kv_scan()'s
 *         (kv.h): reverse-binary over the hash table's buckets, so a key
 *         present for the whole scan is returned at least once across
 *         resizes, and a key may come back twice. A cursor is only
 *         meaningful on the member that issued it (bucket layout depends
 *         on that member's hash seed and history). One call visits up to
 *         COUNT * 10 buckets (COUNT default 10, capped at
 *         LISTING_SCAN_COUNT_MAX) and stops once it has COUNT keys.
 *     KEYS pattern       every matching key: O(n), blocks the member like
 *                        Redis's KEYS; use SCAN or COHORT.RANGE instead.
 *     TYPE key           +string, or +none.
 *     RANDOMKEY          a key, or nil if the store is empty.
 *     COHORT.RANGE start end [LIMIT n]
 *         the keys k with start <= k < end (bytewise; an empty end means no
 *         upper bound), in key order, as etcd's Range: a flat array key,
 *         value, key, value ... of at most LIMIT pairs (default
 *         LISTING_RANGE_LIMIT_DEFAULT, at most LISTING_RANGE_LIMIT_MAX).
 *         Fewer than LIMIT pairs means the range is done; else continue with
 *         start = the last key + "\x00". Work: O(log n + LIMIT), from the
 *         ordered index (kv_index.h).
 * MATCH and KEYS use Redis's glob (acl_glob_match()). Every key is a string,
 * so TYPE string matches every key and the other Redis types none; an
 * unknown type name is Redis's error.
 *
 * Expiry: every listing takes the read's log time now_ms and never shows a
 * key expired at it, removed or not yet (kv/expire.h). RANDOMKEY draws again
 * up to LISTING_RANDOMKEY_TRIES times when it lands on one, then takes the
 * first live key in key order.
 */
#ifndef COHORT_KV_LISTING_H
#define COHORT_KV_LISTING_H

#include <stdint.h>

#include "common/resp.h"
#include "kv/kv.h"

#define LISTING_SCAN_COUNT_DEFAULT 10
#define LISTING_SCAN_COUNT_MAX 10000
#define LISTING_RANGE_LIMIT_DEFAULT 100
#define LISTING_RANGE_LIMIT_MAX 10000
#define LISTING_RANDOMKEY_TRIES 100

void listing_scan(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                  const struct resp_arg *argv, struct resp_buf *out);
void listing_keys(const struct kv *kv, uint64_t now_ms,
                  const struct resp_arg *pattern, struct resp_buf *out);
void listing_type(const struct kv *kv, uint64_t now_ms,
                  const struct resp_arg *key, struct resp_buf *out);
void listing_randomkey(const struct kv *kv, uint64_t now_ms,
                       struct resp_buf *out);
void listing_range(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                   const struct resp_arg *argv, struct resp_buf *out);

#endif
