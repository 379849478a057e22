/* read_pace — how many bytes of read replies one loop turn builds, and the
 * confirmed reads that wait for a later turn.
 *
 * A read-index round confirms every read that joined it at once, and a
 * backup that applies a round's index can serve all of its batch at once.
 * With large values that is a lot of work for one turn: 63 pipelined GETs
 * of 1 MiB are 63 MiB copied into replies (and again into the output),
 * which held the loop for 100 to 300 ms, long enough for the backups to
 * stop hearing the primary and change the view. So replies are built
 * against a budget of READ_PACE_TURN_BYTES per turn: once it is used up,
 * a confirmed read on the primary joins a FIFO here and a backup's waiting
 * reads stay where they are (backup_read.c), and both go on in the next
 * turns, READ_PACE_TURN_BYTES at a time, while the loop keeps turning
 * (the server's idle handle) and the heartbeats go out between.
 *
 * Answering later is still linearizable: the read stays counted as running
 * on its connection (a write pipelined after it waits, conn.c), and the
 * store it is served from has applied at least the read index, and only
 * committed ops, by then (docs/PROTOCOL.md, "Reads").
 *
 * A read whose connection closes while held stays on the FIFO with conn
 * NULL (conn_teardown() leaves it) and is freed when it comes up.
 *
 * Reads served locally (after READONLY) are answered as they are parsed,
 * with no confirmation to hold back; their replies count against the
 * same budget, and once it is used up a client connection dispatches
 * nothing more in this turn (read_pace_admit()): many connections that
 * each read a large value in one turn no longer add up to a stall.
 *
 * Deliveries count too: a PUBLISH of 1 MB to 200 subscribers is 200 MB
 * written to outputs while the message is applied, which held the
 * primary's loop for seconds (a view change). Past the budget, a
 * subscriber (pubsub.c) or watcher (watch.c) falls behind and is fed from
 * the history in the next turns, the path it takes when its output is
 * full: same messages, same order, later.
 */
#include "common/assert.h"
#include "server/internal.h"

bool read_pace_room(struct server *s)
{
    struct server_read_pace *p = &s->read_pace;
    if (p->head == NULL && p->used < READ_PACE_TURN_BYTES)
        return true;
    p->short_turn = true;
    return false;
}

bool read_pace_feed_held(struct server *s)
{
    struct server_read_pace *p = &s->read_pace;
    if (p->used < READ_PACE_TURN_BYTES)
        return false;
    p->short_turn = true;
    p->feed_waits++;
    return true;
}

bool read_pace_spent(const struct server *s)
{
    return s->read_pace.used >= READ_PACE_TURN_BYTES;
}

void read_pace_pump_feed(struct server *s, struct feed *f,
                         bool (*pump)(struct conn *c))
{
    if (!read_pace_spent(s))
        feed_pump_all(f, pump);
    if (f->behind > 0 && read_pace_spent(s))
        s->read_pace.short_turn = true;
}

void read_pace_count(struct server *s, size_t bytes)
{
    s->read_pace.used += bytes;
}

bool read_pace_admit(struct server *s, struct conn *c)
{
    struct server_read_pace *p = &s->read_pace;
    if (c->no_forward || p->used < READ_PACE_TURN_BYTES) {
        c->pace_wait = false;
        return true;
    }
    if (!c->pace_wait)
        p->conn_waits++;
    c->pace_wait = true;
    p->short_turn = true;
    server_mark_resume(s, c);
    return false;
}

void read_pace_hold(struct server *s, struct slot *slot)
{
    struct server_read_pace *p = &s->read_pace;
    ASSERT(!slot->paced && !slot->in_node);
    slot->paced = true;
    slot->pace_next = NULL;
    if (p->tail)
        p->tail->pace_next = slot;
    else
        p->head = slot;
    p->tail = slot;
    p->held++;
    server_keep_turning(s);
}

void read_pace_run(struct server *s)
{
    struct server_read_pace *p = &s->read_pace;
    while (p->head && p->used < READ_PACE_TURN_BYTES) {
        struct slot *slot = p->head;
        p->head = slot->pace_next;
        if (p->head == NULL)
            p->tail = NULL;
        slot->pace_next = NULL;
        slot->paced = false;
        if (slot->conn == NULL)
            server_slot_put(s, slot); /* its connection closed */
        else
            store_answer_read(slot->conn, slot);
    }
    if (p->head)
        p->short_turn = true;
}

void read_pace_turn_end(struct server *s)
{
    struct server_read_pace *p = &s->read_pace;
    if (p->short_turn)
        p->short_turns++;
    p->again = p->short_turn || p->head != NULL;
    p->short_turn = false;
    p->used = 0;
    if (p->again)
        server_keep_turning(s);
}

bool read_pace_pending(const struct server *s)
{
    return s->read_pace.again || s->read_pace.head != NULL;
}

void read_pace_close(struct server *s)
{
    struct server_read_pace *p = &s->read_pace;
    while (p->head) {
        struct slot *slot = p->head;
        p->head = slot->pace_next;
        ASSERT(slot->conn == NULL); /* at close every connection is gone */
        slot->paced = false;
        server_slot_put(s, slot);
    }
    p->tail = NULL;
}
