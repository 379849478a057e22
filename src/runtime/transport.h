/* transport — replica-to-replica messaging over TCP on a libuv loop.
 *
 * Each replica listens on its peer address and dials every other replica.
 * Messages go out on the connection we dialed and come in on connections
 * peers dialed to us, so each direction has one owner and no tie-breaking is
 * needed. Every connection starts with the handshake of runtime/peer_link
 * (peer protocol version 3: HELLO with magic, version, cluster id, replica
 * id, replica count and auth mode; then TLS or the cluster secret's
 * challenge-response; then AUTH); a peer that fails it is refused with one
 * clear log line and the connection closed. How peers authenticate is
 * runtime/peer_auth: a cluster secret (an HMAC-SHA-256 tag on every frame),
 * mutual TLS, or neither, in which case every peer address must be a
 * loopback one and connections from elsewhere are refused.
 *
 * Tokens: each process draws 16 random bytes at start and sends them in
 * the AUTH of the connections it dials (to the peers' configured
 * addresses; accepted connections are answered with zeros). A replica can
 * therefore prove to a peer that it is replica i by quoting its token on
 * another channel: the RESP server uses this to recognize a backup's
 * forward link (server/forward.c). The token is learned only from a peer
 * that passed the handshake, so only as secret as the peer network's
 * traffic (in clear with a cluster secret, encrypted with TLS). Then
 * frames, one encoded protocol message each (at most frame_size_max bytes),
 * sealed as peer_link.h says.
 *
 * Sending never blocks and never grows memory without bound: each peer has a
 * bounded send queue (send_queue_bytes_max); a message that does not fit is
 * dropped and counted (the protocol tolerates loss). A broken connection is
 * redialed with exponential backoff (reconnect_min_ms .. reconnect_max_ms).
 * A bad frame (length over the limit, CRC or MAC mismatch) closes that
 * connection.
 *
 * States per outbound peer: IDLE -> CONNECTING -> HANDSHAKING -> READY,
 * back to IDLE (with a backoff timer) on any error.
 */
#ifndef COHORT_TRANSPORT_H
#define COHORT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "runtime/logline.h"
#include "runtime/peer_auth.h"
#include "runtime/peer_link.h"

#include "cohort.h"
#include "common/err.h"

/* The largest frame_size_max: a peer's frame is read into one buffer. */
#define TRANSPORT_FRAME_SIZE_LIMIT (1u << 30)

#define TRANSPORT_MAGIC PEER_LINK_MAGIC
#define TRANSPORT_VERSION PEER_LINK_VERSION
#define TRANSPORT_TOKEN_SIZE PEER_AUTH_TOKEN_SIZE

struct transport_config {
    uint64_t cluster_id;
    /* The group incarnation this replica's data belongs to (kv/
     * incarnation.h), 0 while not known: its tag goes in every HELLO, and
     * a peer that announces another is refused (peer_link.h). */
    uint64_t incarnation;
    uint32_t self;
    uint32_t replica_count;
    /* Peer addresses "host:port", index = replica id; peers[self] is the
     * address we listen on (bind_host overrides its host part if set). */
    const char *peers[COHORT_REPLICAS_MAX];
    const char *bind_host; /* NULL: the host in peers[self] */
    /* How peers authenticate (peer_auth.h): a cluster secret file, or the
     * three TLS files; none of them: every address in peers must be a
     * loopback one. Borrowed during transport_open() only. */
    const char *secret_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_ca_file;
    uint32_t frame_size_max; /* 1..TRANSPORT_FRAME_SIZE_LIMIT */
    /* Per peer; at least one largest frame and its header. */
    uint64_t send_queue_bytes_max;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    /* How long a connection may take to connect and complete its handshake
     * before it is dropped (a silent or garbage-speaking peer); 0: 5000. */
    uint32_t handshake_timeout_ms;
    /* How long bytes sent on a connection may stay unacknowledged by the
     * peer's TCP before the connection is dropped and dialled again
     * (TCP_USER_TIMEOUT); a connect() not done in half of it is tried
     * again; 0: 1000. Without it a connection that lost packets for
     * a while (a partition) sits in TCP's retransmission back-off after
     * the network heals, for as long as the partition lasted, and the
     * peers cannot talk although the path works. */
    uint32_t stall_timeout_ms;
    /* Called for every valid frame received, on the loop thread. The bytes
     * are valid only during the call. */
    void (*on_message)(void *ctx, uint32_t from, const uint8_t *data,
                       size_t size);
    /* Optional: a connection attempt to peer was refused, so no process
     * listens at its address: it has crashed or not started yet. A hint
     * that lets the failure detector act at once (a killed primary is
     * suspected within one reconnect delay instead of a timeout). May call
     * back into the transport. */
    void (*on_peer_down)(void *ctx, uint32_t peer);
    /* Optional: one line for the log (how peers authenticate, at open;
     * refused peers, reconnects) and its level. It must not call back into
     * the transport. */
    void (*on_log)(void *ctx, enum logline_level level, const char *line);
    void *ctx;
};

struct transport_peer_stats {
    bool connected; /* outbound connection READY */
    uint64_t messages_sent;
    uint64_t messages_dropped; /* queue full or not connected */
    uint64_t messages_received;
    uint64_t bytes_queued;
    uint64_t connects;
    uint64_t frames_rejected; /* bad length, CRC, MAC or TLS record */
    uint64_t writes; /* uv_write calls; sent / writes is the batching */
};

struct transport; /* opaque */

/* Create and start listening; the first dials run on the next turn of the
 * loop. The config is copied and its strings are borrowed only during the
 * call: peer addresses are resolved here, once (a host name synchronously,
 * with getaddrinfo). On failure (bad address or config, port in use) returns
 * NULL, having touched nothing on the loop, and fills err with a one-line
 * message naming the address and the fix (e.g. "listen 127.0.0.1:7101:
 * address in use; is another cohort server running? pick another port
 * in --peers"); config errors are -COHORT_ECONFIG, among them a cluster
 * secret or certificates that do not load, and a non-loopback peer address
 * without authentication. */
struct transport *transport_open(uv_loop_t *loop,
                                 const struct transport_config *config,
                                 struct cohort_err *err);
/* Queue a copy of data for replica `to`. Never blocks; drops when full.
 * Preconditions: to < replica_count, to != self, size <= frame_size_max.
 * Frames queued in one turn of the loop leave in one write (the flush runs
 * in a uv_prepare_t just before the loop polls). A message is counted in
 * messages_sent when it is queued on a READY connection; frames still queued
 * when that connection breaks are lost like any message on the wire. */
void transport_send(struct transport *t, uint32_t to, const uint8_t *data,
                    size_t size);
/* Whether addr ("host:port", resolved now) may be replica `peer`'s (not
 * self) peer address: a real port, at most the length an address may
 * have, loopback without authentication. 0 with *out the address, or the
 * error (-COHORT_EINVAL for a bad id, else -COHORT_ECONFIG). */
int transport_check_peer_addr(const struct transport *t, uint32_t peer,
                              const char *addr, struct sockaddr_storage *out,
                              struct cohort_err *err);
/* Move replica `peer` (not self) to the peer address addr ("host:port",
 * resolved now, synchronously): the connection we dialed to its old address
 * is closed, the connections it dialed to us are closed, and the new
 * address is dialed on the next turn. The same checks as transport_open()
 * (a real port; loopback only without authentication): on failure nothing
 * changes and err says why. */
int transport_set_peer(struct transport *t, uint32_t peer, const char *addr,
                       struct cohort_err *err);
void transport_stats(const struct transport *t, uint32_t peer,
                     struct transport_peer_stats *out);
/* The port we listen on: the configured one, or the one the kernel picked
 * when peers[self] asks for port 0. */
/* This replica learned its group's incarnation (or it changed): later
 * handshakes announce it, and every connection whose peer announced
 * another (nonzero) one is closed with a warning. */
void transport_set_incarnation(struct transport *t, uint64_t incarnation);
uint64_t transport_incarnation(const struct transport *t);
/* How many peers completed a handshake with us now (on either of the two
 * connections of the pair), and the first of them that announced an
 * incarnation (*announcer UINT32_MAX if none) with its tag. */
uint32_t transport_peers_heard(const struct transport *t, uint32_t *announcer,
                               uint32_t *tag);
uint16_t transport_port(const struct transport *t);
/* Inbound connections refused before a valid handshake: wrong magic,
 * version, cluster, replica count, id or auth mode, a failed proof or
 * certificate, no handshake in time, a non-loopback address without
 * authentication, too many connections. Each refusal also logs one line. */
uint64_t transport_refused_count(const struct transport *t);
/* Of those, connections still in their handshake that were closed to make
 * room for a newer one (too many from one host, or in all). */
uint64_t transport_evicted_count(const struct transport *t);
/* How peers authenticate. */
enum peer_auth_mode transport_auth_mode(const struct transport *t);
/* Our token, as sent to every peer we dial. */
void transport_token(const struct transport *t,
                     uint8_t out[TRANSPORT_TOKEN_SIZE]);
/* The token peer sent in its last valid handshake to us; false if none
 * yet (it has not dialed us, and passed the handshake, since we
 * started). */
bool transport_peer_token(const struct transport *t, uint32_t peer,
                          uint8_t out[TRANSPORT_TOKEN_SIZE]);
/* Close all handles; the loop must run until they are closed, after which
 * the transport frees itself. May be called from inside on_message; t must
 * not be used after the call. */
void transport_close(struct transport *t);

#endif
