/*
 * The packet loop, in the order a packet meets it:
 *   1. dp_start: open the TUN and UDP socket (in the target netns), start the threads
 *   2. dp_apply: commands from TypeScript
 *   3. dp_stop
 * The packet threads themselves are in outbound.c (TUN -> UDP) and inbound.c (UDP -> TUN).
 */
#include "dataplane.h"
#include "loop.h"
#include "packet.h"
#include "tun.h"
#include "vnet.h"
#include "reuseport.h"
#include "wg.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/if_tun.h>

#define SOCK_BUF_BYTES (8 << 20)

/* ---- 1. start -------------------------------------------------------------------------- */

struct open_job {
  struct dataplane *dp;
  char *err;
  size_t errlen;
  int ok;
};

static int open_queue_fds(struct dataplane *dp, struct dp_queue *q, char *err, size_t errlen) {
  char name[IFNAMSIZ];
  memcpy(name, dp->tun_name, IFNAMSIZ);
  int flags = dp->n_queues > 1 ? IFF_MULTI_QUEUE : 0;
  int off = offload_tun_flags(dp); /* IFF_VNET_HDR, and IFF_MULTI_QUEUE for a reply queue */
  int reply = (off & IFF_MULTI_QUEUE) && (q->index == 0 || dp->offload.reply_queue);
  q->tun_fd = tun_open(name, flags | off);
  if (q->tun_fd == -EINVAL && reply && !flags && q->index == 0) { /* a single-queue device is there: no reply queue */
    off &= ~IFF_MULTI_QUEUE;
    reply = 0;
    q->tun_fd = tun_open(name, off);
  }
  int vnet = off & IFF_VNET_HDR;
  if (q->tun_fd == -EINVAL && vnet && q->index == 0) q->tun_fd = tun_open(name, flags | (off & IFF_MULTI_QUEUE)); /* no IFF_VNET_HDR */
  else if (q->tun_fd >= 0 && vnet && q->index == 0) dp->offload.vnet_len = VNET_HDR_LEN;
  if (q->tun_fd < 0) {
    snprintf(err, errlen, "open TUN device '%s': %s", dp->tun_name, strerror(-q->tun_fd));
    return -1;
  }
  memcpy(dp->tun_name, name, IFNAMSIZ);
  if (reply) { /* the inbound thread's own queue (offload.h), with the flags the first one took */
    q->reply_fd = tun_open(name, IFF_MULTI_QUEUE | (dp->offload.vnet_len ? IFF_VNET_HDR : 0));
    if (q->reply_fd < 0) {
      snprintf(err, errlen, "open TUN device '%s' (reply queue %d): %s", dp->tun_name, q->index, strerror(-q->reply_fd));
      q->reply_fd = -1;
      return -1;
    }
  }

  /* split: the second half of the queues are the IPv6 set, on their own port */
  int v6set = dp->split && q->index >= dp->split;
  int first = v6set ? dp->split : 0;                      /* first queue of this socket set */
  int set_size = dp->split ? dp->split : dp->n_queues;
  const struct sockaddr_storage *bind_to = v6set ? &dp->opt.bind6 : &dp->opt.bind;
  socklen_t bind_len = v6set ? dp->opt.bind6_len : dp->opt.bind_len;
  q->udp_fd = socket(bind_to->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (q->udp_fd < 0) {
    snprintf(err, errlen, "create UDP socket: %s", strerror(errno));
    return -1;
  }
  int one = 1, zero = 0, size = SOCK_BUF_BYTES;
  /* one socket for both families (v4-mapped), unless split: then the IPv6 set is IPv6 only */
  if (bind_to->ss_family == AF_INET6) setsockopt(q->udp_fd, IPPROTO_IPV6, IPV6_V6ONLY, v6set ? &one : &zero, sizeof(zero));
  if (set_size > 1) setsockopt(q->udp_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  /* FORCE needs CAP_NET_ADMIN; fall back to the limited variant without it */
  if (setsockopt(q->udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
    setsockopt(q->udp_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(q->udp_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
    setsockopt(q->udp_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  struct sockaddr_storage b = *bind_to;
  uint16_t *bound = v6set ? &dp->bound_port6 : &dp->bound_port;
  if (q->index > first) { /* later queues of a set join its first queue's port */
    if (b.ss_family == AF_INET) ((struct sockaddr_in *)&b)->sin_port = htons(*bound);
    else ((struct sockaddr_in6 *)&b)->sin6_port = htons(*bound);
  }
  int probe = q->index == first && set_size > 1 ? reuseport_exclusive_probe((struct sockaddr *)&b, bind_len) : 0;
  if (probe < 0) errno = -probe;
  if (probe < 0 || bind(q->udp_fd, (struct sockaddr *)&b, bind_len) < 0) {
    char a[INET6_ADDRSTRLEN] = "?";
    int port;
    if (b.ss_family == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&b)->sin_addr, a, sizeof(a));
      port = ntohs(((struct sockaddr_in *)&b)->sin_port);
    } else {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&b)->sin6_addr, a, sizeof(a));
      port = ntohs(((struct sockaddr_in6 *)&b)->sin6_port);
    }
    snprintf(err, errlen, "bind UDP %s port %d: %s", a, port, strerror(errno));
    return -1;
  }
  if (q->index == first) {
    struct sockaddr_storage got;
    socklen_t gl = sizeof(got);
    getsockname(q->udp_fd, (struct sockaddr *)&got, &gl);
    *bound = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                            : ((struct sockaddr_in6 *)&got)->sin6_port);
  }
  offload_setup_queue(dp, q);
  return 0;
}

/* Runs on a short-lived thread: setns() changes only the calling thread's namespace, and fds
 * keep the namespace they were created in, so the caller's threads stay where they are. */
static void *open_fds_thread(void *arg) {
  struct open_job *job = arg;
  struct dataplane *dp = job->dp;
  if (dp->opt.netns[0]) {
    int nsfd = open(dp->opt.netns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      snprintf(job->err, job->errlen, "open netns %s: %s", dp->opt.netns, strerror(errno));
      return NULL;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      snprintf(job->err, job->errlen, "enter netns %s: %s", dp->opt.netns, strerror(errno));
      close(nsfd);
      return NULL;
    }
    close(nsfd);
  }
  for (int i = 0; i < dp->n_queues; i++)
    if (open_queue_fds(dp, &dp->q[i], job->err, job->errlen) < 0) return NULL;
  job->ok = 1;
  return NULL;
}


struct dataplane *dp_start(const struct dp_options *opt, uint64_t *counters, char *err, size_t errlen) {
  struct dataplane *dp = calloc(1, sizeof(*dp));
  if (!dp) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  dp->opt = *opt;
  memcpy(dp->tun_name, opt->tun_name, IFNAMSIZ);
  dp->sock_family = opt->bind.ss_family;
  int per_set = opt->bind6_len ? DP_MAX_QUEUES / 2 : DP_MAX_QUEUES;
  int queues = opt->queues < 1 ? 1 : opt->queues > per_set ? per_set : opt->queues;
  dp->split = opt->bind6_len ? queues : 0;
  dp->n_queues = dp_total_queues(queues, dp->split);
  dp->counters = counters;
  dp->stop_fd = -1;
  for (int i = 0; i < DP_MAX_QUEUES; i++) {
    dp->q[i].dp = dp;
    dp->q[i].index = i;
    dp->q[i].tun_fd = dp->q[i].udp_fd = dp->q[i].reply_fd = -1;
    dp->q[i].counters = counters + (size_t)i * TULLE_COUNTER_SLOTS;
    dp->q[i].pcs = opt->peer_counters;
  }
  if (dp->split && (opt->bind.ss_family != AF_INET || opt->bind6.ss_family != AF_INET6)) {
    snprintf(err, errlen, "two socket sets (Mode separate) need an IPv4 first bind address and an IPv6 second one");
    free(dp);
    return NULL;
  }
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&dp->lock, &ra);
  pthread_rwlockattr_destroy(&ra);
  pthread_mutex_init(&dp->start_lock, NULL);
  pthread_cond_init(&dp->start_cond, NULL);
  if (rt_init(&dp->routes) < 0 || rt_init(&dp->peer_addrs) < 0 || rt_init(&dp->addr_owner) < 0) {
    snprintf(err, errlen, "out of memory");
    dp_stop(dp);
    return NULL;
  }
  if (opt->encrypted) {
    dp->wg = wg_new(opt->rekey_after_ms ? opt->rekey_after_ms : 120000, opt->reject_after_ms ? opt->reject_after_ms : 180000,
                    opt->has_public_key ? opt->public_key : NULL);
    if (dp->wg) dp->wg->notify = opt->notify, dp->wg->notify_ctx = opt->notify_ctx;
    if (!dp->wg) {
      snprintf(err, errlen, "out of memory (encrypted mode)");
      dp_stop(dp);
      return NULL;
    }
  }
  dp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (dp->stop_fd < 0) {
    snprintf(err, errlen, "eventfd: %s", strerror(errno));
    dp_stop(dp);
    return NULL;
  }

  struct open_job job = {dp, err, errlen, 0};
  pthread_t t;
  if (pthread_create(&t, NULL, open_fds_thread, &job) != 0) {
    snprintf(err, errlen, "pthread_create: %s", strerror(errno));
    dp_stop(dp);
    return NULL;
  }
  pthread_join(t, NULL);
  if (!job.ok) {
    dp_stop(dp);
    return NULL;
  }
  /* one socket per queue: steer inbound by inner flow (reuseport.c); encrypted datagrams have no
   * readable inner flow, so they keep the kernel's hash (one peer's traffic on one queue) */
  if (dp->n_queues > 1 && !dp->wg && !dp->split)
    dp->offload.reuseport_inner = reuseport_steer_inner_flow(dp->q[0].udp_fd, (unsigned)dp->n_queues) == 0;
  for (int i = 0; i < dp->n_queues; i++) {
    struct dp_queue *q = &dp->q[i];
    int off = dp->opt.offload.enabled;
    char name[16];
    if (pthread_create(&q->out_thread, NULL, off ? outbound_offload_thread : outbound_thread, q) != 0) break;
    q->out_started = 1;
    snprintf(name, sizeof(name), "tulle-out%d", i); /* for top -H, perf, /proc/PID/task */
    pthread_setname_np(q->out_thread, name);
    if (pthread_create(&q->in_thread, NULL, off ? inbound_offload_thread : inbound_thread, q) != 0) break;
    q->in_started = 1;
    snprintf(name, sizeof(name), "tulle-in%d", i);
    pthread_setname_np(q->in_thread, name);
  }
  int started = 0;
  for (int i = 0; i < dp->n_queues; i++) started += dp->q[i].out_started + dp->q[i].in_started;
  if (!dp->q[dp->n_queues - 1].in_started) {
    snprintf(err, errlen, "pthread_create: %s", strerror(errno));
    dp_stop(dp);
    return NULL;
  }
  /* a thread without its buffers would leave a queue dead while start reported success */
  pthread_mutex_lock(&dp->start_lock);
  while (dp->threads_reported < started) pthread_cond_wait(&dp->start_cond, &dp->start_lock);
  pthread_mutex_unlock(&dp->start_lock);
  if (dp->threads_failed) {
    snprintf(err, errlen, "packet thread %s: out of memory for its buffers", dp->failed_thread);
    dp_stop(dp);
    return NULL;
  }
  return dp;
}

/* ---- per-peer counters (dataplane.h) --------------------------------------------------- */

struct dp_peer_counters *dp_pc_new(int queues) {
  struct dp_peer_counters *pcs = calloc(1, sizeof(*pcs));
  if (pcs) pcs->queues = queues < 1 ? 1 : queues > DP_MAX_QUEUES ? DP_MAX_QUEUES : queues;
  return pcs;
}

size_t dp_pc_block_bytes(const struct dp_peer_counters *pcs) {
  return sizeof(uint64_t) * PC_COUNT * DP_PC_BLOCK_PEERS * (size_t)pcs->queues;
}

int dp_pc_reserve(struct dp_peer_counters *pcs, uint32_t id) {
  if (!pcs || id >= DP_MAX_PEERS) return -1;
  uint64_t **slot = &pcs->block[id / DP_PC_BLOCK_PEERS];
  if (__atomic_load_n(slot, __ATOMIC_RELAXED)) return 0; /* only the writer stores: no race */
  /* mmap, not calloc: zero pages that cost memory only once a peer's counter is written */
  void *b = mmap(NULL, dp_pc_block_bytes(pcs), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED) return -1;
  __atomic_store_n(slot, (uint64_t *)b, __ATOMIC_RELEASE);
  return 0;
}

void dp_pc_free(struct dp_peer_counters *pcs) {
  if (!pcs) return;
  for (uint32_t i = 0; i < DP_PC_BLOCKS; i++)
    if (pcs->block[i]) munmap(pcs->block[i], dp_pc_block_bytes(pcs));
  free(pcs);
}

/* ---- 2. commands ----------------------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static size_t op_size(int op) {
  switch (op) {
  case DP_OP_SET_PEER: return 28;
  case DP_OP_DEL_PEER: return 8;
  case DP_OP_SET_ROUTE: return 28;
  case DP_OP_DEL_ROUTE: return 28;
  case DP_OP_INSTALL_SESSION: return 84;
  case DP_OP_RETIRE_SESSION: return 8;
  case DP_OP_SEND_KEEPALIVE: return 8;
  case DP_OP_CLEAR_STAGED: return 8;
  default: return 0;
  }
}

long dp_validate(const uint8_t *cmds, size_t len) {
  size_t at = 0;
  while (at < len) {
    if (len - at < 4) return (long)at;
    const uint8_t *r = cmds + at;
    size_t size = rd16(r + 2);
    if (op_size(r[0]) == 0 || size != op_size(r[0]) || size > len - at) return (long)at;
    if (r[0] != DP_OP_DEL_ROUTE && r[0] != DP_OP_RETIRE_SESSION && rd32(r + 4) >= DP_MAX_PEERS) return (long)at;
    if (r[0] == DP_OP_SET_PEER || r[0] == DP_OP_SET_ROUTE || r[0] == DP_OP_DEL_ROUTE) {
      int fam = r[8];
      if (fam != 4 && fam != 6) return (long)at;
      if (r[0] != DP_OP_SET_PEER && r[9] > (fam == 4 ? 32 : 128)) return (long)at;
    }
    at += size;
  }
  return -1;
}

/* Outer addresses: how many peers use each (inbound's "known sender?") and one of them, the
 * owner, on which drops from that address are pinned. A peer at an address gains or loses it. */
static int same_addr(const struct dp_peer *p, int fam, const uint8_t *addr) {
  return p->family == fam && memcmp(p->addr, addr, fam == 4 ? 4 : 16) == 0;
}

static void addr_add(struct dataplane *dp, uint32_t id, int fam, const uint8_t *addr) {
  int len = fam == 4 ? 32 : 128;
  uint32_t n = rt_lookup(&dp->peer_addrs, fam, addr);
  rt_set(&dp->peer_addrs, fam, addr, len, n == RT_NONE ? 1 : n + 1);
  if (rt_lookup(&dp->addr_owner, fam, addr) == RT_NONE) rt_set(&dp->addr_owner, fam, addr, len, id);
}

/* Peer id (still in the table) leaves the address: the owner moves to another peer there, if
 * one is left. The scan runs only when the owner leaves a shared address. */
static void addr_remove(struct dataplane *dp, uint32_t id, int fam, const uint8_t *addr) {
  int len = fam == 4 ? 32 : 128;
  uint32_t n = rt_lookup(&dp->peer_addrs, fam, addr);
  if (n == RT_NONE || n <= 1) {
    rt_del(&dp->peer_addrs, fam, addr, len);
    rt_del(&dp->addr_owner, fam, addr, len);
    return;
  }
  rt_set(&dp->peer_addrs, fam, addr, len, n - 1);
  if (rt_lookup(&dp->addr_owner, fam, addr) != id) return;
  for (uint32_t i = 0; i < dp->peers_cap; i++)
    if (i != id && dp->peers[i].in_use && same_addr(&dp->peers[i], fam, addr)) {
      rt_set(&dp->addr_owner, fam, addr, len, i);
      return;
    }
  rt_del(&dp->addr_owner, fam, addr, len);
}

/* Zeroes a deleted peer's counters in every queue. Not when a peer is set: reading a counter
 * faults its page in, and a table of 10,000 peers that never send would cost their memory. (A batch
 * routed before the delete and sent just after may still add to them.) */
static void clear_peer_counters(struct dataplane *dp, uint32_t id) {
  for (int i = 0; i < dp->n_queues; i++) {
    uint64_t *pc = peer_slot(dp->opt.peer_counters, i, id);
    if (pc)
      for (int k = 0; k < PC_COUNT; k++) __atomic_store_n(&pc[k], 0, __ATOMIC_RELAXED);
  }
}

static int set_peer(struct dataplane *dp, uint32_t id, int fam, uint16_t port, const uint8_t *addr) {
  if (id >= dp->peers_cap) {
    uint32_t cap = dp->peers_cap ? dp->peers_cap : 16;
    while (cap <= id) cap *= 2;
    struct dp_peer *n = realloc(dp->peers, cap * sizeof(*n));
    if (!n) return -1;
    memset(n + dp->peers_cap, 0, (cap - dp->peers_cap) * sizeof(*n));
    dp->peers = n;
    dp->peers_cap = cap;
  }
  struct dp_peer *p = &dp->peers[id];
  if (p->in_use) {
    addr_remove(dp, id, p->family, p->addr);
  } else { /* its counters' memory (zero: fresh, or cleared when the id was deleted); out of memory: counted only globally */
    dp_pc_reserve(dp->opt.peer_counters, id);
  }
  memset(p, 0, sizeof(*p));
  p->in_use = 1;
  p->family = fam;
  p->port = port;
  memcpy(p->addr, addr, fam == 4 ? 4 : 16);
  addr_add(dp, id, fam, addr);
  if ((dp->sock_family == AF_INET || dp->split) && fam == 4) { /* split: IPv4 goes to the IPv4 set */
    struct sockaddr_in *s = (struct sockaddr_in *)&p->ep;
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    memcpy(&s->sin_addr, addr, 4);
    p->ep_len = sizeof(*s);
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p->ep;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    if (fam == 4) {
      s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
      memcpy(s->sin6_addr.s6_addr + 12, addr, 4);
    } else {
      memcpy(&s->sin6_addr, addr, 16);
    }
    p->ep_len = sizeof(*s);
  }
  return 0;
}

long dp_apply(struct dataplane *dp, const uint8_t *cmds, size_t len) {
  long bad = dp_validate(cmds, len);
  if (bad >= 0) return bad;
  if (!dp->wg) /* session commands exist only in encrypted mode */
    for (size_t at = 0; at < len; at += rd16(cmds + at + 2))
      if (cmds[at] >= DP_OP_INSTALL_SESSION) return (long)at;
  pthread_rwlock_wrlock(&dp->lock);
  for (size_t at = 0; at < len;) {
    const uint8_t *r = cmds + at;
    uint32_t id = rd32(r + 4);
    switch (r[0]) {
    case DP_OP_SET_PEER:
      if (set_peer(dp, id, r[8], rd16(r + 10), r + 12) == 0 && dp->wg) wg_peer_reserve(dp->wg, id);
      break;
    case DP_OP_DEL_PEER:
      if (dp->wg) wg_del_peer(dp, id);
      if (id < dp->peers_cap && dp->peers[id].in_use) {
        addr_remove(dp, id, dp->peers[id].family, dp->peers[id].addr);
        dp->peers[id].in_use = 0;
        clear_peer_counters(dp, id); /* the next peer under this id starts from zero */
      }
      break;
    case DP_OP_SET_ROUTE: rt_set(&dp->routes, r[8], r + 12, r[9], id); break;
    case DP_OP_DEL_ROUTE: rt_del(&dp->routes, r[8], r + 12, r[9]); break;
    case DP_OP_INSTALL_SESSION: wg_install_session(dp, r); break;
    case DP_OP_RETIRE_SESSION: wg_retire_session(dp, id); break;
    case DP_OP_SEND_KEEPALIVE: wg_send_keepalive(dp, id); break;
    case DP_OP_CLEAR_STAGED: wg_clear_staged(dp, id); break;
    }
    at += rd16(r + 2);
  }
  pthread_rwlock_unlock(&dp->lock);
  return -1;
}

/* ---- 3. stop --------------------------------------------------------------------------- */

uint64_t dp_cpu_ns(struct dataplane *dp) {
  uint64_t total = 0;
  for (int i = 0; i < dp->n_queues; i++) {
    pthread_t ts[2] = {dp->q[i].out_thread, dp->q[i].in_thread};
    int started[2] = {dp->q[i].out_started, dp->q[i].in_started};
    for (int j = 0; j < 2; j++) {
      clockid_t cid;
      struct timespec t;
      if (started[j] && pthread_getcpuclockid(ts[j], &cid) == 0 && clock_gettime(cid, &t) == 0)
        total += (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
    }
  }
  return total;
}

void dp_stop(struct dataplane *dp) {
  atomic_store(&dp->stopping, 1);
  if (dp->stop_fd >= 0) {
    uint64_t one = 1;
    (void)!write(dp->stop_fd, &one, sizeof(one));
  }
  for (int i = 0; i < DP_MAX_QUEUES; i++) {
    struct dp_queue *q = &dp->q[i];
    if (q->out_started) pthread_join(q->out_thread, NULL);
    if (q->in_started) pthread_join(q->in_thread, NULL);
    if (q->tun_fd >= 0) close(q->tun_fd);
    if (q->reply_fd >= 0) close(q->reply_fd);
    if (q->udp_fd >= 0) close(q->udp_fd);
    offload_free_queue(q);
  }
  if (dp->stop_fd >= 0) close(dp->stop_fd);
  rt_free(&dp->routes);
  rt_free(&dp->peer_addrs);
  rt_free(&dp->addr_owner);
  free(dp->peers);
  wg_free(dp->wg);
  pthread_rwlock_destroy(&dp->lock);
  pthread_mutex_destroy(&dp->start_lock);
  pthread_cond_destroy(&dp->start_cond);
  free(dp);
}
