/* backup_read — linearizable reads served by a backup from its own store,
 * after one read-index round with the primary per loop turn, instead of
 * forwarding every read to the primary to execute.
 *
 * A client's linearizable read on a backup (the node says "not the
 * primary") joins the pending batch. Once per loop turn (the prepare
 * handle) the batch goes to the primary as one `COHORT.READINDEX` on the
 * forward link. The primary notes its read index c when the command
 * arrives (max(commit, view_op): a new primary's ops up to view_op may
 * have been committed in the view before), runs its read-index round
 * (node_read: a quorum confirms after that it still leads its view, and it has
 * applied through c), and answers [c, its log time t]. The backup then serves
 * each read of the batch from its own store once it has applied op c, judging
 * expiry at log time t (or its applied state's, if later), as the primary
 * would.
 *
 * Why it is linearizable (docs/PROTOCOL.md, "Reads on a backup"): a
 * write acknowledged to any client before the read arrived here was
 * committed before the READINDEX reached the primary (it was sent after
 * the read arrived), so it is at or below c — if the answering replica
 * is the primary, which its round confirms: a deposed one never answers.
 * The backup applies the same committed prefix, so its state at any
 * applied op >= c includes every such write, and it is a committed state
 * no later than the moment the backup answers: a point inside the read's
 * interval. Expiry: as on the primary, a key that expires between the
 * applied state's log time and t would be hidden at a log time the log
 * has not reached; such a read is forwarded to the primary, which waits
 * for the sweep.
 *
 * Bounded waits: a backup learns the commit point from the primary's next
 * PREPARE or, on an idle log, its COMMIT heartbeat; a read whose round
 * answered but whose index is not applied here within BACKUP_READ_WAIT_MS
 * is forwarded instead. A round that fails (link error, the primary's
 * -TRYAGAIN) forwards its reads too, which then get the usual -TRYAGAIN if
 * there is no primary.
 *
 * Each read is in exactly one place: the pending list (BR_PENDING), the
 * batch of one round on the link (BR_SENT), or the waiting list
 * (BR_WAITING), in the order rounds answered. A read whose connection
 * closed stays there with conn NULL (conn_teardown() leaves it) and is
 * freed when it comes up. Reads of one connection keep their order in its
 * FIFO whatever order they are answered in.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv.h"
#include "server/internal.h"

static void append(struct slot **head, struct slot **tail, struct slot *slot)
{
    slot->br_next = NULL;
    if (*tail)
        (*tail)->br_next = slot;
    else
        *head = slot;
    *tail = slot;
}

/* Forward slot to primary as before this module (or free an orphan). */
static void forward(struct server *s, struct slot *slot, uint32_t primary)
{
    slot->backup_read = BR_NONE;
    if (slot->conn == NULL) {
        server_slot_put(s, slot);
        return;
    }
    s->backup_read.forwarded++;
    store_forward_read(slot->conn, slot, primary);
}

void backup_read_queue(struct conn *c, struct slot *slot, uint32_t primary)
{
    struct server_backup_read *br = &c->server->backup_read;
    if (br->pending != NULL && br->pending_primary != primary) {
        /* The primary changed under the batch: those go as before. */
        struct slot *p = br->pending;
        br->pending = br->pending_tail = NULL;
        while (p) {
            struct slot *next = p->br_next;
            forward(c->server, p, br->pending_primary);
            p = next;
        }
    }
    br->pending_primary = primary;
    slot->backup_read = BR_PENDING;
    append(&br->pending, &br->pending_tail, slot);
}

/* Send the pending batch as one round. */
static void send_round(struct server *s)
{
    struct server_backup_read *br = &s->backup_read;
    if (br->pending == NULL)
        return;
    struct slot *ri = server_slot_get(s);
    ri->ri_request = true;
    ri->read_primary = br->pending_primary;
    resp_write_array(&ri->payload, 1);
    resp_write_bulk(&ri->payload, "COHORT.READINDEX", 16);
    ri->batch = br->pending;
    br->pending = br->pending_tail = NULL;
    for (struct slot *r = ri->batch; r; r = r->br_next)
        r->backup_read = BR_SENT;
    if (!forward_send(s, ri, ri->read_primary)) {
        backup_read_failed(s, ri);
        return;
    }
    br->rounds++;
}

static void on_timer(uv_timer_t *timer);

/* Serve the waiting reads this member has applied, in order; forward
 * those that waited too long; arm the timer for the next. */
static void serve_waiting(struct server *s)
{
    struct server_backup_read *br = &s->backup_read;
    uint64_t now = server_now_ms(s);
    while (br->waiting) {
        struct slot *r = br->waiting;
        bool applied = s->kv->op >= r->read_op;
        if (!applied && now < r->read_since_ms + BACKUP_READ_WAIT_MS)
            break; /* the later ones answered no earlier */
        if (applied && r->conn != NULL && !read_pace_room(s)) {
            /* This turn built its share of replies: the prepare handle
             * goes on in the next (backup_read_run()), not the timer, which
             * would fire again within this turn. */
            uv_timer_stop(&br->timer);
            return;
        }
        br->waiting = r->br_next;
        if (br->waiting == NULL)
            br->waiting_tail = NULL;
        if (r->conn == NULL) {
            r->backup_read = BR_NONE;
            server_slot_put(s, r);
        } else if (applied) {
            r->backup_read = BR_NONE;
            if (store_serve_read(r->conn, r, r->read_time_ms))
                br->served++;
            else
                forward(s, r, r->read_primary);
        } else {
            forward(s, r, r->read_primary);
        }
    }
    if (br->waiting) {
        uint64_t limit = br->waiting->read_since_ms + BACKUP_READ_WAIT_MS;
        uv_timer_start(&br->timer, on_timer, limit > now ? limit - now : 0, 0);
    } else {
        uv_timer_stop(&br->timer);
    }
}

static void on_timer(uv_timer_t *timer)
{
    serve_waiting(timer->data);
}

void backup_read_run(struct server *s)
{
    send_round(s);
    if (s->backup_read.waiting)
        serve_waiting(s);
}

/* One ":<n>\r\n" (n >= 0) at *p, before end; moves *p past it. */
static bool take_integer(const char **p, const char *end, uint64_t *v)
{
    const char *q = *p;
    if (q >= end || *q != ':')
        return false;
    const char *cr = memchr(q, '\r', (size_t)(end - q));
    int64_t n;
    if (cr == NULL || cr + 1 >= end || cr[1] != '\n' ||
        !resp_parse_i64(q + 1, (size_t)(cr - q - 1), &n) || n < 0)
        return false;
    *v = (uint64_t)n;
    *p = cr + 2;
    return true;
}

/* Parse "*2\r\n:<index>\r\n:<time>\r\n", and nothing else. */
static bool parse_answer(const char *reply, size_t size, uint64_t *index,
                         uint64_t *time_ms)
{
    const char *p = reply, *end = reply + size;
    if (size < 4 || memcmp(p, "*2\r\n", 4) != 0)
        return false;
    p += 4;
    return take_integer(&p, end, index) && take_integer(&p, end, time_ms) &&
           p == end;
}

void backup_read_answered(struct server *s, struct slot *ri, const char *reply,
                          size_t size)
{
    ASSERT(ri->ri_request);
    uint64_t index, time_ms;
    if (!parse_answer(reply, size, &index, &time_ms)) {
        backup_read_failed(s, ri); /* -TRYAGAIN from a deposed primary */
        return;
    }
    struct server_backup_read *br = &s->backup_read;
    uint64_t now = server_now_ms(s);
    struct slot *r = ri->batch;
    while (r) {
        struct slot *next = r->br_next;
        r->backup_read = BR_WAITING;
        r->read_op = index;
        r->read_time_ms = time_ms;
        r->read_since_ms = now;
        r->read_primary = ri->read_primary;
        append(&br->waiting, &br->waiting_tail, r);
        r = next;
    }
    ri->batch = NULL;
    server_slot_put(s, ri);
    serve_waiting(s);
}

void backup_read_failed(struct server *s, struct slot *ri)
{
    ASSERT(ri->ri_request);
    struct slot *r = ri->batch;
    uint32_t primary = ri->read_primary;
    ri->batch = NULL;
    server_slot_put(s, ri);
    while (r) {
        struct slot *next = r->br_next;
        forward(s, r, primary);
        r = next;
    }
}

void backup_read_open(struct server *s)
{
    uv_timer_init(s->loop, &s->backup_read.timer);
    s->backup_read.timer.data = s;
    s->handles_open++;
}

/* Free a list of reads whose connections are gone (at close, every
 * connection is). */
static void free_list(struct server *s, struct slot *r)
{
    while (r) {
        struct slot *next = r->br_next;
        ASSERT(r->conn == NULL);
        r->backup_read = BR_NONE;
        server_slot_put(s, r);
        r = next;
    }
}

void backup_read_close(struct server *s, uv_close_cb closed)
{
    struct server_backup_read *br = &s->backup_read;
    free_list(s, br->pending);
    free_list(s, br->waiting);
    br->pending = br->pending_tail = NULL;
    br->waiting = br->waiting_tail = NULL;
    uv_close((uv_handle_t *)&br->timer, closed);
}

void cmd_cohort_readindex(struct conn *c, struct resp_buf *out, uint32_t argc,
                          const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    ASSERT(out == NULL);
    if (!c->no_forward) {
        conn_reply_error(c, "ERR COHORT.READINDEX is for a backup's link to "
                            "the primary, not for clients");
        return;
    }
    struct slot *slot = conn_slot_push(c);
    conn_slot_kind(c, slot, SLOT_READ);
    slot->ri_answer = true;
    slot->read_op = node_read_index(c->server->node);
    store_read_kept(c, slot);
}
