/*
 * Outbound: TUN -> UDP. Stages, in order: drain the TUN a batch at a time -> parse -> route
 * lookup (under the read lock, once per batch) -> [encrypted mode: seal_for_peer, wg-data.c]
 * -> sendmmsg to the owning peers; a packet with no route gets an ICMP net-unreachable written
 * back into the TUN (rate-limited).
 */
#include "dataplane.h"
#include "loop.h"
#include "packet.h"
#include "wg.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define ICMP_PER_SECOND 200 /* outbound ICMP errors per queue per second, like a router's limit */

static uint64_t now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec;
}

/* Encrypted mode: seals the packet for its peer and fills the datagram and its destination.
 * Returns 1 to send, 0 when the packet was staged or dropped (counted). */
static int seal_for_peer(struct dataplane *dp, int queue, struct aead *a, uint32_t id, uint8_t *pkt, size_t len,
                         struct iovec *iov, struct sockaddr_storage *name, socklen_t *name_len, uint64_t now,
                         uint64_t *c) {
  uint8_t *out;
  size_t out_len;
  switch (wg_seal_packet(dp, a, id, pkt, len, &out, &out_len, now, c)) {
  case WG_OUT_SEND: break;
  case WG_OUT_STAGED: cadd(c, TC_OUT_WG_STAGED, 1); return 0;
  case WG_OUT_STAGE_FULL:
    cadd(c, TC_OUT_DROP_STAGE_FULL, 1);
    peer_drop(dp->opt.peer_counters, queue, id, PC_OUT_DROP_STAGE_FULL, 1);
    return 0;
  }
  *name_len = wg_peer_endpoint(dp, id, name);
  iov->iov_base = out;
  iov->iov_len = out_len;
  return 1;
}

void *outbound_thread(void *arg) {
  struct dp_queue *q = arg;
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  struct slot *slots = alloc_slots();
  struct mmsghdr *msgs = calloc(DP_BATCH, sizeof(*msgs));
  struct iovec *iov = calloc(DP_BATCH, sizeof(*iov));
  struct sockaddr_storage *names = calloc(DP_BATCH, sizeof(*names));
  size_t *lens = calloc(DP_BATCH, sizeof(*lens));
  uint32_t *ids = calloc(DP_BATCH, sizeof(*ids)); /* the peer of each datagram, for its counters */
  uint8_t *icmp = malloc(1500);
  uint64_t icmp_window = 0, icmp_sent_in_window = 0;
  struct aead *aead = dp->wg ? wg_aead_new(dp->wg) : NULL;
  int ok = slots && msgs && iov && names && lens && ids && icmp && (!dp->wg || aead);
  dp_thread_started(q, ok, "outbound");
  if (!ok) goto out;

  while (wait_readable(dp, q->tun_fd)) {
    for (;;) { /* drain the TUN, a batch at a time */
      if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) goto out;
      int n = 0;
      uint64_t bytes = 0;
      while (n < DP_BATCH) {
        ssize_t r = read(q->tun_fd, slots[n].buf + DP_HEADROOM, DP_BUF_SIZE - DP_HEADROOM - DP_TAILROOM);
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN && n == 0) usleep(10000); /* device gone or broken: do not spin */
          break; /* EAGAIN: drained; anything else: back to poll */
        }
        lens[n++] = (size_t)r;
        bytes += (uint64_t)r;
      }
      if (n == 0) break;
      cadd(c, TC_OUT_PACKETS, (uint64_t)n);
      cadd(c, TC_OUT_BYTES, bytes);
      cadd(c, TC_OUT_BATCHES, 1);

      int k = 0;
      uint64_t no_route = 0, malformed = 0, icmp_n = 0;
      pthread_rwlock_rdlock(&dp->lock);
      /* after the lock: a session installed while we waited for it must not look older than now */
      uint64_t now_ms = dp->wg ? wg_now_ms() : 0;
      for (int i = 0; i < n; i++) {
        uint8_t *pkt = slots[i].buf + DP_HEADROOM;
        struct ip_view v;
        if (ip_parse(pkt, lens[i], &v) != 0) {
          malformed++;
          continue;
        }
        uint32_t id = rt_lookup(&dp->routes, v.family, v.dst);
        struct dp_peer *p = peer_get(dp, id);
        if (!p) {
          no_route++;
          uint64_t s = now_sec();
          if (s != icmp_window) icmp_window = s, icmp_sent_in_window = 0;
          if (icmp_sent_in_window < ICMP_PER_SECOND) {
            size_t il = icmp_net_unreachable(pkt, lens[i], &v, icmp);
            if (il && write(q->tun_fd, icmp, il) == (ssize_t)il) icmp_n++, icmp_sent_in_window++;
          }
          continue;
        }
        socklen_t name_len = p->ep_len;
        if (dp->wg) {
          if (!seal_for_peer(dp, q->index, aead, id, pkt, lens[i], &iov[k], &names[k], &name_len, now_ms, c)) continue;
        } else {
          memcpy(&names[k], &p->ep, p->ep_len);
          iov[k].iov_base = pkt;
          iov[k].iov_len = lens[i];
        }
        msgs[k].msg_hdr = (struct msghdr){
            .msg_name = &names[k], .msg_namelen = name_len, .msg_iov = &iov[k], .msg_iovlen = 1};
        ids[k] = id;
        k++;
      }
      pthread_rwlock_unlock(&dp->lock);
      cadd(c, TC_OUT_DROP_NO_ROUTE, no_route);
      cadd(c, TC_OUT_DROP_MALFORMED, malformed);
      cadd(c, TC_OUT_ICMP_UNREACHABLE, icmp_n);

      uint64_t sent = 0, sent_bytes = 0, errors = 0;
      struct peer_acc acc = {.pcs = q->pcs, .queue = q->index, .dir = PC_TX_PACKETS};
      for (int at = 0; at < k;) {
        int end = dp_send_run_end(dp, msgs, at, k); /* split mode: one socket per underlay family */
        int r = sendmmsg(dp_send_fd(q, names[at].ss_family), msgs + at, (unsigned)(end - at), 0);
        if (r < 0) {
          if (errno == EINTR) continue;
          errors++; /* the datagram at `at` failed (unreachable, too big, ...): skip it */
          peer_drop(q->pcs, q->index, ids[at], PC_OUT_DROP_SEND_ERROR, 1);
          at++;
          continue;
        }
        for (int j = at; j < at + r; j++) sent_bytes += iov[j].iov_len, peer_acc_add(&acc, ids[j], iov[j].iov_len);
        sent += (uint64_t)r;
        at += r;
      }
      peer_acc_flush(&acc);
      cadd(c, TC_OUT_SENT_PACKETS, sent);
      cadd(c, TC_OUT_SENT_BYTES, sent_bytes);
      cadd(c, TC_OUT_DROP_SEND_ERROR, errors);
      if (n < DP_BATCH) break;
    }
  }
out:
  if (dp->wg) wg_aead_free(dp->wg, aead);
  free(slots);
  free(msgs);
  free(iov);
  free(names);
  free(lens);
  free(ids);
  free(icmp);
  return NULL;
}

