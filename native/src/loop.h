/* Helpers shared by the two packet threads (outbound.c, inbound.c). */
#ifndef TULLE_LOOP_H
#define TULLE_LOOP_H
#include "dataplane.h"

/* Per-thread scratch: DP_BATCH buffers of DP_BUF_SIZE, allocated once per thread. */
struct slot {
  uint8_t buf[DP_BUF_SIZE];
};
struct slot *alloc_slots(void);

/* Counters have one writer each (the owning thread): a relaxed store is enough for readers. */
static inline void cadd(uint64_t *c, int idx, uint64_t n) {
  if (n) __atomic_store_n(&c[idx], c[idx] + n, __ATOMIC_RELAXED);
}

/* Waits until fd is readable; returns 0 when the data plane is stopping. */
int wait_readable(struct dataplane *dp, int fd);

static inline struct dp_peer *peer_get(struct dataplane *dp, uint32_t id) {
  if (id >= dp->peers_cap || !dp->peers[id].in_use) return NULL;
  return &dp->peers[id];
}

void *outbound_thread(void *arg);
void *inbound_thread(void *arg);

#endif
