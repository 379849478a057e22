/* Tests for the peer transport: real transports on 127.0.0.1 in one libuv
 * loop, plus raw libuv sockets that play a misbehaving peer. Every test runs
 * its loop under a deadline timer and advances in steps from a tick timer,
 * so a bug ends the test with a failure instead of hanging ctest; every send
 * loop has a count bound. Ports come from binding port 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "runtime/transport.h"

#define SIDES_MAX 3
#define LOGS_MAX 64
#define LOG_LINE_MAX 400
#define DEADLINE_MS 20000
#define TICK_MS 2
#define MESSAGE_SIZE_MAX (1024 * 1024)
#define CLUSTER_ID 0x5678u
/* A peer's handshake without authentication: HELLO, then AUTH (a zero
 * proof and a token), peer_link.h. */
#define HANDSHAKE_SIZE (PEER_LINK_HELLO_SIZE + PEER_LINK_AUTH_SIZE)

/* One transport and what it received. */
struct side {
    struct fixture *f;
    uint32_t self;
    struct transport *t;
    uint64_t received[SIDES_MAX];
    int64_t last_seq[SIDES_MAX]; /* -1 before the first message */
    uint32_t out_of_order;
    uint32_t corrupt;
    bool close_on_message; /* close our transport inside on_message */
    uint32_t log_count;
    char logs[LOGS_MAX][LOG_LINE_MAX];
};

/* A raw client that writes `data` once connected and records what the
 * transport answers and whether it closed the connection. */
struct raw_client {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uint8_t data[256];
    size_t size;
    uint8_t in[128];
    size_t in_size;
    bool started;
    bool closed;
    bool eof; /* the transport closed the connection */
};

/* A raw server that answers a dialer's connection with a handshake and then
 * never reads: a stalled peer. */
struct raw_server {
    uv_tcp_t listener;
    uv_tcp_t conn;
    uv_write_t write_req;
    uint8_t hs[HANDSHAKE_SIZE];
    bool started;
    bool accepted;
};

struct fixture {
    uv_loop_t loop;
    uv_timer_t deadline;
    uv_timer_t tick;
    bool finished;
    bool timed_out;
    int step;
    uint32_t ticks; /* in the current step */
    void (*on_tick)(struct fixture *f);
    uint32_t side_count;
    struct side sides[SIDES_MAX];
    char addrs[SIDES_MAX][32];
    uint32_t next_seq[SIDES_MAX][SIDES_MAX]; /* [from][to] */
    struct raw_client raw[2];
    struct raw_server server;
    uint64_t sent_total;
    uint64_t counter;
};

static uint8_t message[MESSAGE_SIZE_MAX];

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void on_log(void *ctx, enum logline_level level, const char *line)
{
    (void)level;
    struct side *s = ctx;
    if (getenv("TRANSPORT_TEST_VERBOSE") != NULL)
        fprintf(stderr, "[replica %u] %s\n", s->self, line);
    if (s->log_count < LOGS_MAX)
        snprintf(s->logs[s->log_count], LOG_LINE_MAX, "%s", line);
    s->log_count++;
}

static uint32_t logs_containing(const struct side *s, const char *needle)
{
    uint32_t count = 0;
    uint32_t n = s->log_count < LOGS_MAX ? s->log_count : LOGS_MAX;
    for (uint32_t i = 0; i < n; i++)
        if (strstr(s->logs[i], needle) != NULL)
            count++;
    return count;
}

static void dump_logs(const struct fixture *f)
{
    for (uint32_t i = 0; i < f->side_count; i++) {
        const struct side *s = &f->sides[i];
        uint32_t n = s->log_count < LOGS_MAX ? s->log_count : LOGS_MAX;
        for (uint32_t j = 0; j < n; j++)
            fprintf(stderr, "  [replica %u] %s\n", i, s->logs[j]);
    }
}

/* Payload: u32 sequence number, u32 sender, then bytes derived from both,
 * so a frame cut or spliced at a chunk boundary is caught. */
static uint8_t filler(uint32_t seq, size_t i)
{
    return (uint8_t)(seq * 31u + (uint32_t)i);
}

static void on_message(void *ctx, uint32_t from, const uint8_t *data,
                       size_t size)
{
    struct side *s = ctx;
    if (size < 8 || from >= SIDES_MAX || get_u32(data + 4) != from) {
        s->corrupt++;
        return;
    }
    uint32_t seq = get_u32(data);
    for (size_t i = 8; i < size; i++)
        if (data[i] != filler(seq, i)) {
            s->corrupt++;
            return;
        }
    if ((int64_t)seq <= s->last_seq[from])
        s->out_of_order++;
    s->last_seq[from] = seq;
    s->received[from]++;
    if (s->close_on_message && s->t != NULL) {
        transport_close(s->t);
        s->t = NULL;
    }
}

static bool send_one(struct fixture *f, uint32_t from, uint32_t to, size_t size)
{
    assert_true(size >= 8);
    assert_true(size <= sizeof(message));
    uint32_t seq = f->next_seq[from][to]++;
    put_u32(message, seq);
    put_u32(message + 4, from);
    for (size_t i = 8; i < size; i++)
        message[i] = filler(seq, i);
    struct transport_peer_stats before, after;
    transport_stats(f->sides[from].t, to, &before);
    transport_send(f->sides[from].t, to, message, size);
    transport_stats(f->sides[from].t, to, &after);
    f->sent_total++;
    return after.messages_sent == before.messages_sent + 1;
}

static struct transport_peer_stats stats(struct fixture *f, uint32_t side,
                                         uint32_t peer)
{
    struct transport_peer_stats out;
    transport_stats(f->sides[side].t, peer, &out);
    return out;
}

static bool connected(struct fixture *f, uint32_t side, uint32_t peer)
{
    return f->sides[side].t != NULL && stats(f, side, peer).connected;
}

static bool all_connected(struct fixture *f)
{
    for (uint32_t i = 0; i < f->side_count; i++)
        for (uint32_t j = 0; j < f->side_count; j++)
            if (i != j && !connected(f, i, j))
                return false;
    return true;
}

static struct transport_config config_for(struct fixture *f, uint32_t self)
{
    struct transport_config c;
    memset(&c, 0, sizeof(c));
    c.cluster_id = CLUSTER_ID;
    c.self = self;
    c.replica_count = f->side_count;
    for (uint32_t i = 0; i < f->side_count; i++)
        c.peers[i] = f->addrs[i];
    c.frame_size_max = 64 * 1024;
    c.send_queue_bytes_max = 4 * 1024 * 1024;
    c.reconnect_min_ms = 5;
    c.reconnect_max_ms = 50;
    c.handshake_timeout_ms = 2000;
    c.on_message = on_message;
    c.on_log = on_log;
    c.ctx = &f->sides[self];
    return c;
}

static void side_open(struct fixture *f, uint32_t self,
                      const struct transport_config *config)
{
    struct side *s = &f->sides[self];
    struct cohort_err err;
    s->t = transport_open(&f->loop, config, &err);
    if (s->t == NULL)
        fail_msg("transport_open: %s", err.message);
}

static void side_close(struct fixture *f, uint32_t self)
{
    struct side *s = &f->sides[self];
    assert_non_null(s->t);
    transport_close(s->t);
    s->t = NULL;
}

static void side_reset(struct side *s)
{
    memset(s->received, 0, sizeof(s->received));
    for (uint32_t i = 0; i < SIDES_MAX; i++)
        s->last_seq[i] = -1;
    s->out_of_order = 0;
    s->corrupt = 0;
}

static struct fixture *fixture_new(uint32_t side_count)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->side_count = side_count;
    for (uint32_t i = 0; i < side_count; i++) {
        f->sides[i].f = f;
        f->sides[i].self = i;
        side_reset(&f->sides[i]);
        snprintf(f->addrs[i], sizeof(f->addrs[i]), "127.0.0.1:%u",
                 (unsigned)free_port());
    }
    return f;
}

static void raw_close(struct raw_client *r)
{
    if (r->started && !r->closed) {
        r->closed = true;
        uv_close((uv_handle_t *)&r->tcp, NULL);
    }
}

static void finish(struct fixture *f)
{
    if (f->finished)
        return;
    f->finished = true;
    for (uint32_t i = 0; i < f->side_count; i++)
        if (f->sides[i].t != NULL)
            side_close(f, i);
    for (size_t i = 0; i < 2; i++)
        raw_close(&f->raw[i]);
    if (f->server.started) {
        uv_close((uv_handle_t *)&f->server.listener, NULL);
        if (f->server.accepted)
            uv_close((uv_handle_t *)&f->server.conn, NULL);
    }
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_close((uv_handle_t *)&f->deadline, NULL);
}

static void next_step(struct fixture *f)
{
    f->step++;
    f->ticks = 0;
}

static void on_deadline(uv_timer_t *timer)
{
    struct fixture *f = timer->data;
    f->timed_out = true;
    fprintf(stderr, "deadline of %d ms hit in step %d; logs:\n", DEADLINE_MS,
            f->step);
    dump_logs(f);
    finish(f);
}

static void on_tick(uv_timer_t *timer)
{
    struct fixture *f = timer->data;
    if (f->finished)
        return;
    f->ticks++;
    f->on_tick(f);
}

/* Run the loop until the test calls finish() or the deadline passes; then
 * every handle must be closed and every transport freed. */
static void run(struct fixture *f, void (*tick)(struct fixture *f))
{
    f->on_tick = tick;
    assert_int_equal(uv_timer_init(&f->loop, &f->deadline), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->tick), 0);
    f->deadline.data = f;
    f->tick.data = f;
    uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
    uv_timer_start(&f->tick, on_tick, TICK_MS, TICK_MS);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_false(f->timed_out);
}

static void open_all(struct fixture *f)
{
    for (uint32_t i = 0; i < f->side_count; i++) {
        struct transport_config c = config_for(f, i);
        side_open(f, i, &c);
    }
}

static void handshake_make(uint8_t out[HANDSHAKE_SIZE], uint32_t magic,
                           uint64_t cluster, uint32_t id, uint32_t count)
{
    memset(out, 0, HANDSHAKE_SIZE);
    put_u32(out, magic);
    put_u32(out + 4, TRANSPORT_VERSION);
    put_u64(out + 8, cluster);
    put_u32(out + 16, id);
    put_u32(out + 20, count);
    put_u32(out + 24, PEER_AUTH_NONE);
    memset(out + 32, 0x5a, PEER_LINK_NONCE_SIZE);
}

/* ---- raw sockets -------------------------------------------------------- */

static void on_raw_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct raw_client *r = handle->data;
    (void)suggested;
    if (r->in_size == sizeof(r->in))
        r->in_size = 0; /* only the first bytes matter */
    *buf = uv_buf_init((char *)r->in + r->in_size,
                       (unsigned)(sizeof(r->in) - r->in_size));
}

static void on_raw_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct raw_client *r = stream->data;
    (void)buf;
    if (nread > 0)
        r->in_size += (size_t)nread;
    if (nread < 0) {
        r->eof = true;
        raw_close(r);
    }
}

static void on_raw_written(uv_write_t *req, int status)
{
    (void)req;
    (void)status;
}

static void on_raw_connected(uv_connect_t *req, int status)
{
    struct raw_client *r = req->data;
    if (status < 0 || r->closed) {
        raw_close(r);
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)r->data, (unsigned)r->size);
    assert_int_equal(uv_write(&r->write_req, (uv_stream_t *)&r->tcp, &buf, 1,
                              on_raw_written),
                     0);
    assert_int_equal(
        uv_read_start((uv_stream_t *)&r->tcp, on_raw_alloc, on_raw_read), 0);
}

static void raw_connect(struct fixture *f, struct raw_client *r, uint16_t port,
                        const void *data, size_t size)
{
    assert_true(size <= sizeof(r->data));
    memcpy(r->data, data, size);
    r->size = size;
    assert_int_equal(uv_tcp_init(&f->loop, &r->tcp), 0);
    r->started = true;
    r->tcp.data = r;
    r->connect_req.data = r;
    struct sockaddr_in sin;
    assert_int_equal(uv_ip4_addr("127.0.0.1", port, &sin), 0);
    assert_int_equal(uv_tcp_connect(&r->connect_req, &r->tcp,
                                    (const struct sockaddr *)&sin,
                                    on_raw_connected),
                     0);
}

static void on_server_connection(uv_stream_t *listener, int status)
{
    struct raw_server *s = listener->data;
    if (status < 0 || s->accepted)
        return;
    assert_int_equal(uv_tcp_init(listener->loop, &s->conn), 0);
    s->accepted = true;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&s->conn), 0);
    uv_buf_t buf = uv_buf_init((char *)s->hs, sizeof(s->hs));
    assert_int_equal(uv_write(&s->write_req, (uv_stream_t *)&s->conn, &buf, 1,
                              on_raw_written),
                     0);
    /* No uv_read_start: the peer never reads what it is sent. */
}

static void server_listen(struct fixture *f, struct raw_server *s,
                          uint16_t port)
{
    assert_int_equal(uv_tcp_init(&f->loop, &s->listener), 0);
    s->started = true;
    s->listener.data = s;
    struct sockaddr_in sin;
    assert_int_equal(uv_ip4_addr("127.0.0.1", port, &sin), 0);
    assert_int_equal(
        uv_tcp_bind(&s->listener, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(
        uv_listen((uv_stream_t *)&s->listener, 8, on_server_connection), 0);
}

static uint16_t port_of(struct fixture *f, uint32_t side)
{
    const char *colon = strrchr(f->addrs[side], ':');
    return (uint16_t)atoi(colon + 1);
}

/* ---- tests -------------------------------------------------------------- */

/* Each side learned the other's token from the handshake it was dialed
 * with; the two differ. */
static void check_tokens(struct fixture *f)
{
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t own[TRANSPORT_TOKEN_SIZE], learned[TRANSPORT_TOKEN_SIZE];
        transport_token(f->sides[1 - i].t, own);
        assert_true(transport_peer_token(f->sides[i].t, 1 - i, learned));
        assert_memory_equal(own, learned, TRANSPORT_TOKEN_SIZE);
        assert_false(transport_peer_token(f->sides[i].t, i, learned));
    }
    uint8_t a[TRANSPORT_TOKEN_SIZE], b[TRANSPORT_TOKEN_SIZE];
    transport_token(f->sides[0].t, a);
    transport_token(f->sides[1].t, b);
    assert_memory_not_equal(a, b, TRANSPORT_TOKEN_SIZE);
}

static void tick_both_ways(struct fixture *f)
{
    if (f->step == 0 && all_connected(f)) {
        for (uint32_t i = 0; i < 10; i++) {
            assert_true(send_one(f, 0, 1, 8 + i));
            assert_true(send_one(f, 1, 0, 100 + i));
        }
        next_step(f);
    } else if (f->step == 1 && f->sides[0].received[1] == 10 &&
               f->sides[1].received[0] == 10) {
        check_tokens(f);
        finish(f);
    }
}

static void two_transports_exchange_messages_both_ways(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    open_all(f);
    assert_int_equal(transport_port(f->sides[0].t), port_of(f, 0));
    run(f, tick_both_ways);
    for (uint32_t i = 0; i < 2; i++) {
        struct side *s = &f->sides[i];
        assert_int_equal(s->received[1 - i], 10);
        assert_int_equal(s->out_of_order, 0);
        assert_int_equal(s->corrupt, 0);
        assert_int_equal(logs_containing(s, "connected to replica"), 1);
    }
    free(f);
}

/* Side 0 starts with a wrong address for replica 1 (no one listens), then
 * learns the real one (a COHORT.ADDRESS move): it dials it at once and the
 * messages flow. */
static void tick_moved(struct fixture *f)
{
    struct side *s0 = &f->sides[0];
    if (f->step == 0 && f->ticks >= 50) {
        assert_false(connected(f, 0, 1));
        struct cohort_err err;
        assert_int_equal(transport_set_peer(s0->t, 0, f->addrs[1], &err),
                         -COHORT_EINVAL);
        assert_int_equal(transport_set_peer(s0->t, 1, "10.1.2.3:7101", &err),
                         -COHORT_ECONFIG);
        assert_non_null(strstr(err.message, "not a loopback address"));
        assert_int_equal(transport_set_peer(s0->t, 1, "127.0.0.1:0", &err),
                         -COHORT_ECONFIG);
        assert_int_equal(transport_set_peer(s0->t, 1, f->addrs[1], &err), 0);
        /* The same address again changes nothing. */
        assert_int_equal(transport_set_peer(s0->t, 1, f->addrs[1], &err), 0);
        next_step(f);
    } else if (f->step == 1 && all_connected(f)) {
        for (uint32_t i = 0; i < 10; i++)
            assert_true(send_one(f, 0, 1, 8 + i));
        next_step(f);
    } else if (f->step == 2 && f->sides[1].received[0] == 10) {
        finish(f);
    }
}

static void a_moved_peer_is_dialed_at_its_new_address(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    char wrong[32];
    snprintf(wrong, sizeof(wrong), "127.0.0.1:%u", (unsigned)free_port());
    struct transport_config c0 = config_for(f, 0);
    c0.peers[1] = wrong;
    side_open(f, 0, &c0);
    struct transport_config c1 = config_for(f, 1);
    side_open(f, 1, &c1);
    run(f, tick_moved);
    assert_int_equal(f->sides[1].received[0], 10);
    assert_int_equal(f->sides[1].corrupt, 0);
    assert_int_equal(logs_containing(&f->sides[0], "replica 1 moved"), 1);
    free(f);
}

/* Side 2 is a second process claiming to be replica 1 (an old copy of a
 * replica that moved) from another address: side 0, whose connection to
 * replica 1's address reached side 1, refuses it, and side 1's own
 * connection stays up and carries its messages. */
static void tick_impostor(struct fixture *f)
{
    if (f->step == 0 && connected(f, 0, 1) && connected(f, 1, 0) &&
        transport_refused_count(f->sides[0].t) >= 3) {
        for (uint32_t i = 0; i < 10; i++)
            assert_true(send_one(f, 1, 0, 8 + i));
        next_step(f);
    } else if (f->step == 1 && f->sides[0].received[1] == 10) {
        finish(f);
    }
}

static void another_process_claiming_a_peer_is_refused(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(3);
    struct transport_config c0 = config_for(f, 0);
    side_open(f, 0, &c0);
    struct transport_config c1 = config_for(f, 1);
    side_open(f, 1, &c1);
    /* The impostor: replica 1 by its HELLO, listening at side 2's address,
     * dialing side 0. */
    struct transport_config ci = config_for(f, 1);
    ci.peers[1] = f->addrs[2];
    ci.peers[2] = f->addrs[1];
    ci.ctx = &f->sides[2];
    side_open(f, 2, &ci);
    run(f, tick_impostor);
    assert_int_equal(f->sides[0].received[1], 10);
    assert_int_equal(f->sides[0].out_of_order, 0);
    assert_true(logs_containing(&f->sides[0], "is an old copy of it") >= 1);
    free(f);
}

#define MESH_MESSAGES 1000

static void tick_mesh(struct fixture *f)
{
    if (f->step == 0 && all_connected(f)) {
        /* Sizes vary up to 3000 bytes so frames straddle send chunks and
         * read buffers at every offset. */
        for (uint32_t n = 0; n < MESH_MESSAGES; n++)
            for (uint32_t from = 0; from < 3; from++)
                for (uint32_t to = 0; to < 3; to++)
                    if (from != to)
                        assert_true(
                            send_one(f, from, to, 8 + (n * 37u) % 3000));
        next_step(f);
        return;
    }
    if (f->step != 1)
        return;
    for (uint32_t i = 0; i < 3; i++)
        for (uint32_t j = 0; j < 3; j++)
            if (i != j && f->sides[i].received[j] < MESH_MESSAGES)
                return;
    finish(f);
}

static void three_transports_full_mesh_delivers_in_order_per_sender(void **s)
{
    (void)s;
    struct fixture *f = fixture_new(3);
    open_all(f);
    run(f, tick_mesh);
    for (uint32_t i = 0; i < 3; i++) {
        for (uint32_t j = 0; j < 3; j++)
            if (i != j)
                assert_int_equal(f->sides[i].received[j], MESH_MESSAGES);
        assert_int_equal(f->sides[i].out_of_order, 0);
        assert_int_equal(f->sides[i].corrupt, 0);
    }
    free(f);
}

static void tick_large(struct fixture *f)
{
    if (f->step == 0 && all_connected(f)) {
        for (uint32_t i = 0; i < 8; i++)
            assert_true(send_one(f, 0, 1, 100 * 1024 + i * 111 * 1024));
        next_step(f);
    } else if (f->step == 1 && f->sides[1].received[0] == 8) {
        finish(f);
    }
}

static void large_frames_cross_chunks_and_grow_the_read_buffer(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    for (uint32_t i = 0; i < 2; i++) {
        struct transport_config c = config_for(f, i);
        c.frame_size_max = MESSAGE_SIZE_MAX;
        c.send_queue_bytes_max = 16 * 1024 * 1024;
        side_open(f, i, &c);
    }
    run(f, tick_large);
    assert_int_equal(f->sides[1].received[0], 8);
    assert_int_equal(f->sides[1].corrupt, 0);
    assert_int_equal(f->sides[1].out_of_order, 0);
    free(f);
}

static void tick_close_inside(struct fixture *f)
{
    if (f->step == 0 && all_connected(f)) {
        /* Many frames in one write: more wait in the read buffer when the
         * first one closes the receiving transport. */
        for (uint32_t i = 0; i < 100; i++)
            assert_true(send_one(f, 0, 1, 64));
        next_step(f);
    } else if (f->step == 1 && f->sides[1].t == NULL) {
        finish(f);
    }
}

static void closing_inside_on_message_stops_delivery_safely(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    open_all(f);
    f->sides[1].close_on_message = true;
    run(f, tick_close_inside);
    assert_int_equal(f->sides[1].received[0], 1);
    free(f);
}

static void tick_restart(struct fixture *f)
{
    switch (f->step) {
    case 0:
        if (!all_connected(f))
            return;
        for (uint32_t i = 0; i < 5; i++) {
            assert_true(send_one(f, 0, 1, 16));
            assert_true(send_one(f, 1, 0, 16));
        }
        next_step(f);
        return;
    case 1:
        if (f->sides[0].received[1] < 5 || f->sides[1].received[0] < 5)
            return;
        side_close(f, 1);
        next_step(f);
        return;
    case 2:
        if (connected(f, 0, 1))
            return;
        side_reset(&f->sides[1]);
        struct transport_config c = config_for(f, 1);
        side_open(f, 1, &c);
        next_step(f);
        return;
    case 3:
        if (!all_connected(f))
            return;
        for (uint32_t i = 0; i < 5; i++) {
            assert_true(send_one(f, 0, 1, 16));
            assert_true(send_one(f, 1, 0, 16));
        }
        next_step(f);
        return;
    case 4:
        if (f->sides[0].received[1] == 10 && f->sides[1].received[0] == 5)
            finish(f);
        return;
    default:
        fail();
    }
}

static void messages_survive_a_peer_restart_after_reconnect(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    open_all(f);
    run(f, tick_restart);
    assert_int_equal(f->sides[0].received[1], 10);
    assert_int_equal(f->sides[1].received[0], 5);
    assert_int_equal(f->sides[0].out_of_order, 0);
    assert_int_equal(f->sides[1].out_of_order, 0);
    assert_int_equal(logs_containing(&f->sides[0], "lost connection to "
                                                   "replica 1"),
                     1);
    assert_true(logs_containing(&f->sides[0], "connected to replica 1") >= 2);
    free(f);
}

static void tick_wrong_cluster(struct fixture *f)
{
    if (connected(f, 0, 1) || connected(f, 1, 0))
        fail_msg("transports of different clusters connected");
    /* Sending is allowed and must be dropped, never delivered. */
    assert_false(send_one(f, 1, 0, 16));
    f->counter = transport_refused_count(f->sides[0].t);
    bool a =
        logs_containing(&f->sides[0],
                        "claims cluster 0x1234 but we are cluster "
                        "0x5678: is it from another cluster's config?") > 0;
    bool b = logs_containing(&f->sides[1], "claims cluster 0x5678 but we are "
                                           "cluster 0x1234") > 0;
    if (a && b && f->ticks > 20)
        finish(f);
}

static void wrong_cluster_id_is_refused_with_a_log_line(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    struct transport_config c0 = config_for(f, 0);
    struct transport_config c1 = config_for(f, 1);
    c1.cluster_id = 0x1234;
    side_open(f, 0, &c0);
    side_open(f, 1, &c1);
    run(f, tick_wrong_cluster);
    /* Both ends refuse: the acceptor names the dialer's ephemeral port, the
     * dialer names the address it dialed. */
    char want[64];
    snprintf(want, sizeof(want), "peer %s claims cluster 0x5678", f->addrs[0]);
    assert_true(logs_containing(&f->sides[1], want) >= 1);
    assert_true(logs_containing(&f->sides[0], "peer 127.0.0.1:") >= 1);
    assert_true(f->counter >= 1);
    assert_int_equal(f->sides[0].received[1], 0);
    assert_int_equal(f->sides[1].received[0], 0);
    free(f);
}

static void tick_garbage(struct fixture *f)
{
    switch (f->step) {
    case 0: {
        const char junk[] =
            "GET / HTTP/1.1\r\nHost: cohort.example\r\nAccept: */*\r\n\r\n";
        raw_connect(f, &f->raw[0], port_of(f, 0), junk, sizeof(junk) - 1);
        raw_connect(f, &f->raw[1], port_of(f, 0), "\x43\x4f", 2);
        next_step(f);
        return;
    }
    case 1:
        if (!f->raw[0].eof || !f->raw[1].eof || !all_connected(f))
            return;
        f->counter = transport_refused_count(f->sides[0].t);
        assert_true(send_one(f, 0, 1, 64));
        assert_true(send_one(f, 1, 0, 64));
        next_step(f);
        return;
    case 2:
        if (f->sides[0].received[1] == 1 && f->sides[1].received[0] == 1)
            finish(f);
        return;
    default:
        fail();
    }
}

static void
garbage_on_the_peer_port_is_refused_and_transport_keeps_working(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    for (uint32_t i = 0; i < 2; i++) {
        struct transport_config c = config_for(f, i);
        c.handshake_timeout_ms = 200; /* for the client that goes silent */
        side_open(f, i, &c);
    }
    run(f, tick_garbage);
    struct side *s = &f->sides[0];
    assert_int_equal(f->counter, 2);
    assert_int_equal(logs_containing(s, "did not send a cohort peer "
                                        "handshake"),
                     1);
    assert_int_equal(logs_containing(s, "no handshake within 200 ms"), 1);
    /* Both raw clients got our HELLO first, and nothing more (no AUTH for
     * a peer whose HELLO never passed), then were closed. */
    assert_int_equal(f->raw[0].in_size, PEER_LINK_HELLO_SIZE);
    assert_int_equal(get_u32(f->raw[0].in), TRANSPORT_MAGIC);
    assert_int_equal(get_u32(f->raw[0].in + 4), TRANSPORT_VERSION);
    assert_int_equal(s->received[1], 1);
    assert_int_equal(f->sides[1].received[0], 1);
    free(f);
}

static void tick_oversized(struct fixture *f)
{
    switch (f->step) {
    case 0:
        if (!all_connected(f))
            return;
        assert_true(send_one(f, 0, 1, 2000)); /* over replica 1's limit */
        next_step(f);
        return;
    case 1:
        if (stats(f, 1, 0).frames_rejected == 0)
            return;
        next_step(f);
        return;
    case 2:
        /* Replica 0 notices, redials, and small frames flow again. */
        if (stats(f, 0, 1).connects < 2 || !connected(f, 0, 1))
            return;
        assert_true(send_one(f, 0, 1, 100));
        next_step(f);
        return;
    case 3:
        if (f->sides[1].received[0] == 1)
            finish(f);
        return;
    default:
        fail();
    }
}

static void oversized_frame_closes_the_connection(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    struct transport_config c0 = config_for(f, 0);
    struct transport_config c1 = config_for(f, 1);
    c0.frame_size_max = 4096;
    c1.frame_size_max = 1024;
    side_open(f, 0, &c0);
    side_open(f, 1, &c1);
    run(f, tick_oversized);
    assert_int_equal(f->sides[1].received[0], 1); /* only the small one */
    assert_int_equal(f->sides[1].corrupt, 0);
    assert_int_equal(logs_containing(&f->sides[1],
                                     "sent a frame of 2000 bytes; our limit "
                                     "is 1024 (the largest peer message, "
                                     "which follows --max-value-size"),
                     1);
    assert_int_equal(logs_containing(&f->sides[0], "lost connection to "
                                                   "replica 1"),
                     1);
    free(f);
}

static size_t frame_make(uint8_t *out, const uint8_t *payload, size_t size,
                         bool good_crc)
{
    uint32_t crc = crc32c(0, payload, size);
    put_u32(out, (uint32_t)size);
    put_u32(out + 4, good_crc ? crc : crc ^ 1u);
    memcpy(out + 8, payload, size);
    return 8 + size;
}

static void tick_bad_crc(struct fixture *f)
{
    if (f->step == 0) {
        /* Play replica 0: a valid handshake, one good frame, one whose CRC
         * is off by one bit. */
        uint8_t bytes[HANDSHAKE_SIZE + 2 * (8 + 16)];
        uint8_t payload[16];
        handshake_make(bytes, TRANSPORT_MAGIC, CLUSTER_ID, 0, 2);
        size_t n = HANDSHAKE_SIZE;
        for (uint32_t seq = 0; seq < 2; seq++) {
            put_u32(payload, seq);
            put_u32(payload + 4, 0);
            for (size_t i = 8; i < sizeof(payload); i++)
                payload[i] = filler(seq, i);
            n += frame_make(bytes + n, payload, sizeof(payload), seq == 0);
        }
        raw_connect(f, &f->raw[0], port_of(f, 1), bytes, n);
        next_step(f);
    } else if (f->step == 1 && f->raw[0].eof) {
        f->counter = stats(f, 1, 0).frames_rejected;
        finish(f);
    }
}

static void bad_crc_frame_closes_the_connection_and_is_counted(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    /* Only replica 1 runs; the raw client plays replica 0. */
    struct transport_config c = config_for(f, 1);
    side_open(f, 1, &c);
    run(f, tick_bad_crc);
    assert_int_equal(f->counter, 1);
    assert_int_equal(f->sides[1].received[0], 1); /* the good frame only */
    assert_int_equal(f->sides[1].corrupt, 0);
    assert_int_equal(logs_containing(&f->sides[1], "whose header says CRC-32C"),
                     1);
    free(f);
}

static void tick_unreachable(struct fixture *f)
{
    struct transport_peer_stats st = stats(f, 0, 1);
    assert_false(st.connected);
    assert_int_equal(st.bytes_queued, 0);
    for (uint32_t i = 0; i < 100; i++)
        assert_false(send_one(f, 0, 1, 1000));
    if (f->ticks < 100)
        return;
    st = stats(f, 0, 1);
    f->counter = st.messages_dropped;
    assert_int_equal(st.messages_sent, 0);
    assert_int_equal(st.connects, 0);
    finish(f);
}

static void full_send_queue_drops_and_counts_instead_of_growing(void **state)
{
    (void)state;
    /* Replica 1 is not listening: everything for it is dropped and counted,
     * nothing is queued, and the failing redials are logged once. */
    struct fixture *f = fixture_new(2);
    struct transport_config c = config_for(f, 0);
    side_open(f, 0, &c);
    run(f, tick_unreachable);
    assert_int_equal(f->counter, 100 * 100);
    assert_int_equal(logs_containing(&f->sides[0], "cannot reach replica 1"),
                     1);
    free(f);
}

#define STALL_QUEUE_MAX (256 * 1024)
#define STALL_MESSAGE_SIZE (32 * 1024)
#define STALL_SENDS_MAX 20000

static void tick_stalled(struct fixture *f)
{
    if (!connected(f, 0, 1))
        return;
    for (uint32_t i = 0; i < 64 && f->sent_total < STALL_SENDS_MAX; i++) {
        send_one(f, 0, 1, STALL_MESSAGE_SIZE);
        struct transport_peer_stats st = stats(f, 0, 1);
        assert_true(st.bytes_queued <= STALL_QUEUE_MAX);
        assert_int_equal(st.messages_sent + st.messages_dropped, f->sent_total);
        f->counter = st.bytes_queued;
        if (st.messages_dropped >= 100) {
            finish(f);
            return;
        }
    }
}

static void
stalled_peer_fills_the_send_queue_to_its_limit_then_drops(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    handshake_make(f->server.hs, TRANSPORT_MAGIC, CLUSTER_ID, 1, 2);
    server_listen(f, &f->server, port_of(f, 1));
    struct transport_config c = config_for(f, 0);
    c.send_queue_bytes_max = STALL_QUEUE_MAX;
    side_open(f, 0, &c);
    run(f, tick_stalled);
    /* The queue was nearly full when the drops began. */
    assert_true(f->counter + 8 + STALL_MESSAGE_SIZE > STALL_QUEUE_MAX);
    assert_true(f->sent_total < STALL_SENDS_MAX);
    free(f);
}

static void port_in_use_is_a_clear_error(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    struct transport_config c0 = config_for(f, 0);
    side_open(f, 0, &c0);
    /* Replica 1 is configured on the port replica 0 holds. */
    struct transport_config c1 = config_for(f, 1);
    c1.peers[1] = f->addrs[0];
    struct cohort_err err;
    struct transport *t = transport_open(&f->loop, &c1, &err);
    assert_null(t);
    assert_int_equal(err.code, -COHORT_EADDRINUSE);
    char want[128];
    snprintf(want, sizeof(want), "listen %s: address in use", f->addrs[0]);
    if (strstr(err.message, want) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, want);
    side_close(f, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

static void port_zero_listens_on_a_port_the_kernel_picks(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    snprintf(f->addrs[0], sizeof(f->addrs[0]), "127.0.0.1:0");
    struct transport_config c = config_for(f, 0);
    side_open(f, 0, &c);
    uint16_t port = transport_port(f->sides[0].t);
    assert_true(port != 0);
    /* Something listens there: a second bind fails. */
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
    c.peers[0] = addr;
    struct cohort_err err;
    assert_null(transport_open(&f->loop, &c, &err));
    assert_int_equal(err.code, -COHORT_EADDRINUSE);
    side_close(f, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

static void bad_addresses_are_clear_errors(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    struct {
        const char *addr;
        const char *message;
    } cases[] = {
        {"127.0.0.1", "has no port"},
        {"127.0.0.1:70000", "is not a number in 0..65535"},
        {":7101", "has no host"},
        {"::1:7101", "[addr]:port"},
        {"127.0.0.1:0", "has port 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct transport_config c = config_for(f, 0);
        c.peers[1] = cases[i].addr;
        struct cohort_err err;
        assert_null(transport_open(&f->loop, &c, &err));
        assert_int_equal(err.code, -COHORT_ECONFIG);
        if (strstr(err.message, cases[i].message) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].addr,
                     err.message, cases[i].message);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

#define THROUGHPUT_MESSAGES 100000
#define THROUGHPUT_QUEUED_MAX (512 * 1024)

static void tick_throughput(struct fixture *f)
{
    if (!all_connected(f))
        return;
    /* Keep the queue topped up without overfilling it. */
    for (uint32_t i = 0; i < 20000 && f->sent_total < THROUGHPUT_MESSAGES;
         i++) {
        if (stats(f, 0, 1).bytes_queued > THROUGHPUT_QUEUED_MAX)
            break;
        assert_true(send_one(f, 0, 1, 16));
    }
    f->counter = stats(f, 0, 1).writes;
    if (f->sides[1].received[0] == THROUGHPUT_MESSAGES)
        finish(f);
}

static void hundred_thousand_small_messages_arrive_in_order(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2);
    open_all(f);
    uint64_t start = uv_hrtime();
    run(f, tick_throughput);
    double seconds = (double)(uv_hrtime() - start) / 1e9;
    /* Frames queued in one turn of the loop leave in one write. */
    assert_true(f->counter * 100 <= THROUGHPUT_MESSAGES);
    assert_int_equal(f->sides[1].received[0], THROUGHPUT_MESSAGES);
    assert_int_equal(f->sides[1].out_of_order, 0);
    assert_int_equal(f->sides[1].corrupt, 0);
    print_message("    %d messages in %" PRIu64 " writes, %.3f s with "
                  "connection setup (informational)\n",
                  THROUGHPUT_MESSAGES, f->counter, seconds);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_transports_exchange_messages_both_ways),
        cmocka_unit_test(a_moved_peer_is_dialed_at_its_new_address),
        cmocka_unit_test(another_process_claiming_a_peer_is_refused),
        cmocka_unit_test(
            three_transports_full_mesh_delivers_in_order_per_sender),
        cmocka_unit_test(large_frames_cross_chunks_and_grow_the_read_buffer),
        cmocka_unit_test(closing_inside_on_message_stops_delivery_safely),
        cmocka_unit_test(messages_survive_a_peer_restart_after_reconnect),
        cmocka_unit_test(wrong_cluster_id_is_refused_with_a_log_line),
        cmocka_unit_test(
            garbage_on_the_peer_port_is_refused_and_transport_keeps_working),
        cmocka_unit_test(oversized_frame_closes_the_connection),
        cmocka_unit_test(bad_crc_frame_closes_the_connection_and_is_counted),
        cmocka_unit_test(full_send_queue_drops_and_counts_instead_of_growing),
        cmocka_unit_test(
            stalled_peer_fills_the_send_queue_to_its_limit_then_drops),
        cmocka_unit_test(port_in_use_is_a_clear_error),
        cmocka_unit_test(port_zero_listens_on_a_port_the_kernel_picks),
        cmocka_unit_test(bad_addresses_are_clear_errors),
        cmocka_unit_test(hundred_thousand_small_messages_arrive_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
