/* fuzz_group — replica cores run on a script of fuzz bytes. See
 * fuzz_group.h. */
#include "fuzz_group.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "core/message.h"
#include "core/replica.h"

#define GROUP_N 3u
#define QUEUE_MAX 512u
#define STORAGE_MAX 1024u
#define TICK_MS 5u

/* ------------------------------------------------------------ script */

struct script {
    const uint8_t *p;
    size_t left;
};

static uint8_t take8(struct script *s)
{
    if (s->left == 0)
        return 0;
    s->left--;
    return *s->p++;
}

static uint64_t take64(struct script *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)take8(s) << (8 * i);
    return v;
}

/* ------------------------------------------------------------- group */

enum pending_kind { P_PERSISTED, P_META, P_TAKEN, P_INSTALL };

struct pending {
    enum pending_kind kind;
    uint64_t a, b;
};

struct snap {
    bool have;
    uint64_t op, checksum, timestamp_ms;
    uint8_t *table;
    size_t table_size;
};

struct member {
    struct replica *r;
    struct cohort_sm sm;
    uint64_t total;
    bool cut;
    struct pending storage[STORAGE_MAX];
    uint32_t storage_count;
    struct snap taking; /* ACT_SNAPSHOT_TAKE not yet durable */
    struct snap durable;
};

struct frame {
    uint32_t from, to;
    uint8_t *data;
    size_t size;
};

struct group {
    struct member m[GROUP_N];
    uint64_t now;
    struct frame q[QUEUE_MAX];
    uint32_t head, count;
    uint64_t request_no[4]; /* per client 1..4 */
};

static struct fuzz_group_stats stats;

static size_t counter_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                            const uint8_t *body, size_t body_size,
                            uint8_t *reply, size_t reply_size_max)
{
    (void)op;
    (void)timestamp_ms;
    struct member *m = ctx;
    m->total += body_size ? body[0] : 0;
    if (reply_size_max < 8)
        return 0;
    put_u64(reply, m->total);
    return 8;
}

static void snap_copy(struct snap *to, const struct snap *from)
{
    free(to->table);
    *to = *from;
    to->table = malloc(from->table_size ? from->table_size : 1);
    ASSERT(to->table);
    memcpy(to->table, from->table, from->table_size);
}

static void storage_push(struct member *m, enum pending_kind kind, uint64_t a,
                         uint64_t b)
{
    if (m->storage_count < STORAGE_MAX)
        m->storage[m->storage_count++] = (struct pending){kind, a, b};
}

static void enqueue(struct group *g, uint32_t from, uint32_t to,
                    const uint8_t *data, size_t size)
{
    if (g->count == QUEUE_MAX || g->m[from].cut || g->m[to].cut)
        return;
    struct frame *f = &g->q[(g->head + g->count++) % QUEUE_MAX];
    f->from = from;
    f->to = to;
    f->size = size;
    f->data = malloc(size ? size : 1);
    ASSERT(f->data);
    memcpy(f->data, data, size);
}

static void on_action(struct group *g, uint32_t i, const struct action *a)
{
    struct member *m = &g->m[i];
    switch (a->type) {
    case ACT_SEND:
        enqueue(g, i, a->send.to, a->send.data, a->send.size);
        break;
    case ACT_PERSIST:
        storage_push(m, P_PERSISTED, a->persist.op_last, a->persist.checksum);
        break;
    case ACT_PERSIST_META:
        storage_push(m, P_META, a->meta.seq, 0);
        break;
    case ACT_SNAPSHOT_TAKE: {
        struct snap s = {true,
                         a->snapshot_take.op,
                         a->snapshot_take.checksum,
                         a->snapshot_take.timestamp_ms,
                         (uint8_t *)a->snapshot_take.client_table,
                         a->snapshot_take.client_table_size};
        snap_copy(&m->taking, &s);
        storage_push(m, P_TAKEN, a->snapshot_take.op, 0);
        break;
    }
    case ACT_SNAPSHOT_SEND:
        storage_push(&g->m[a->snapshot_send.to], P_INSTALL, i, 0);
        break;
    case ACT_VIEW:
        stats.view_changes++;
        break;
    default:
        break;
    }
}

static void step(struct group *g, uint32_t i, struct event *ev)
{
    ev->now_ms = g->now;
    struct actions out;
    replica_step(g->m[i].r, ev, &out);
    stats.steps++;
    for (uint32_t k = 0; k < out.count; k++)
        on_action(g, i, &out.list[k]);
}

/* A snapshot from peer `from` arrives: installed only above applied (the
 * driver's contract), and it becomes this replica's latest. */
static void install_from(struct group *g, uint32_t i, uint32_t from)
{
    const struct snap *s = &g->m[from].durable;
    if (!s->have || s->op <= replica_applied(g->m[i].r))
        return;
    snap_copy(&g->m[i].durable, s);
    const struct snap *d = &g->m[i].durable;
    struct event ev = {.type = EV_SNAPSHOT_INSTALLED};
    ev.snapshot.op = d->op;
    ev.snapshot.checksum = d->checksum;
    ev.snapshot.timestamp_ms = d->timestamp_ms;
    ev.snapshot.client_table = d->table;
    ev.snapshot.client_table_size = d->table_size;
    step(g, i, &ev);
}

/* One storage round: every job queued before it completes, in order. */
static void storage_round(struct group *g, uint32_t i)
{
    struct member *m = &g->m[i];
    uint32_t n = m->storage_count;
    struct pending jobs[STORAGE_MAX];
    memcpy(jobs, m->storage, n * sizeof(jobs[0]));
    m->storage_count = 0;
    for (uint32_t k = 0; k < n; k++) {
        struct event ev = {0};
        switch (jobs[k].kind) {
        case P_PERSISTED:
            ev.type = EV_PERSISTED;
            ev.persisted.op = jobs[k].a;
            ev.persisted.checksum = jobs[k].b;
            break;
        case P_META:
            ev.type = EV_META_PERSISTED;
            ev.meta.seq = jobs[k].a;
            break;
        case P_TAKEN:
            snap_copy(&m->durable, &m->taking);
            ev.type = EV_SNAPSHOT_TAKEN;
            ev.snapshot_taken.op = jobs[k].a;
            break;
        case P_INSTALL:
            install_from(g, i, (uint32_t)jobs[k].a);
            continue;
        }
        step(g, i, &ev);
    }
}

static bool deliver_one(struct group *g, bool drop)
{
    if (g->count == 0)
        return false;
    struct frame f = g->q[g->head];
    g->head = (g->head + 1) % QUEUE_MAX;
    g->count--;
    if (!drop && !g->m[f.from].cut && !g->m[f.to].cut) {
        struct event ev = {.type = EV_MESSAGE};
        ev.message.data = f.data;
        ev.message.size = f.size;
        step(g, f.to, &ev);
    }
    free(f.data);
    return true;
}

static void tick_all(struct group *g, uint64_t ms)
{
    g->now += ms;
    for (uint32_t i = 0; i < GROUP_N; i++) {
        struct event ev = {.type = EV_TICK};
        step(g, i, &ev);
    }
}

/* Honest traffic for ms of virtual time. */
static void settle(struct group *g, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += TICK_MS) {
        for (uint32_t k = 0; k < 4u * QUEUE_MAX && deliver_one(g, false); k++)
            ;
        for (uint32_t i = 0; i < GROUP_N; i++)
            storage_round(g, i);
        tick_all(g, TICK_MS);
    }
}

static void submit(struct group *g, uint32_t i, uint32_t client, uint8_t amount,
                   bool retry)
{
    client %= 4;
    if (!retry || g->request_no[client] == 0)
        g->request_no[client]++;
    uint8_t body[2] = {amount, (uint8_t)client};
    struct client_request req = {.client_id = client + 1,
                                 .request_no = g->request_no[client],
                                 .body = body,
                                 .body_size = sizeof(body)};
    struct event ev = {.type = EV_CLIENT_REQUEST};
    ev.client.requests = &req;
    ev.client.count = 1;
    step(g, i, &ev);
}

static int primary_of_group(const struct group *g)
{
    for (uint32_t i = 0; i < GROUP_N; i++)
        if (replica_is_primary(g->m[i].r))
            return (int)i;
    return -1;
}

static void group_init(struct group *g)
{
    memset(g, 0, sizeof(*g));
    for (uint32_t i = 0; i < GROUP_N; i++) {
        struct member *m = &g->m[i];
        m->sm = (struct cohort_sm){.ctx = m, .apply = counter_apply};
        struct replica_config c;
        replica_config_defaults(&c, GROUP_N, i, 17);
        c.pipeline_ops_max = 16;
        c.pipeline_bytes_max = 4096;
        c.batch_ops_max = 8;
        c.log_ops_max = 64;
        c.log_bytes_max = 16384;
        c.body_size_max = 64;
        c.reply_size_max = 64;
        c.reply_keep_max = 64;
        c.client_table_max = 8;
        c.snapshot_interval_ops = 16;
        c.sm = &m->sm;
        struct replica_durable d = {0};
        m->r = replica_init(&c, &d, 0);
        ASSERT(m->r);
    }
}

static void group_free(struct group *g)
{
    while (deliver_one(g, true))
        ;
    for (uint32_t i = 0; i < GROUP_N; i++) {
        const struct replica_stats *st = replica_stats(g->m[i].r);
        stats.invalid += st->messages_invalid;
        stats.views_refused += st->views_refused;
        replica_deinit(g->m[i].r);
        free(g->m[i].taking.table);
        free(g->m[i].durable.table);
    }
}

/* Bring the group into the state the script asks for; returns the
 * target. */
static uint32_t group_prepare(struct group *g, uint8_t state)
{
    if (state % 4 == 0)
        return 0; /* FRESH */
    for (uint32_t t = 0; t < 600 && primary_of_group(g) < 0; t++)
        settle(g, TICK_MS);
    int p = primary_of_group(g);
    if (p < 0)
        return 0;
    for (uint32_t k = 0; k < 40; k++) {
        submit(g, (uint32_t)p, k, (uint8_t)k, false);
        if (k % 4 == 3)
            settle(g, 30);
    }
    settle(g, 200);
    p = primary_of_group(g);
    if (p < 0 || state % 4 == 1)
        return p < 0 ? 0 : (uint32_t)p; /* PRIMARY */
    uint32_t target = ((uint32_t)p + 1 + state / 4 % 2) % GROUP_N;
    if (state % 4 == 2)
        return target;  /* BACKUP */
    g->m[p].cut = true; /* VIEW_CHANGE */
    for (uint32_t t = 0; t < 400; t++) {
        settle(g, TICK_MS);
        if (replica_status(g->m[target].r) != STATUS_NORMAL ||
            replica_view(g->m[target].r) != replica_view(g->m[p].r))
            break;
    }
    g->m[p].cut = false;
    return target;
}

/* ---------------------------------------------------- hostile messages */

/* A value for a field: near the target's own state, at the edges of the
 * ranges, or anything. */
static uint64_t pick(struct script *s, const struct replica *t)
{
    uint8_t sel = take8(s);
    uint64_t delta = (uint64_t)(int64_t)((int8_t)take8(s) % 4); /* -3..3 */
    switch (sel % 12) {
    case 0:
        return 0;
    case 1:
        return sel >> 4;
    case 2:
        return replica_view(t) + delta;
    case 3:
        return replica_op(t) + delta;
    case 4:
        return replica_commit(t) + delta;
    case 5:
        return replica_log_base(t) + delta;
    case 6:
        return VIEW_MAX - (sel >> 7);
    case 7:
        return VIEW_MAX + 1 + (sel >> 7);
    case 8:
        return (UINT64_C(1) << 31) + delta;
    case 9:
        return (UINT64_C(1) << 32) + delta;
    case 10:
        return UINT64_MAX - (sel >> 4);
    default:
        return take64(s);
    }
}

/* The header fields each type uses (message.h): the repair zeroes the
 * others. */
enum {
    U_STATUS = 1,
    U_FLAGS = 2,
    U_LNV = 4,
    U_OP = 8,
    U_COMMIT = 16,
    U_VIEW_OP = 32,
    U_BASE = 64,
    U_NONCE = 128,
    U_ENTRIES = 256,
    U_CHECKSUM = 512,
};

static uint32_t uses(uint8_t type)
{
    switch (type) {
    case MSG_PREPARE:
    case MSG_START_VIEW:
        return U_OP | U_COMMIT | U_VIEW_OP | U_BASE | U_ENTRIES | U_CHECKSUM;
    case MSG_PREPARE_OK:
        return U_OP | U_CHECKSUM;
    case MSG_COMMIT:
        return U_OP | U_COMMIT | U_VIEW_OP | U_CHECKSUM;
    case MSG_DO_VIEW_CHANGE:
        return U_LNV | U_OP | U_COMMIT | U_BASE | U_ENTRIES | U_CHECKSUM;
    case MSG_GET_STATE:
        return U_COMMIT | U_BASE | U_NONCE | U_CHECKSUM;
    case MSG_NEW_STATE:
        return U_STATUS | U_FLAGS | U_OP | U_COMMIT | U_VIEW_OP | U_BASE |
               U_NONCE | U_ENTRIES | U_CHECKSUM;
    case MSG_RECOVERY_RESPONSE:
        return U_STATUS | U_FLAGS | U_LNV | U_OP | U_COMMIT | U_NONCE;
    case MSG_RECOVERY:
    case MSG_PING:
    case MSG_PONG:
        return U_NONCE;
    default:
        return 0;
    }
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void zero_unused(struct message *m, uint32_t *count)
{
    uint32_t u = uses(m->type);
    m->status = (u & U_STATUS) ? (uint8_t)(m->status % 3 + 1) : 0;
    if (!(u & U_FLAGS))
        m->flags = 0;
    else if (m->type == MSG_NEW_STATE)
        m->flags &= MSG_FLAG_SNAPSHOT;
    else
        m->flags &= MSG_FLAG_INTACT | MSG_FLAG_FRESH;
    m->last_normal_view = (u & U_LNV) ? m->last_normal_view : 0;
    m->op = (u & U_OP) ? m->op & ENTRY_OP_MAX : 0;
    m->commit = (u & U_COMMIT) ? m->commit & ENTRY_OP_MAX : 0;
    m->view_op = (u & U_VIEW_OP) ? m->view_op & ENTRY_OP_MAX : 0;
    m->base_op = (u & U_BASE) ? min64(m->base_op, ENTRY_OP_MAX - 8) : 0;
    m->nonce = (u & U_NONCE) ? m->nonce : 0;
    m->checksum = (u & U_CHECKSUM) ? m->checksum : 0;
    if (!(u & U_ENTRIES) || (m->flags & MSG_FLAG_SNAPSHOT))
        *count = 0;
}

/* Make m pass message_decode() with as many of its hostile values as
 * the rules leave (message.h). */
static void repair(struct message *m, uint32_t *count)
{
    m->from %= GROUP_N;
    m->view &= VIEW_MAX;
    if (m->type == MSG_START_VIEW_CHANGE && m->view == 0)
        m->view = 1;
    zero_unused(m, count);
    m->last_normal_view = min64(m->last_normal_view, m->view);
    switch (m->type) {
    case MSG_DO_VIEW_CHANGE:
        m->commit = min64(m->commit, ENTRY_OP_MAX - 8);
        m->base_op = m->commit;
        m->op = m->base_op + *count;
        break;
    case MSG_START_VIEW:
        m->op = m->base_op + *count;
        break;
    case MSG_GET_STATE:
        m->commit = min64(m->commit, m->base_op);
        break;
    default:
        if (m->op < m->base_op + *count)
            m->op = m->base_op + *count;
        break;
    }
    m->commit = min64(m->commit, m->op);
    if (m->type != MSG_NEW_STATE)
        m->view_op = min64(m->view_op, m->op);
}

/* count entries after m->base_op, chained from m->checksum, with fields
 * from the script: most as a correct primary makes them, some hostile (a
 * quarter of each kind, so that whole runs still decode). */
static void build_entries(struct script *s, const struct replica *t,
                          const struct message *m, uint32_t count,
                          struct entry *e, uint8_t bodies[][16])
{
    uint64_t parent = m->checksum;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t how = take8(s) | (uint32_t)take8(s) << 8;
        uint32_t size = take8(s) % 16;
        for (uint32_t b = 0; b < size; b++)
            bodies[k][b] = take8(s);
        struct entry_header h = {
            .parent = parent,
            .op = m->base_op + 1 + k,
            .client_id = 1u + k % 4,
            .request_no = 1u + take8(s) % 8u,
            .timestamp_ms = 1000u + k,
            .view = m->view,
            .body_size = size,
            .kind = ENTRY_CLIENT,
        };
        if ((how & 3) == 0)
            h.client_id = take8(s) % 5u;
        if ((how & 12) == 0)
            h.request_no = pick(s, t);
        if ((how & 48) == 0)
            h.timestamp_ms = pick(s, t);
        if ((how & 192) == 0)
            h.view = pick(s, t) & VIEW_MAX;
        if ((how & 0x300) == 0)
            h.kind = (uint16_t)(take8(s) % 4);
        if (h.kind == ENTRY_NOOP && (how & 0xc00) != 0) {
            h.client_id = h.request_no = 0;
            h.body_size = size = 0;
        }
        e[k].h = h;
        e[k].body = bodies[k];
        entry_seal(&e[k].h, e[k].body);
        parent = e[k].h.checksum;
    }
}

static uint64_t checksum_pick(struct script *s, const struct replica *t,
                              uint64_t op)
{
    uint8_t sel = take8(s) % 4;
    const struct entry *e = replica_entry(t, op);
    if (sel < 2 && e)
        return e->h.checksum;
    return sel == 2 ? 0 : take64(s);
}

static void hand_over(struct group *g, uint32_t to, const uint8_t *data,
                      size_t size)
{
    struct message check;
    stats.injected++;
    if (message_decode(data, size, GROUP_N, &check))
        stats.injected_decoded++;
    struct event ev = {.type = EV_MESSAGE};
    ev.message.data = data;
    ev.message.size = size;
    step(g, to, &ev);
}

static void inject_built(struct group *g, struct script *s, uint32_t target)
{
    uint8_t how = take8(s);
    uint32_t to = how & 8 ? take8(s) % GROUP_N : target;
    const struct replica *t = g->m[to].r;
    struct message m = {
        .type = (uint8_t)(take8(s) % MSG_TYPE_MAX + 1),
        .from = (uint8_t)(take8(s) % 16 == 15 ? GROUP_N : take8(s) % GROUP_N),
        .status = (uint8_t)(take8(s) % 5),
        .flags = (uint8_t)(take8(s) % 8),
        .epoch = (how & 0x70) == 0x70 ? (uint32_t)take64(s) : 0,
    };
    m.view = pick(s, t);
    m.last_normal_view = pick(s, t);
    m.op = pick(s, t);
    m.commit = pick(s, t);
    m.view_op = pick(s, t);
    m.base_op = pick(s, t);
    m.nonce = how & 32 ? take64(s) : take8(s);
    uint32_t count = take8(s) % 5;
    if ((how & 3) != 0)
        repair(&m, &count);
    if (uses(m.type) & U_CHECKSUM || (how & 3) == 0)
        m.checksum = checksum_pick(s, t, m.base_op);
    struct entry e[4];
    uint8_t bodies[4][16];
    build_entries(s, t, &m, count, e, bodies);
    m.entry_count = count;
    uint64_t view = m.view;
    m.view &= VIEW_MAX; /* message_encode() asserts it; patched below */
    static uint8_t buf[MESSAGE_HEADER_SIZE + 4 * (ENTRY_HEADER_SIZE + 16)];
    size_t size = message_encode(&m, e, buf, sizeof(buf));
    ASSERT(size > 0);
    put_u64(buf + 8, view);
    hand_over(g, to, buf, size);
}

static void inject_raw(struct group *g, struct script *s, uint32_t target)
{
    static uint8_t buf[1024];
    size_t size = (size_t)take8(s) * 4;
    for (size_t k = 0; k < size; k++)
        buf[k] = take8(s);
    hand_over(g, target, buf, size);
}

/* Patch one header field of the next honest frame in flight, then deliver
 * it: real messages with one hostile value. */
static void patch_in_flight(struct group *g, struct script *s)
{
    static const uint8_t offsets[] = {8, 16, 24, 32, 40, 48, 56, 64};
    if (g->count == 0)
        return;
    struct frame *f = &g->q[g->head];
    uint8_t sel = take8(s);
    uint64_t v = pick(s, g->m[f->to].r);
    if (f->size >= MESSAGE_HEADER_SIZE) {
        if (sel % 10 < 8)
            put_u64(f->data + offsets[sel % 10], v);
        else if (sel % 10 == 8)
            put_u32(f->data + 72, (uint32_t)v);
        else
            f->data[sel % 4] = (uint8_t)v;
        stats.injected++;
    }
    deliver_one(g, false);
}

/* ------------------------------------------------------------- steps */

static void run_step(struct group *g, struct script *s, uint32_t target)
{
    uint8_t op = take8(s);
    uint8_t arg = take8(s);
    switch (op % 10) {
    case 0:
        for (uint32_t k = 0; k <= arg % 16; k++)
            deliver_one(g, (take8(s) & 7) == 0);
        break;
    case 1:
        tick_all(g, arg % 64 + 1);
        break;
    case 2:
        storage_round(g, arg % GROUP_N);
        break;
    case 3:
    case 4:
        inject_built(g, s, target);
        break;
    case 5:
        inject_raw(g, s, target);
        break;
    case 6:
        patch_in_flight(g, s);
        break;
    case 7: {
        int p = primary_of_group(g);
        uint32_t at = arg & 1 || p < 0 ? arg % GROUP_N : (uint32_t)p;
        submit(g, at, take8(s), take8(s), arg & 2);
        break;
    }
    case 8: {
        struct event ev = {.type = EV_READ};
        ev.read.tag = arg;
        ev.read.min_op =
            min64(pick(s, g->m[target].r), replica_op(g->m[target].r));
        step(g, arg % GROUP_N, &ev);
        break;
    }
    default: {
        struct event ev = {.type = EV_PEER_DOWN};
        ev.peer_down.peer = arg % GROUP_N;
        step(g, target, &ev);
        break;
    }
    }
}

void fuzz_group_run(const uint8_t *script, size_t size)
{
    static struct group g;
    struct script s = {script, size};
    group_init(&g);
    uint32_t target = group_prepare(&g, take8(&s));
    while (s.left > 0)
        run_step(&g, &s, target);
    for (uint32_t i = 0; i < GROUP_N; i++)
        g.m[i].cut = false;
    settle(&g, 500);
    group_free(&g);
    stats.runs++;
}

const struct fuzz_group_stats *fuzz_group_stats(void)
{
    return &stats;
}
