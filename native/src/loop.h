/* Helpers shared by the two packet threads (outbound.c, inbound.c). */
#ifndef TULLE_LOOP_H
#define TULLE_LOOP_H
#include "dataplane.h"

/* Per-thread scratch: DP_BATCH buffers of DP_BUF_SIZE, allocated once per thread. */
struct slot {
  uint8_t buf[DP_BUF_SIZE];
};
struct slot *alloc_slots(void);

/* A relaxed atomic add: the outbound counters have two writers when the inbound thread forwards
 * from its own TUN queue (offload.h, reply_queue); a few per batch, no ordering needed. */
static inline void cadd(uint64_t *c, int idx, uint64_t n) {
  if (n) __atomic_fetch_add(&c[idx], n, __ATOMIC_RELAXED);
}

/* Sums runs of packets of one peer (a batch or train is mostly one flow): one atomic add per run. */
struct peer_acc {
  const struct dp_peer_counters *pcs;
  int queue, dir;
  uint32_t id;
  uint64_t packets, bytes;
};
static inline void peer_acc_flush(struct peer_acc *a) {
  peer_count(a->pcs, a->queue, a->id, a->dir, a->packets, a->bytes);
  a->packets = a->bytes = 0;
}
static inline void peer_acc_add(struct peer_acc *a, uint32_t id, uint64_t bytes) {
  if (id != a->id) peer_acc_flush(a), a->id = id;
  a->packets++;
  a->bytes += bytes;
}

/* A packet thread reports, once, after allocating its buffers: ok = it has them. A thread that
 * reports !ok returns at once; dp_start then fails with an error naming it. */
void dp_thread_started(struct dp_queue *q, int ok, const char *thread);

/* Waits until fd is readable; returns 0 when the data plane is stopping. */
int wait_readable(struct dataplane *dp, int fd);
/* Waits until fd a or b (-1: none) is readable; returns 1 | 2 for which, 0 when stopping. */
int wait_readable2(struct dataplane *dp, int a, int b);

static inline struct dp_peer *peer_get(struct dataplane *dp, uint32_t id) {
  if (id >= dp->peers_cap || !dp->peers[id].in_use) return NULL;
  return &dp->peers[id];
}

/* ---- inbound checks (plain mode), shared by inbound.c and inbound-offload.c ---- */

enum in_verdict { IN_DELIVER, IN_UNKNOWN_PEER, IN_SPOOFED, IN_MALFORMED, IN_OVERSIZED, IN_BAD_IP_CSUM, IN_VERDICTS };

/* The outer (underlay) source of a datagram; v4-mapped IPv6 counts as IPv4. */
struct outer {
  int family;
  const uint8_t *addr;
};
struct outer outer_source(const struct sockaddr_storage *ss);

/* Is the outer source the address of any peer? (Caller holds the table's read lock.) */
static inline int outer_known(struct dataplane *dp, struct outer o) {
  return rt_lookup(&dp->peer_addrs, o.family, o.addr) != RT_NONE;
}

/* The peer on which drops from this outer source are pinned (dataplane.h), RT_NONE for a stranger.
 * Looked up only for a drop: nothing on the delivering path. (Caller holds the read lock.) */
static inline uint32_t outer_owner(struct dataplane *dp, struct outer o) {
  return rt_lookup(&dp->addr_owner, o.family, o.addr);
}

/* Plain mode: the per-peer slot of a drop verdict from a known address (-1: not a drop). */
static inline int in_verdict_slot(enum in_verdict v) {
  switch (v) {
  case IN_SPOOFED: return PC_IN_DROP_SPOOFED_SOURCE;
  case IN_MALFORMED: return PC_IN_DROP_MALFORMED;
  case IN_OVERSIZED: return PC_IN_DROP_OVERSIZED;
  case IN_BAD_IP_CSUM: return PC_IN_DROP_IP_HEADER_CHECKSUM;
  default: return -1;
  }
}

/* Adds a batch's drop verdicts (counts indexed by enum in_verdict) to the queue's counters. */
static inline void count_in_verdicts(uint64_t *c, const uint64_t v[IN_VERDICTS]) {
  cadd(c, TC_IN_DROP_UNKNOWN_PEER, v[IN_UNKNOWN_PEER]);
  cadd(c, TC_IN_DROP_SPOOFED_SOURCE, v[IN_SPOOFED]);
  cadd(c, TC_IN_DROP_MALFORMED, v[IN_MALFORMED]);
  cadd(c, TC_IN_DROP_OVERSIZED, v[IN_OVERSIZED]);
  cadd(c, TC_IN_DROP_IP_HEADER_CHECKSUM, v[IN_BAD_IP_CSUM]);
}

/* Checks one inner packet from a known peer address: size, parse, IPv4 header checksum, and that its inner source lies
 * in a subnet routed to that very peer, whose id goes to *peer on IN_DELIVER. (Caller holds the table's read lock.) */
enum in_verdict check_inner(struct dataplane *dp, struct outer o, const uint8_t *pkt, size_t len, int truncated, uint32_t *peer);

void *outbound_thread(void *arg);
void *inbound_thread(void *arg);

#endif
