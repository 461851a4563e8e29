/*
 * The packet loop. One queue = one TUN fd + one UDP socket + two threads:
 *
 *   outbound thread: TUN read (until EAGAIN, up to a batch) -> parse -> route lookup
 *                    -> sendmmsg to the owning peer | ICMP net-unreachable back into the TUN
 *   inbound thread:  recvmmsg (a batch) -> known peer? -> size -> parse -> inner source in that
 *                    peer's subnet? -> write to the TUN
 *
 * TypeScript programs the tables with a closed set of commands (see commands below) applied
 * under a writer-preferring rwlock; the packet threads take the read side once per batch.
 */
#ifndef TULLE_DATAPLANE_H
#define TULLE_DATAPLANE_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <netinet/in.h>
#include <net/if.h>
#include "counters.h"
#include "route-table.h"
#include "offload.h"

struct wg_state;

#define DP_MAX_QUEUES 16
#define DP_MAX_PEERS (1u << 20)
#define DP_BATCH 64
#define DP_HEADROOM 64      /* room in front of every packet for encapsulation headers */
#define DP_BUF_SIZE 65600   /* headroom + the largest IP packet, with slack */
#define DP_TAILROOM 48      /* room after every packet for padding and an AEAD tag */

/*
 * Per-peer counters: each queue counts, for every peer id, the datagrams it sent to the peer and
 * accepted from it (plain: passed the checks; encrypted: authenticated data or keepalive) with
 * their UDP payload bytes -- `wg show`'s transfer -- and the drops it can pin on that peer, by
 * reason (names as the global counters of counters.h, whose totals also count them):
 *   inbound, by the datagram's outer source (the peer at that address; one of them when several
 *   share it): plain mode's spoofed/malformed/oversized/bad-checksum, encrypted mode's
 *   plaintext, malformed, oversized, unknown index and bad mac1 before a session is found;
 *   by the session's peer: expired, decrypt, replay, and after authentication malformed,
 *   oversized, bad checksum, cryptokey routing;
 *   outbound, by the routed peer: send errors (also the control path's sends to it) and a full
 *   staging queue (no session yet).
 * Drops that name no peer (unknown sender, no route, unparseable outbound packet...) are only in
 * the global counters. Encrypted mode counts transport messages (data and keepalives; staged
 * packets and keepalives sent by the control path count in queue 0), not handshake messages.
 *
 * Memory: blocks of DP_PC_BLOCK_PEERS ids, each [queue][id % DP_PC_BLOCK_PEERS][PC_*] u64,
 * allocated when a peer in the block is first set (dp_apply, under the write lock) and published
 * with a release store, so the peer table can grow to DP_MAX_PEERS under running threads; a
 * block is never moved or freed while the data plane or a reader (TypeScript maps each block
 * once) holds it; its pages cost memory only once counted in (mmap). Relaxed atomic adds. Zeroed
 * when a peer is deleted, so a reused id starts from zero (a batch routed before the delete and
 * sent just then may still add to it).
 */
#define DP_PEER_COUNTERS(X)                                                                   \
  X(TX_PACKETS, "tx_packets")                                                                 \
  X(TX_BYTES, "tx_bytes")                                                                     \
  X(RX_PACKETS, "rx_packets")                                                                 \
  X(RX_BYTES, "rx_bytes")                                                                     \
  X(IN_DROP_SPOOFED_SOURCE, "inbound_drop_spoofed_source")                                    \
  X(IN_DROP_MALFORMED, "inbound_drop_malformed")                                              \
  X(IN_DROP_OVERSIZED, "inbound_drop_oversized")                                              \
  X(IN_DROP_IP_HEADER_CHECKSUM, "inbound_drop_ip_header_checksum")                            \
  X(IN_DROP_PLAINTEXT, "inbound_drop_plaintext")                                              \
  X(IN_DROP_UNKNOWN_INDEX, "inbound_drop_unknown_index")                                      \
  X(IN_DROP_HANDSHAKE_MAC1, "inbound_drop_handshake_mac1")                                    \
  X(IN_DROP_EXPIRED_SESSION, "inbound_drop_expired_session")                                  \
  X(IN_DROP_DECRYPT, "inbound_drop_decrypt")                                                  \
  X(IN_DROP_REPLAY, "inbound_drop_replay")                                                    \
  X(IN_DROP_CRYPTOKEY_ROUTING, "inbound_drop_cryptokey_routing")                              \
  X(OUT_DROP_SEND_ERROR, "outbound_drop_send_error")                                          \
  X(OUT_DROP_STAGE_FULL, "outbound_drop_stage_full")

enum peer_counter {
#define X(id, name) PC_##id,
  DP_PEER_COUNTERS(X)
#undef X
  PC_COUNT
};

#define DP_PC_BLOCK_PEERS 4096u
#define DP_PC_BLOCKS (DP_MAX_PEERS / DP_PC_BLOCK_PEERS)

struct dp_peer_counters {
  int queues;
  uint64_t *block[DP_PC_BLOCKS]; /* queues x DP_PC_BLOCK_PEERS x PC_COUNT each, or NULL; __atomic access */
};

/* NULL when out of memory. */
struct dp_peer_counters *dp_pc_new(int queues);
void dp_pc_free(struct dp_peer_counters *pcs);
/* Makes the block of id exist (the writer: dp_apply, under the write lock). -1: no memory (or id
 * out of range): the peer then forwards, counted only globally. */
int dp_pc_reserve(struct dp_peer_counters *pcs, uint32_t id);
size_t dp_pc_block_bytes(const struct dp_peer_counters *pcs);

/* The counters of peer id in queue, or NULL: every bound is checked here, where the id meets the
 * memory (id from a route, a session or a command; queue from the loop). */
static inline uint64_t *peer_slot(const struct dp_peer_counters *pcs, int queue, uint32_t id) {
  if (!pcs || id >= DP_MAX_PEERS || queue < 0 || queue >= pcs->queues) return NULL;
  uint64_t *b = __atomic_load_n(&pcs->block[id / DP_PC_BLOCK_PEERS], __ATOMIC_ACQUIRE);
  return b ? b + ((size_t)queue * DP_PC_BLOCK_PEERS + id % DP_PC_BLOCK_PEERS) * PC_COUNT : NULL;
}

/* Adds to a peer's traffic (dir = PC_TX_PACKETS or PC_RX_PACKETS). Atomic adds (one per run of a
 * peer's packets, not per packet: see peer_acc in loop.h), so the control path's sends (staged
 * packets, keepalives) can count into queue 0's TX beside its outbound thread. */
static inline void peer_count(const struct dp_peer_counters *pcs, int queue, uint32_t id, int dir, uint64_t packets,
                              uint64_t bytes) {
  uint64_t *p = packets ? peer_slot(pcs, queue, id) : NULL;
  if (!p) return;
  __atomic_fetch_add(&p[dir], packets, __ATOMIC_RELAXED);
  __atomic_fetch_add(&p[dir + 1], bytes, __ATOMIC_RELAXED);
}

/* Adds n drops of one reason (a PC_*_DROP_* slot) to a peer. */
static inline void peer_drop(const struct dp_peer_counters *pcs, int queue, uint32_t id, int reason, uint64_t n) {
  uint64_t *p = n && reason >= PC_IN_DROP_SPOOFED_SOURCE && reason < PC_COUNT ? peer_slot(pcs, queue, id) : NULL;
  if (p) __atomic_fetch_add(&p[reason], n, __ATOMIC_RELAXED);
}

/* Commands: [op u8][reserved u8][size u16 LE][payload], size counts the whole record. */
enum dp_op {
  DP_OP_SET_PEER = 1,  /* peer u32, family u8, rsv u8, port u16, addr[16] */
  DP_OP_DEL_PEER = 2,  /* peer u32 */
  DP_OP_SET_ROUTE = 3, /* peer u32, family u8, len u8, rsv u16, addr[16] */
  DP_OP_DEL_ROUTE = 4, /* rsv u32, family u8, len u8, rsv u16, addr[16] */
  /* encrypted mode only (wg.h): */
  DP_OP_INSTALL_SESSION = 5, /* peer u32, local u32, remote u32, role u8, rsv[3], send[32], recv[32] */
  DP_OP_RETIRE_SESSION = 6,  /* local index u32 */
  DP_OP_SEND_KEEPALIVE = 7,  /* peer u32 */
  DP_OP_CLEAR_STAGED = 8,    /* peer u32 */
};

struct dp_options {
  char tun_name[IFNAMSIZ];
  char netns[256];            /* path of a netns to create the fds in, or "" */
  struct sockaddr_storage bind;
  socklen_t bind_len;
  /* Mode "separate" (flanneld's two WireGuard devices): a second set of queues whose sockets are
   * IPv6-only, bound here; `bind` must then be IPv4 and its sockets carry IPv4 only. bind6_len 0:
   * one set of queues, one socket family. */
  struct sockaddr_storage bind6;
  socklen_t bind6_len;
  int mtu;                    /* TUN MTU: larger inbound packets are dropped as oversized */
  int queues;
  struct dp_offload offload;  /* requested; see offload.h */
  int encrypted;                    /* WireGuard transport (wg.h) instead of plain UDP */
  uint64_t rekey_after_ms, reject_after_ms; /* session ages (spec: 120 s, 180 s) */
  int has_public_key;               /* encrypted mode: our static public key, for mac1 checks */
  uint8_t public_key[32];
  void (*notify)(void *ctx);        /* encrypted mode: events are waiting (any thread) */
  void *notify_ctx;
  struct dp_peer_counters *peer_counters; /* for opt.queues queues, owned by the caller; NULL: none */
};

struct dp_peer {
  int in_use;
  int family;     /* of addr: 4 or 6 */
  uint8_t addr[16];
  uint16_t port;
  struct sockaddr_storage ep; /* in the socket's family */
  socklen_t ep_len;
};

struct dp_buffers; /* per-thread scratch, allocated once */

struct dp_queue {
  struct dataplane *dp;
  int index;
  int tun_fd, udp_fd;
  int reply_fd; /* the inbound thread's own TUN queue (offload.h, reply_queue), or -1 */
  pthread_t out_thread, in_thread;
  int out_started, in_started;
  uint64_t *counters; /* TULLE_COUNTER_SLOTS entries */
  struct dp_peer_counters *pcs; /* per-peer counters (this queue's: index), or NULL */
  struct offload_queue *oq; /* offload.h; NULL without offloads */
};

struct dataplane {
  struct dp_options opt;
  char tun_name[IFNAMSIZ];
  int sock_family; /* of the first queues' sockets: AF_INET or AF_INET6 */
  uint16_t bound_port;
  /* split (Mode "separate"): queues [0, split) have IPv4 sockets on bound_port, queues
   * [split, 2 split) IPv6-only sockets on bound_port6; each set is its own SO_REUSEPORT group, and
   * every queue's TUN fd is one queue of the same multi-queue TUN. 0: not split. */
  int split;
  uint16_t bound_port6;
  pthread_rwlock_t lock;
  struct route_table routes;
  struct route_table peer_addrs; /* outer address -> number of peers using it */
  struct route_table addr_owner; /* outer address -> one peer using it (drops are pinned on it) */
  struct dp_peer *peers;
  uint32_t peers_cap;
  int stop_fd;
  atomic_int stopping;
  int n_queues;
  struct dp_offload_state offload; /* what the kernel accepted, fixed after start */
  struct dp_queue q[DP_MAX_QUEUES];
  uint64_t *counters; /* n_queues * TULLE_COUNTER_SLOTS */
  struct wg_state *wg; /* encrypted mode, else NULL */
  /* start-up: each packet thread reports whether it got its buffers (dp_thread_started);
   * dp_start returns only once all have, and fails if one did not */
  pthread_mutex_t start_lock;
  pthread_cond_t start_cond;
  int threads_reported, threads_failed;
  char failed_thread[16];
};

/* The socket a datagram to an address of family ss_family leaves from, for queue q: its own, or
 * in split mode the socket of that family in q's position of the family's set (a peer's session
 * and its socket stay one tunnel: the IPv6 set only ever sends to IPv6 endpoints). */
static inline int dp_send_fd(const struct dp_queue *q, int ss_family) {
  const struct dataplane *dp = q->dp;
  if (!dp->split) return q->udp_fd;
  int k = q->index % dp->split;
  return dp->q[ss_family == AF_INET6 ? dp->split + k : k].udp_fd;
}

/* The end of the run of msgs[at, n) that leaves from one socket (dp_send_fd): all of them, or in
 * split mode those whose destination has the family of msgs[at]'s. */
static inline int dp_send_run_end(const struct dataplane *dp, const struct mmsghdr *msgs, int at, int n) {
  if (!dp->split) return n;
  sa_family_t fam = ((const struct sockaddr *)msgs[at].msg_hdr.msg_name)->sa_family;
  int end = at + 1;
  while (end < n && ((const struct sockaddr *)msgs[end].msg_hdr.msg_name)->sa_family == fam) end++;
  return end;
}

/* Total queues (each a TUN fd, a socket, a thread pair) for `queues` per socket set. */
static inline int dp_total_queues(int queues, int split) { return split ? 2 * queues : queues; }

/* Opens the fds (inside opt->netns when set) and starts the threads. On error returns NULL and
 * writes a message naming the failed step into err. */
struct dataplane *dp_start(const struct dp_options *opt, uint64_t *counters, char *err, size_t errlen);
/* Validates and applies a batch of commands atomically. Returns -1 on success, else the byte
 * offset of the first invalid record (nothing applied). */
long dp_apply(struct dataplane *dp, const uint8_t *cmds, size_t len);
/* Joins the threads, closes every fd, frees everything but the counters (owned by the caller). */
void dp_stop(struct dataplane *dp);
/* Sum of the packet threads' CPU time, nanoseconds. */
uint64_t dp_cpu_ns(struct dataplane *dp);

/* Shared with the route-table test entry point. */
long dp_validate(const uint8_t *cmds, size_t len);

#endif
