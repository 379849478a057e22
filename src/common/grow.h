/* grow — growable arrays: the one overflow-checked realloc that the
 * store's, the server's, storage's and the simulator's buffers share.
 *
 * A growable array is a pointer, a capacity in items and a count of items
 * in use; the caller owns all three, and this module only moves the
 * pointer and the capacity. Two policies: grow_array() and its typed
 * variants double from max(capacity, min_capacity) until `need` items
 * fit (amortized O(1) appends); grow_bytes_exact() grows a byte buffer to
 * exactly `need` (a scratch buffer whose largest use may be large).
 *
 * Invariants: (1) a capacity only grows, and never past what its type
 * holds or past SIZE_MAX bytes; (2) a growth that fails (the size would
 * overflow, or realloc returned NULL) returns false and leaves the
 * pointer, the capacity and the items as they were; (3) the items below
 * the old capacity are kept; what lies past them is uninitialized.
 *
 * Not for the core: it allocates nothing after replica_init(). */
#ifndef COHORT_GROW_H
#define COHORT_GROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Make *array (of item_size-byte items, *capacity of them) hold at least
 * need items, doubling from max(*capacity, min_capacity); when doubling
 * would pass SIZE_MAX bytes, exactly need. true if it holds them (nothing
 * to do when need <= *capacity); false, with nothing changed, when need
 * items overflow size_t bytes or realloc fails. item_size > 0. */
bool grow_array(void **array, size_t *capacity, size_t need, size_t item_size,
                size_t min_capacity);
/* grow_array() for a uint32_t capacity: also refuses need > UINT32_MAX,
 * and doubles no further than UINT32_MAX. */
bool grow_array_u32(void **array, uint32_t *capacity, size_t need,
                    size_t item_size, uint32_t min_capacity);
/* grow_array() for a uint64_t capacity (refuses need > SIZE_MAX). */
bool grow_array_u64(void **array, uint64_t *capacity, uint64_t need,
                    size_t item_size, size_t min_capacity);

/* grow_array() for a byte buffer. */
bool grow_bytes(uint8_t **data, size_t *capacity, size_t need,
                size_t min_capacity);
/* Make *data hold at least need bytes: exactly need if it must grow. The
 * same failure contract as grow_array(). */
bool grow_bytes_exact(uint8_t **data, size_t *capacity, size_t need);

#endif
