/*
 * Inbound: UDP -> TUN. Stages, in order: recvmmsg a batch -> per datagram, under the read lock:
 * known peer address? -> size -> parse -> inner source in that peer's subnet? -> write the
 * survivors to the TUN. Every drop is counted by reason. In encrypted mode open_batch
 * (wg-data.c per datagram) replaces the checks: WireGuard messages only, opened in place.
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


/* Plain mode: the checks for one datagram; a drop from a known address is pinned on its peer. */
static enum in_verdict check_inbound(struct dp_queue *q, const struct sockaddr_storage *from, const uint8_t *pkt,
                                     size_t len, int truncated, uint32_t *peer) {
  struct dataplane *dp = q->dp;
  struct outer o = outer_source(from);
  if (!outer_known(dp, o)) return IN_UNKNOWN_PEER;
  enum in_verdict v = check_inner(dp, o, pkt, len, truncated, peer);
  if (v != IN_DELIVER) peer_drop(q->pcs, q->index, outer_owner(dp, o), in_verdict_slot(v), 1);
  return v;
}

/* Encrypted mode: opens each datagram in place; survivors get verdict IN_DELIVER and their iov
 * and msg_len narrowed to the inner packet. */
static void open_batch(struct dp_queue *q, struct aead *a, struct mmsghdr *msgs, struct iovec *iov,
                       struct sockaddr_storage *names, uint8_t *verdict, int n, uint64_t *c, struct peer_acc *acc) {
  struct dataplane *dp = q->dp;
  uint64_t counts[WG_IN_VERDICTS] = {0};
  uint64_t now = wg_now_ms();
  for (int i = 0; i < n; i++) {
    uint8_t *p = iov[i].iov_base;
    size_t len = msgs[i].msg_len;
    uint32_t peer = UINT32_MAX;
    enum wg_in_verdict v = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? WG_IN_OVERSIZED
                                                                   : wg_open_datagram(dp, a, &names[i], &p, &len, now, c, &peer);
    if (v == WG_IN_DELIVER || v == WG_IN_KEEPALIVE) peer_acc_add(acc, peer, msgs[i].msg_len);
    else wg_count_peer_drop(q, v, peer, &names[i]);
    counts[v]++;
    verdict[i] = v == WG_IN_DELIVER ? IN_DELIVER : IN_MALFORMED; /* only DELIVER is looked at later */
    iov[i].iov_base = p;
    msgs[i].msg_len = (unsigned)len;
  }
  wg_count_inbound(c, counts);
}

void *inbound_thread(void *arg) {
  struct dp_queue *q = arg;
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  struct slot *slots = alloc_slots();
  struct mmsghdr *msgs = calloc(DP_BATCH, sizeof(*msgs));
  struct iovec *iov = calloc(DP_BATCH, sizeof(*iov));
  struct sockaddr_storage *names = calloc(DP_BATCH, sizeof(*names));
  uint8_t *verdict = calloc(DP_BATCH, 1);
  struct aead *aead = dp->wg ? wg_aead_new(dp->wg) : NULL;
  int ok = slots && msgs && iov && names && verdict && (!dp->wg || aead);
  dp_thread_started(q, ok, "inbound");
  if (!ok) goto out;

  while (wait_readable(dp, q->udp_fd)) {
    for (;;) {
      if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) goto out;
      for (int i = 0; i < DP_BATCH; i++) {
        iov[i].iov_base = slots[i].buf + DP_HEADROOM;
        iov[i].iov_len = DP_BUF_SIZE - DP_HEADROOM;
        msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &names[i], .msg_namelen = sizeof(names[i]), .msg_iov = &iov[i], .msg_iovlen = 1};
      }
      int n = recvmmsg(q->udp_fd, msgs, DP_BATCH, MSG_DONTWAIT, NULL);
      if (n < 0) {
        if (errno == EINTR) continue;
        break; /* EAGAIN, or a queued ICMP error (ECONNREFUSED ...): back to poll */
      }
      if (n == 0) break;
      uint64_t bytes = 0;
      uint64_t counts[IN_VERDICTS] = {0};
      for (int i = 0; i < n; i++) bytes += msgs[i].msg_len;
      struct peer_acc acc = {.pcs = q->pcs, .queue = q->index, .dir = PC_RX_PACKETS};
      pthread_rwlock_rdlock(&dp->lock);
      if (dp->wg) {
        open_batch(q, aead, msgs, iov, names, verdict, n, c, &acc);
      } else {
        for (int i = 0; i < n; i++) {
          uint32_t peer = 0;
          verdict[i] = (uint8_t)check_inbound(q, &names[i], iov[i].iov_base, msgs[i].msg_len,
                                              (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, &peer);
          counts[verdict[i]]++;
          if (verdict[i] == IN_DELIVER) peer_acc_add(&acc, peer, msgs[i].msg_len);
        }
      }
      pthread_rwlock_unlock(&dp->lock);
      peer_acc_flush(&acc);
      cadd(c, TC_IN_PACKETS, (uint64_t)n);
      cadd(c, TC_IN_BYTES, bytes);
      cadd(c, TC_IN_BATCHES, 1);
      count_in_verdicts(c, counts);

      uint64_t delivered = 0, dbytes = 0, werr = 0;
      for (int i = 0; i < n; i++) {
        if (verdict[i] != IN_DELIVER) continue;
        size_t len = msgs[i].msg_len;
        ssize_t w;
        do w = write(q->tun_fd, iov[i].iov_base, len);
        while (w < 0 && errno == EINTR);
        if (w == (ssize_t)len) delivered++, dbytes += len;
        else werr++;
      }
      cadd(c, TC_IN_DELIVERED_PACKETS, delivered);
      cadd(c, TC_IN_DELIVERED_BYTES, dbytes);
      cadd(c, TC_IN_DROP_TUN_WRITE_ERROR, werr);
      if (n < DP_BATCH) break;
    }
  }
out:
  if (dp->wg) wg_aead_free(dp->wg, aead);
  free(slots);
  free(msgs);
  free(iov);
  free(names);
  free(verdict);
  return NULL;
}

