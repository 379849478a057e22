/* changes — the key change events of watches (COHORT.WATCH): every change
 * the store makes to a key is recorded, as it is applied, as an event
 * {revision, key, kind, value} in kv->changes (a kv/history.h ring with
 * shared positions) and handed to kv->publish_hook.change.
 *
 * A change's revision is the op that made it, so revisions are the log's
 * order and are the same on every member; one op that changes several keys
 * (MSET, a transaction, FLUSHALL, RENAME, EXPIRE_DUE) gives several events
 * at one revision, in the order the op made them (FLUSHALL: key order).
 * The events are recorded at the store's own mutation points (kv_put,
 * kv_del, kv_flush in kv.c), never per command, so every command that
 * changes a key produces its events. Restoring a snapshot (kv_insert) and
 * expiry-time changes (kv_expire_set) record nothing: the former replaces
 * the state, the latter changes no value.
 *
 * Groups' views are recorded in the same ring (KV_CHANGE_GROUP, channel the
 * group's name), so a watch on a group resumes FROM a revision exactly as
 * a watch on a key does.
 *
 * An entry's channel is the key, its message the kind byte then the value
 * (empty for del and expire). Like the published-message history, the ring
 * is not state: it is rebuilt from the ops a member applies, bounded by the
 * same history-messages / history-bytes config, and reset (floor = the
 * snapshot's op) when a snapshot is installed.
 */
#ifndef COHORT_KV_CHANGES_H
#define COHORT_KV_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/history.h"

struct kv;
struct kv_group;

enum kv_change_kind {
    KV_CHANGE_SET = 's',    /* created or given a new value */
    KV_CHANGE_DEL = 'd',    /* deleted by a command or FLUSHALL */
    KV_CHANGE_EXPIRE = 'e', /* removed because its expiry passed */
    KV_CHANGE_GROUP = 'g',  /* an application group's new view */
};

/* Record a change of key at revision (>= the last one recorded) and hand
 * it to the hook. value is ignored (empty) for KV_CHANGE_DEL and _EXPIRE.
 * Out of memory inside apply is fatal, as for every committed op. */
void kv_changes_record(struct kv *kv, uint64_t revision, uint8_t kind,
                       const uint8_t *key, size_t key_size,
                       const uint8_t *value, size_t value_size);

/* A group (kv/group.h) has a new view at revision op (its view number):
 * record it as an event whose channel is the group's name and whose value
 * is the view: u32 member count, then per member u32 size + name and u32
 * size + data (a group that has emptied: count 0). Installed by kv_init()
 * as kv->sessions.view_hook, with the kv as ctx. */
void kv_changes_group_view(void *kv, const struct kv_group *g, uint64_t op);

/* Where a watcher resuming FROM rev (it holds every event up to rev)
 * reads on: false if the changes after rev are compacted here (rev below
 * the ring's floor: the member cannot tell what it lost); else *seq is the
 * sequence number of the first retained event after rev. The server's
 * COHORT.WATCH ... FROM and the simulator's watchers (sim/coord.h) share
 * it. */
static inline bool kv_changes_resume(const struct history *h, uint64_t rev,
                                     uint64_t *seq)
{
    if (rev < h->floor)
        return false;
    *seq = h->first_seq + history_find(h, rev + 1);
    return true;
}

/* The kind of a recorded event, and its name ("set", "del", "expire"). */
static inline uint8_t kv_change_kind(const struct history_entry *e)
{
    return history_message(e)[0];
}
const char *kv_change_kind_name(uint8_t kind);

/* The value of a recorded event (after the kind byte). */
static inline const uint8_t *kv_change_value(const struct history_entry *e)
{
    return history_message(e) + 1;
}
static inline size_t kv_change_value_size(const struct history_entry *e)
{
    return e->message_size - 1;
}

#endif
