#include "loop.h"
#include "packet.h"
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

struct slot *alloc_slots(void) { return aligned_alloc(64, sizeof(struct slot) * DP_BATCH); }

void dp_thread_started(struct dp_queue *q, int ok, const char *thread) {
  struct dataplane *dp = q->dp;
  pthread_mutex_lock(&dp->start_lock);
  dp->threads_reported++;
  if (!ok && !dp->threads_failed++) snprintf(dp->failed_thread, sizeof(dp->failed_thread), "%s%d", thread, q->index);
  pthread_cond_broadcast(&dp->start_cond);
  pthread_mutex_unlock(&dp->start_lock);
}

int wait_readable(struct dataplane *dp, int fd) { return wait_readable2(dp, fd, -1) != 0; }

int wait_readable2(struct dataplane *dp, int a, int b) {
  /* the data fds first (the fuzz harness's fake poll looks at the first) */
  struct pollfd p[3] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}, {.fd = dp->stop_fd, .events = POLLIN}};
  int n = b >= 0 ? 3 : 2;
  if (b < 0) p[1] = p[2];
  for (;;) {
    if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) return 0;
    int r = poll(p, (nfds_t)n, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[n - 1].revents & POLLIN)) return 0;
    int ready = (p[0].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0;
    if (b >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) ready |= 2;
    if (ready) return ready;
  }
}

struct outer outer_source(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) return (struct outer){4, (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr};
  const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(a6)) return (struct outer){4, a6->s6_addr + 12};
  return (struct outer){6, a6->s6_addr};
}

enum in_verdict check_inner(struct dataplane *dp, struct outer o, const uint8_t *pkt, size_t len, int truncated, uint32_t *peer) {
  if (truncated || (int)len > dp->opt.mtu) return IN_OVERSIZED;
  struct ip_view v;
  if (ip_parse(pkt, len, &v) != 0) return IN_MALFORMED;
  if (!ip_header_checksum_ok(pkt, &v)) return IN_BAD_IP_CSUM;
  uint32_t id = rt_lookup(&dp->routes, v.family, v.src);
  struct dp_peer *p = peer_get(dp, id);
  if (!p || p->family != o.family || memcmp(p->addr, o.addr, o.family == 4 ? 4 : 16) != 0) return IN_SPOOFED;
  *peer = id;
  return IN_DELIVER;
}
