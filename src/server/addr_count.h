/* addr_count — how many client connections each remote IP address holds,
 * for the per-address connection limit (--max-clients-per-ip).
 *
 * A hash table from an address (IPv4, or IPv6; an IPv4-mapped IPv6 address
 * counts as its IPv4 address) to a count, with linear probing and
 * backward-shift deletion; an address whose count drops to zero leaves the
 * table. It grows to keep at most half of its slots used, so memory is
 * bounded by the number of connections.
 *
 * Invariants: (1) every address present has a count >= 1; (2) `used` is the
 * number of addresses present; (3) each address is reachable from its home
 * slot without crossing an empty slot.
 *
 * Pure: no sockets (a struct sockaddr is only read), no clock. Unit-tested
 * in tests/unit/server_addr_count_test.c.
 */
#ifndef COHORT_SERVER_ADDR_COUNT_H
#define COHORT_SERVER_ADDR_COUNT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct addr_key {
    uint8_t family; /* 4, 6, or 0: unknown (never counted) */
    uint8_t bytes[16];
};

struct addr_count_slot {
    struct addr_key key;
    uint32_t count; /* 0: empty */
};

struct addr_counts {
    struct addr_count_slot *slots;
    uint32_t capacity; /* a power of two, or 0 before the first add */
    uint32_t used;
};

/* The key of a connection's peer address; family 0 for anything but
 * AF_INET and AF_INET6. */
void addr_key_from(const struct sockaddr *sa, struct addr_key *key);

/* Whether key is a loopback address (127.0.0.0/8, ::1), or not an IP
 * address at all (a local socket). */
bool addr_key_is_loopback(const struct addr_key *key);

void addr_counts_init(struct addr_counts *t);
void addr_counts_deinit(struct addr_counts *t);
/* Count one more connection from key. Returns the new count, or 0 when
 * nothing was counted (family 0, or out of memory: the caller then does
 * not limit that connection). */
uint32_t addr_counts_add(struct addr_counts *t, const struct addr_key *key);
/* Count one connection less (one that addr_counts_add() counted). */
void addr_counts_remove(struct addr_counts *t, const struct addr_key *key);
uint32_t addr_counts_get(const struct addr_counts *t,
                         const struct addr_key *key);

#endif
