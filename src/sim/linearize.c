/* linearize — the checker described in linearize.h.
 *
 * For one key the search keeps a doubly linked list, with sentinels, of the
 * events of the ops not yet linearized in time order: a call and a return
 * per ok op, a call only per unknown op. Lowe's lift() and unlift() take an
 * op's events out and put them back in stack order, like dancing links. A
 * stack holds the linearized ops with the model state before each, and two
 * bitsets hold the linearized ok ops (with an incremental Zobrist hash) and
 * the linearized unknown ops. The candidates at a configuration are the
 * calls before the first return in the list.
 *
 * The cache holds configurations proven to fail: (ok ops linearized, state,
 * unknown ops linearized). A configuration is pruned if the cache holds one
 * with the same ok ops and state and a subset of its unknown ops: with fewer
 * unknown ops spent, that one had every continuation this one has, since
 * which ops may go next depends only on the ok ops left. With no unknown ops
 * this is Lowe's exact-match cache. A configuration enters the cache when it
 * is popped; one on the stack never equals a later one (each push adds an
 * op), so this prunes as much as adding it when pushed. For the same reason
 * an unknown op is never linearized where it would not change the state:
 * the configuration it would leave is covered by the current one.
 *
 * Invariants: (1) the list holds exactly the events of the ops not
 * linearized, in order; (2) the bitsets, the hash and known_left agree with
 * the stack; (3) every configuration in the cache has failed; (4) every push
 * counts against the budget, so the search ends. */
#include "sim/linearize.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

#define NONE UINT32_MAX
#define CACHE_SLOTS_MIN 1024u
#define PREFIX_SHOWN 4
#define PENDING_SHOWN 4

/* Sentinels of the event list; event nodes follow. */
#define HEAD 0
#define TAIL 1
#define FIRST_EVENT 2

enum verdict { VERDICT_OK, VERDICT_FAIL, VERDICT_GAVE_UP };

/* The model state of one key; value is 0 when absent, so that equal states
 * compare and hash equal. */
struct model_state {
    bool present;
    int64_t value;
};

struct event {
    uint64_t time;
    uint64_t id;
    uint32_t op; /* index into the key's ops */
    bool is_return;
};

struct node {
    uint32_t prev;
    uint32_t next;
    uint32_t op;    /* index into the key's ops */
    uint32_t bit;   /* the op's bit in the known or the unknown bitset */
    uint32_t match; /* an ok op's return node, else NONE */
    bool is_return;
    bool unknown;
};

struct bitset {
    uint32_t words;
    uint64_t *bits;
};

/* Open addressing over entries keyed by (ok ops, state); each entry heads a
 * chain of the unknown-op sets that failed with them. */
struct cache {
    uint32_t known_words;
    uint32_t unknown_words;
    uint32_t count;
    uint32_t slot_count; /* a power of two; count stays below half */
    uint32_t *slots;     /* entry index + 1, 0 when empty */
    uint64_t *hashes;
    struct model_state *states;
    uint64_t *known_bits;
    uint32_t *chain; /* first failed set, NONE for none */
    uint32_t failed_count;
    uint32_t failed_max;
    uint32_t *failed_next;
    uint64_t *failed_bits;
};

/* The deepest point the search reached before a return event stopped it. */
struct deepest {
    bool set;
    uint32_t known_done; /* ok ops linearized there */
    uint32_t depth;
    uint32_t blocker; /* the op whose response came before it was linearized */
    struct model_state state;
    uint32_t *prefix; /* the linearized ops, in order */
    uint32_t pending[PENDING_SHOWN];
    uint32_t pending_count; /* all pending, maybe more than PENDING_SHOWN */
};

struct frame {
    uint32_t node;
    struct model_state state; /* before the op */
};

struct search {
    uint64_t budget;
    uint64_t explored;
    const struct lin_op **ops; /* this key's ops, borrowed */
    uint32_t op_count;
    uint32_t known_count;
    uint32_t known_left; /* ok ops not yet linearized */
    struct node *nodes;
    struct event *events;
    uint32_t *call_node; /* by op, while loading */
    struct frame *frames;
    uint32_t depth;
    struct model_state state;
    struct bitset known;
    struct bitset unknown;
    uint64_t known_hash;
    uint64_t *zobrist;
    struct cache cache;
    struct deepest deepest;
};

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    ASSERT(p != NULL);
    return p;
}

static void *xrealloc(void *p, size_t count, size_t size)
{
    ASSERT(size > 0);
    ASSERT(count <= SIZE_MAX / size);
    p = realloc(p, count * size);
    ASSERT(p != NULL);
    return p;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

static uint64_t config_hash(uint64_t known_hash, struct model_state st)
{
    uint64_t h = known_hash ^ mix64((uint64_t)st.value);
    return mix64(h ^ (st.present ? 0x5bd1e9955bd1e995u : 0));
}

/* Apply op to s. Returns false if op cannot take effect here: an ok op
 * whose result disagrees with the model, or an INCR that would overflow. */
static bool model_step(const struct lin_op *op, struct model_state s,
                       struct model_state *next)
{
    bool checked = !op->unknown;
    int64_t base = s.present ? s.value : 0;
    int64_t sum;

    *next = s;
    switch (op->kind) {
    case LIN_GET:
        if (!checked)
            return true;
        if (op->result_absent)
            return !s.present;
        return s.present && s.value == op->result;
    case LIN_SET:
        *next = (struct model_state){.present = true, .value = op->arg1};
        return true;
    case LIN_CAS:
        if (s.present && s.value == op->arg1)
            next->value = op->arg2;
        return !checked || op->result == (s.present && s.value == op->arg1);
    case LIN_INCR:
        if (__builtin_add_overflow(base, op->arg1, &sum))
            return false;
        *next = (struct model_state){.present = true, .value = sum};
        return !checked || op->result == sum;
    case LIN_DEL:
        *next = (struct model_state){.present = false, .value = 0};
        return !checked || op->result == (s.present ? 1 : 0);
    case LIN_CLEAR:
        *next = (struct model_state){.present = false, .value = 0};
        return true;
    }
    UNREACHABLE();
}

static void bitset_flip(struct bitset *b, uint32_t bit)
{
    ASSERT(bit / 64 < b->words);
    b->bits[bit / 64] ^= (uint64_t)1 << (bit % 64);
}

/* Is every bit of a also in b? */
static bool bits_subset(const uint64_t *a, const uint64_t *b, uint32_t words)
{
    for (uint32_t w = 0; w < words; w++)
        if (a[w] & ~b[w])
            return false;
    return true;
}

static void cache_init(struct cache *c, uint32_t known_words,
                       uint32_t unknown_words)
{
    ASSERT(known_words > 0);
    ASSERT(unknown_words > 0);
    memset(c, 0, sizeof(*c));
    c->known_words = known_words;
    c->unknown_words = unknown_words;
    c->slot_count = CACHE_SLOTS_MIN;
    size_t entries = c->slot_count / 2;
    c->slots = xcalloc(c->slot_count, sizeof(*c->slots));
    c->hashes = xcalloc(entries, sizeof(*c->hashes));
    c->states = xcalloc(entries, sizeof(*c->states));
    c->known_bits = xcalloc(entries * known_words, sizeof(*c->known_bits));
    c->chain = xcalloc(entries, sizeof(*c->chain));
    c->failed_max = (uint32_t)entries;
    c->failed_next = xcalloc(entries, sizeof(*c->failed_next));
    c->failed_bits = xcalloc(entries * unknown_words, sizeof(*c->failed_bits));
}

static void cache_deinit(struct cache *c)
{
    free(c->slots);
    free(c->hashes);
    free(c->states);
    free(c->known_bits);
    free(c->chain);
    free(c->failed_next);
    free(c->failed_bits);
    memset(c, 0, sizeof(*c));
}

/* Empty the cache for the next key, whose bitsets have these sizes. A big
 * table is given back rather than cleared, so that many small keys after
 * one big key stay cheap. */
static void cache_reset(struct cache *c, uint32_t known_words,
                        uint32_t unknown_words)
{
    if (c->known_words != known_words || c->unknown_words != unknown_words ||
        c->slot_count > CACHE_SLOTS_MIN * 16 ||
        c->failed_max > CACHE_SLOTS_MIN * 8) {
        cache_deinit(c);
        cache_init(c, known_words, unknown_words);
        return;
    }
    memset(c->slots, 0, c->slot_count * sizeof(*c->slots));
    c->count = 0;
    c->failed_count = 0;
}

static void cache_grow(struct cache *c)
{
    ASSERT(c->slot_count <= UINT32_MAX / 2);
    uint32_t slot_count = c->slot_count * 2;
    uint32_t mask = slot_count - 1;
    size_t entries = slot_count / 2;

    free(c->slots);
    c->slots = xcalloc(slot_count, sizeof(*c->slots));
    c->hashes = xrealloc(c->hashes, entries, sizeof(*c->hashes));
    c->states = xrealloc(c->states, entries, sizeof(*c->states));
    c->known_bits = xrealloc(c->known_bits, entries * c->known_words,
                             sizeof(*c->known_bits));
    c->chain = xrealloc(c->chain, entries, sizeof(*c->chain));
    c->slot_count = slot_count;
    for (uint32_t e = 0; e < c->count; e++) {
        uint32_t i = (uint32_t)c->hashes[e] & mask;
        while (c->slots[i] != 0)
            i = (i + 1) & mask;
        c->slots[i] = e + 1;
    }
}

/* The entry for (known, st), or NONE; *slot is where it would go. */
static uint32_t cache_find(const struct cache *c, const uint64_t *known,
                           struct model_state st, uint64_t hash, uint32_t *slot)
{
    uint32_t mask = c->slot_count - 1;
    size_t bytes = c->known_words * sizeof(*known);
    uint32_t i = (uint32_t)hash & mask;

    for (uint32_t probes = 0; c->slots[i] != 0; probes++) {
        ASSERT(probes < c->slot_count);
        uint32_t e = c->slots[i] - 1;
        if (c->hashes[e] == hash && c->states[e].present == st.present &&
            c->states[e].value == st.value &&
            memcmp(c->known_bits + (size_t)e * c->known_words, known, bytes) ==
                0)
            return e;
        i = (i + 1) & mask;
    }
    *slot = i;
    return NONE;
}

/* Has a configuration with these ok ops and state, and a subset of these
 * unknown ops, failed? */
static bool cache_dominated(const struct cache *c, const uint64_t *known,
                            const uint64_t *unknown, struct model_state st,
                            uint64_t hash)
{
    uint32_t slot;
    uint32_t e = cache_find(c, known, st, hash, &slot);
    if (e == NONE)
        return false;
    for (uint32_t f = c->chain[e]; f != NONE; f = c->failed_next[f])
        if (bits_subset(c->failed_bits + (size_t)f * c->unknown_words, unknown,
                        c->unknown_words))
            return true;
    return false;
}

static uint32_t cache_entry_add(struct cache *c, const uint64_t *known,
                                struct model_state st, uint64_t hash)
{
    uint32_t slot;
    uint32_t e = cache_find(c, known, st, hash, &slot);
    if (e != NONE)
        return e;
    if (c->count + 1 >= c->slot_count / 2) {
        cache_grow(c);
        e = cache_find(c, known, st, hash, &slot);
        ASSERT(e == NONE);
    }
    e = c->count++;
    c->hashes[e] = hash;
    c->states[e] = st;
    memcpy(c->known_bits + (size_t)e * c->known_words, known,
           c->known_words * sizeof(*known));
    c->chain[e] = NONE;
    c->slots[slot] = e + 1;
    return e;
}

/* Record a failed configuration. Sets in its chain that contain unknown are
 * now implied by it and are dropped. */
static void cache_add_failed(struct cache *c, const uint64_t *known,
                             const uint64_t *unknown, struct model_state st,
                             uint64_t hash)
{
    uint32_t e = cache_entry_add(c, known, st, hash);
    uint32_t words = c->unknown_words;

    for (uint32_t *link = &c->chain[e]; *link != NONE;) {
        if (bits_subset(unknown, c->failed_bits + (size_t)*link * words, words))
            *link = c->failed_next[*link];
        else
            link = &c->failed_next[*link];
    }
    if (c->failed_count == c->failed_max) {
        ASSERT(c->failed_max <= UINT32_MAX / 2);
        c->failed_max *= 2;
        c->failed_next =
            xrealloc(c->failed_next, c->failed_max, sizeof(*c->failed_next));
        c->failed_bits = xrealloc(c->failed_bits, (size_t)c->failed_max * words,
                                  sizeof(*c->failed_bits));
    }
    uint32_t f = c->failed_count++;
    memcpy(c->failed_bits + (size_t)f * words, unknown,
           words * sizeof(*unknown));
    c->failed_next[f] = c->chain[e];
    c->chain[e] = f;
}

static void list_remove(struct node *nodes, uint32_t i)
{
    nodes[nodes[i].prev].next = nodes[i].next;
    nodes[nodes[i].next].prev = nodes[i].prev;
}

static void list_restore(struct node *nodes, uint32_t i)
{
    nodes[nodes[i].prev].next = i;
    nodes[nodes[i].next].prev = i;
}

static void lift(struct node *nodes, uint32_t call)
{
    ASSERT(!nodes[call].is_return);
    list_remove(nodes, call);
    if (nodes[call].match != NONE)
        list_remove(nodes, nodes[call].match);
}

/* Undo lift(): the reverse order of removal restores the links. */
static void unlift(struct node *nodes, uint32_t call)
{
    ASSERT(!nodes[call].is_return);
    if (nodes[call].match != NONE)
        list_restore(nodes, nodes[call].match);
    list_restore(nodes, call);
}

static int event_compare(const void *a, const void *b)
{
    const struct event *x = a;
    const struct event *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->is_return != y->is_return)
        return x->is_return ? 1 : -1; /* touching ops are concurrent */
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->op < y->op ? -1 : (x->op > y->op);
}

static void search_init(struct search *s, size_t op_count_max, uint64_t budget)
{
    ASSERT(op_count_max < UINT32_MAX / 4);
    size_t n = op_count_max;
    uint32_t words = (uint32_t)(n / 64 + 1);

    memset(s, 0, sizeof(*s));
    s->budget = budget;
    s->nodes = xcalloc(2 * n + FIRST_EVENT, sizeof(*s->nodes));
    s->events = xcalloc(2 * n, sizeof(*s->events));
    s->call_node = xcalloc(n, sizeof(*s->call_node));
    s->frames = xcalloc(n, sizeof(*s->frames));
    s->known = (struct bitset){words, xcalloc(words, sizeof(uint64_t))};
    s->unknown = (struct bitset){words, xcalloc(words, sizeof(uint64_t))};
    s->zobrist = xcalloc(n, sizeof(*s->zobrist));
    s->deepest.prefix = xcalloc(n, sizeof(*s->deepest.prefix));
    for (size_t i = 0; i < n; i++)
        s->zobrist[i] = mix64((uint64_t)i * 0x9e3779b97f4a7c15u + 1);
    cache_init(&s->cache, 1, 1);
}

static void search_deinit(struct search *s)
{
    cache_deinit(&s->cache);
    free(s->nodes);
    free(s->events);
    free(s->call_node);
    free(s->frames);
    free(s->known.bits);
    free(s->unknown.bits);
    free(s->zobrist);
    free(s->deepest.prefix);
}

/* Sort the key's events and count its ok ops. Unknown GETs change nothing
 * and check nothing, so they get no events. Returns the event count. */
static uint32_t search_events(struct search *s)
{
    uint32_t count = 0;
    s->known_count = 0;
    for (uint32_t i = 0; i < s->op_count; i++) {
        const struct lin_op *op = s->ops[i];
        if (op->unknown && op->kind == LIN_GET)
            continue;
        s->events[count++] = (struct event){op->invoke, op->id, i, false};
        if (op->unknown)
            continue;
        s->events[count++] = (struct event){op->response, op->id, i, true};
        s->known_count++;
    }
    qsort(s->events, count, sizeof(*s->events), event_compare);
    return count;
}

static void search_reset(struct search *s, const struct lin_op **ops,
                         uint32_t op_count)
{
    s->ops = ops;
    s->op_count = op_count;
    s->explored = 0;
    s->depth = 0;
    s->known_count = 0;
    s->state = (struct model_state){.present = false, .value = 0};
    s->known_hash = 0;
    memset(s->known.bits, 0, s->known.words * sizeof(uint64_t));
    memset(s->unknown.bits, 0, s->unknown.words * sizeof(uint64_t));
    s->deepest.set = false;
}

static void search_load(struct search *s, const struct lin_op **ops,
                        uint32_t op_count)
{
    search_reset(s, ops, op_count);
    uint32_t event_count = search_events(s);
    uint32_t known_bits = 0;
    uint32_t unknown_bits = 0;

    for (uint32_t i = 0; i < event_count; i++) {
        const struct event *ev = &s->events[i];
        uint32_t n = FIRST_EVENT + i;
        bool unknown = s->ops[ev->op]->unknown;
        s->nodes[n] = (struct node){.op = ev->op,
                                    .match = NONE,
                                    .is_return = ev->is_return,
                                    .unknown = unknown};
        if (ev->is_return) {
            s->nodes[s->call_node[ev->op]].match = n; /* calls sort first */
            continue;
        }
        s->nodes[n].bit = unknown ? unknown_bits++ : known_bits++;
        s->call_node[ev->op] = n;
    }
    ASSERT(known_bits == s->known_count);
    /* The cache compares only the words this key uses; the rest stay 0. */
    cache_reset(&s->cache, known_bits / 64 + 1, unknown_bits / 64 + 1);
    s->nodes[HEAD] = (struct node){.match = NONE};
    s->nodes[TAIL] = (struct node){.match = NONE};
    uint32_t prev = HEAD;
    for (uint32_t n = FIRST_EVENT; n < FIRST_EVENT + event_count; n++) {
        s->nodes[n].prev = prev;
        s->nodes[prev].next = n;
        prev = n;
    }
    s->nodes[prev].next = TAIL;
    s->nodes[TAIL].prev = prev;
    s->known_left = s->known_count;
}

static uint64_t search_hash(const struct search *s, struct model_state st)
{
    return config_hash(s->known_hash, st);
}

static void search_flip(struct search *s, uint32_t node)
{
    const struct node *e = &s->nodes[node];
    if (e->unknown) {
        bitset_flip(&s->unknown, e->bit);
        return;
    }
    bitset_flip(&s->known, e->bit);
    s->known_hash ^= s->zobrist[e->bit];
}

/* Linearize the op of call node, if the model allows it and no failed
 * configuration in the cache covers the result. */
static bool search_push(struct search *s, uint32_t node)
{
    const struct node *e = &s->nodes[node];
    struct model_state next;

    ASSERT(!e->is_return);
    if (!model_step(s->ops[e->op], s->state, &next))
        return false;
    if (e->unknown && next.present == s->state.present &&
        next.value == s->state.value)
        return false; /* changes nothing: every continuation is ours */
    search_flip(s, node);
    if (cache_dominated(&s->cache, s->known.bits, s->unknown.bits, next,
                        search_hash(s, next))) {
        search_flip(s, node);
        return false;
    }
    s->explored++;
    ASSERT(s->depth < s->op_count);
    s->frames[s->depth++] = (struct frame){node, s->state};
    s->state = next;
    lift(s->nodes, node);
    if (!e->unknown)
        s->known_left--;
    return true;
}

/* The configuration on top has failed: record it and undo its last op.
 * Returns the node after that op's call, the next candidate. */
static uint32_t search_pop(struct search *s)
{
    ASSERT(s->depth > 0);
    cache_add_failed(&s->cache, s->known.bits, s->unknown.bits, s->state,
                     search_hash(s, s->state));
    const struct frame *f = &s->frames[--s->depth];
    const struct node *e = &s->nodes[f->node];
    s->state = f->state;
    search_flip(s, f->node);
    unlift(s->nodes, f->node);
    if (!e->unknown)
        s->known_left++;
    ASSERT(s->known_left <= s->known_count);
    return e->next;
}

/* A return event stopped the walk: remember the deepest such point, by ok
 * ops linearized (the smallest blocking id among equals), for the failure
 * message. */
static void search_note_blocked(struct search *s, uint32_t ret)
{
    struct deepest *d = &s->deepest;
    uint32_t blocker = s->nodes[ret].op;
    uint32_t known_done = s->known_count - s->known_left;
    if (d->set && (known_done < d->known_done ||
                   (known_done == d->known_done &&
                    s->ops[blocker]->id >= s->ops[d->blocker]->id)))
        return;
    d->set = true;
    d->known_done = known_done;
    d->depth = s->depth;
    d->blocker = blocker;
    d->state = s->state;
    for (uint32_t i = 0; i < s->depth; i++)
        d->prefix[i] = s->nodes[s->frames[i].node].op;
    d->pending_count = 0;
    for (uint32_t i = s->nodes[HEAD].next; i != ret; i = s->nodes[i].next) {
        if (s->nodes[i].is_return || s->nodes[i].op == blocker)
            continue;
        if (d->pending_count < PENDING_SHOWN)
            d->pending[d->pending_count] = s->nodes[i].op;
        d->pending_count++;
    }
}

/* Depth-first search over configurations: try the calls before the first
 * return; when the walk reaches it, none of them led anywhere, so undo the
 * last op and try the next call after it. */
static enum verdict search_run(struct search *s)
{
    uint32_t node = s->nodes[HEAD].next;

    for (;;) {
        if (s->known_left == 0)
            return VERDICT_OK;
        if (s->explored >= s->budget)
            return VERDICT_GAVE_UP;
        ASSERT(node != TAIL); /* a pending ok op's return is listed */
        const struct node *e = &s->nodes[node];
        if (e->is_return) {
            search_note_blocked(s, node);
            if (s->depth == 0)
                return VERDICT_FAIL;
            node = search_pop(s);
        } else if (search_push(s, node)) {
            node = s->nodes[HEAD].next;
        } else {
            node = e->next;
        }
    }
}

struct text {
    char *buf;
    size_t size;
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t,
                                                           const char *fmt, ...)
{
    if (t->len + 1 >= t->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    ASSERT(n >= 0);
    t->len += (size_t)n;
    if (t->len >= t->size)
        t->len = t->size - 1;
}

static const char *kind_name(enum lin_kind kind)
{
    switch (kind) {
    case LIN_GET:
        return "GET";
    case LIN_SET:
        return "SET";
    case LIN_CAS:
        return "CAS";
    case LIN_INCR:
        return "INCR";
    case LIN_DEL:
        return "DEL";
    case LIN_CLEAR:
        return "CLEAR";
    }
    return "?";
}

const char *lin_op_describe(const struct lin_op *op, char *buf, size_t size)
{
    struct text t = {buf, size, 0};
    ASSERT(size > 0);
    buf[0] = '\0';
    text_add(&t, "op %" PRIu64 " %s", op->id, kind_name(op->kind));
    if (op->kind == LIN_SET || op->kind == LIN_INCR)
        text_add(&t, " %" PRId64, op->arg1);
    if (op->kind == LIN_CAS)
        text_add(&t, " %" PRId64 " %" PRId64, op->arg1, op->arg2);
    if (op->unknown) {
        text_add(&t, " -> ? [%" PRIu64 ",?]", op->invoke);
        return buf;
    }
    if (op->kind == LIN_GET && op->result_absent)
        text_add(&t, " -> absent");
    else if (op->kind != LIN_SET && op->kind != LIN_CLEAR)
        text_add(&t, " -> %" PRId64, op->result);
    text_add(&t, " [%" PRIu64 ",%" PRIu64 "]", op->invoke, op->response);
    return buf;
}

static void text_add_op(struct text *t, const struct lin_op *op)
{
    char buf[128];
    text_add(t, "%s", lin_op_describe(op, buf, sizeof(buf)));
}

/* "key 7 is not linearizable: op 3 GET -> 1 [40,50] cannot be linearized.
 * Deepest prefix found, 2 of 3 ops: op 1 SET 1 [0,10], op 2 SET 2 [20,30],
 * leaving 2; also pending there: ..." */
static void report_failure(const struct search *s, struct lin_result *out)
{
    const struct deepest *d = &s->deepest;
    struct text t = {out->message, sizeof(out->message), 0};
    ASSERT(d->set);

    text_add(&t, "key %" PRIu64 " is not linearizable: ", s->ops[0]->key);
    text_add_op(&t, s->ops[d->blocker]);
    text_add(&t,
             " cannot be linearized. Deepest prefix found, %" PRIu32
             " of %" PRIu32 " ops:",
             d->depth, s->op_count);
    uint32_t first = d->depth > PREFIX_SHOWN ? d->depth - PREFIX_SHOWN : 0;
    if (first > 0)
        text_add(&t, " ...,");
    for (uint32_t i = first; i < d->depth; i++) {
        text_add(&t, " ");
        text_add_op(&t, s->ops[d->prefix[i]]);
        text_add(&t, ",");
    }
    if (d->state.present)
        text_add(&t, " leaving %" PRId64, d->state.value);
    else
        text_add(&t, " leaving absent");
    for (uint32_t i = 0; i < d->pending_count && i < PENDING_SHOWN; i++) {
        text_add(&t, i == 0 ? "; also pending there: " : ", ");
        text_add_op(&t, s->ops[d->pending[i]]);
    }
    if (d->pending_count > PENDING_SHOWN)
        text_add(&t, " and %" PRIu32 " more", d->pending_count - PENDING_SHOWN);
}

static void validate(const struct lin_op *op)
{
    ASSERT(op->kind >= LIN_GET);
    ASSERT(op->kind <= LIN_CLEAR);
    ASSERT(op->unknown || op->invoke <= op->response);
    ASSERT(op->unknown || !op->result_absent || op->kind == LIN_GET);
}

static int op_compare(const void *a, const void *b)
{
    const struct lin_op *x = *(const struct lin_op *const *)a;
    const struct lin_op *y = *(const struct lin_op *const *)b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->invoke != y->invoke)
        return x->invoke < y->invoke ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x < y ? -1 : (x > y); /* same array: input order */
}

/* The end of the run of ops on the key of sorted[start]. */
static size_t group_end(const struct lin_op **sorted, size_t count,
                        size_t start)
{
    size_t end = start + 1;
    while (end < count && sorted[end]->key == sorted[start]->key)
        end++;
    return end;
}

static enum verdict check_key(struct search *s, const struct lin_op **ops,
                              size_t op_count, struct lin_result *out)
{
    search_load(s, ops, (uint32_t)op_count);
    enum verdict v = search_run(s);
    out->ops_checked += op_count;
    out->states_explored += s->explored;
    if (v == VERDICT_FAIL) {
        out->ok = false;
        out->key = ops[0]->key;
        report_failure(s, out);
    } else if (v == VERDICT_GAVE_UP && !out->gave_up) {
        out->gave_up = true;
        out->key = ops[0]->key;
        snprintf(out->message, sizeof(out->message),
                 "key %" PRIu64 ": gave up after %" PRIu64
                 " configurations (the budget) with %zu ops; "
                 "linearizability unknown",
                 ops[0]->key, s->explored, op_count);
    }
    return v;
}

void lin_check(const struct lin_op *ops, size_t count, uint64_t budget,
               struct lin_result *out)
{
    memset(out, 0, sizeof(*out));
    out->ok = true;
    const struct lin_op **sorted = xcalloc(count, sizeof(*sorted));
    for (size_t i = 0; i < count; i++) {
        validate(&ops[i]);
        sorted[i] = &ops[i];
    }
    qsort(sorted, count, sizeof(*sorted), op_compare);

    size_t group_max = 0;
    for (size_t start = 0, end; start < count; start = end) {
        end = group_end(sorted, count, start);
        group_max = end - start > group_max ? end - start : group_max;
    }
    struct search s;
    search_init(&s, group_max, budget);
    uint64_t key_count = 0;
    for (size_t start = 0, end; start < count; start = end) {
        end = group_end(sorted, count, start);
        key_count++;
        if (check_key(&s, sorted + start, end - start, out) == VERDICT_FAIL)
            break;
    }
    if (out->ok && !out->gave_up)
        snprintf(out->message, sizeof(out->message),
                 "linearizable: %" PRIu64 " ops over %" PRIu64 " keys, %" PRIu64
                 " configurations explored",
                 out->ops_checked, key_count, out->states_explored);
    search_deinit(&s);
    free(sorted);
}
