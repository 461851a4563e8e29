/*
 * Inbound with offloads: UDP -> TUN. Stages, in order:
 *   1. recvmmsg a batch; with UDP_GRO a datagram may be a train of segments, its cmsg giving
 *      the segment size (all equal but the last)
 *   2. per datagram: known peer address? (once: a train has one sender); per segment, under the
 *      read lock: size -> parse -> inner source in that peer's subnet?
 *   3. coalesce (gro.c) the survivors: consecutive segments of a flow become one super-packet
 *   4. write each output packet to the TUN with one writev: [virtio-net header][head][payloads]
 *
 * Encrypted mode opens each segment in place instead of 2 (open_datagram). Nothing is copied here: the
 * output iovecs point into the receive buffers, which stay untouched until the writes are done.
 *
 * Inner checksums (gro.h): not summed again where the bytes are vouched for, and then handed to
 * the kernel NEEDS_CSUM, which it does not verify either. Vouched for: a segment the AEAD opened;
 * in plain mode, a segment of a UDP_GRO train (the kernel's UDP GRO verifies the outer checksum
 * and takes no datagram without one; a local UDP_SEGMENT sender cannot send one without) and any
 * datagram from an IPv6 peer (a zero UDP checksum is dropped over IPv6 unless the socket set
 * UDP_NO_CHECK6_RX, which ours does not). The outer checksum covers the whole inner packet. A
 * lone IPv4 datagram may have come without a checksum (IPv4 allows it), so it is verified here.
 */
#include "dataplane.h"
#include "gro.h"
#include "loop.h"
#include "offload.h"
#include "packet.h"
#include "wg.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct inbound {
  struct slot *slots;
  struct mmsghdr msgs[DP_BATCH];
  struct iovec iov[DP_BATCH];
  struct sockaddr_storage names[DP_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cmsg[DP_BATCH];
  struct gro_table *gro;
  struct iovec out[1 + GRO_MAX_SEGS]; /* [virtio-net header][one per segment], see write_out */
  uint8_t vnet[VNET_HDR_LEN];
  struct aead *aead;                   /* encrypted mode */
  uint64_t wg_counts[WG_IN_VERDICTS]; /* encrypted mode: verdicts of the current batch */
  struct outbound *reply;              /* reply_queue (offload.h): the outbound stages for reply_fd */
  uint64_t writes;                     /* TUN writes so far */
};


/* The segment size of a UDP_GRO train, or 0 when the datagram came alone (no cmsg). */
static size_t train_segment_size(struct msghdr *mh) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(cm), sizeof(v));
      return v > 0 ? (size_t)v : 0;
    }
  }
  return 0;
}

/* Stage 4: writes what the table holds, then forgets it. */
static void write_out(struct dp_queue *q, struct inbound *in) {
  struct dataplane *dp = q->dp;
  uint64_t delivered = 0, dbytes = 0, werr = 0, writes = 0;
  int vnet = dp->offload.vnet_len > 0;
  int fd = in->reply ? q->reply_fd : q->tun_fd; /* reply_queue: answers come back to our own queue */
  for (int i = 0; i < in->gro->n_items; i++) {
    int segs;
    int n = gro_output(in->gro, i, in->vnet, in->out + 1, GRO_MAX_SEGS, &segs);
    if (n < 0) { /* cannot happen: gro_add closes an item at GRO_MAX_SEGS */
      werr += (uint64_t)segs;
      continue;
    }
    in->out[0] = (struct iovec){in->vnet, VNET_HDR_LEN};
    size_t len = 0;
    for (int k = 1; k <= n; k++) len += in->out[k].iov_len;
    ssize_t w;
    do w = writev(fd, in->out + !vnet, n + vnet);
    while (w < 0 && errno == EINTR);
    writes++;
    /* bytes of the inner packets as received: each merged one had its own headers */
    const struct gro_item *it = &in->gro->items[i];
    size_t inner = len + (size_t)(segs - 1) * (it->l4 + it->l4len);
    if (w == (ssize_t)(len + (vnet ? VNET_HDR_LEN : 0))) delivered += (uint64_t)segs, dbytes += inner;
    else werr += (uint64_t)segs;
  }
  uint64_t *c = q->counters;
  cadd(c, TC_IN_DELIVERED_PACKETS, delivered);
  cadd(c, TC_IN_DELIVERED_BYTES, dbytes);
  cadd(c, TC_IN_DROP_TUN_WRITE_ERROR, werr);
  cadd(c, TC_IN_TUN_WRITES, writes);
  cadd(c, TC_IN_COALESCED, in->gro->coalesced);
  cadd(c, TC_IN_CSUM_UNVERIFIED, in->gro->bad_csum);
  in->gro->coalesced = in->gro->bad_csum = 0;
  gro_reset(in->gro);
  in->writes += writes;
}

/* Stage 3 for one survivor. The table says when it is full (it holds a bounded number of output
 * packets and of merged segments, however many a batch brings): then it is written out first. */
static void coalesce(struct dp_queue *q, struct inbound *in, uint8_t *pkt, size_t len, int trusted) {
  if (gro_add(in->gro, pkt, len, trusted) != GRO_FULL) return;
  write_out(q, in);
  gro_add(in->gro, pkt, len, trusted); /* an empty table takes any packet */
}

/* Encrypted mode's stage 2 for one datagram: each segment of a train is one WireGuard message,
 * opened in place (wg-data.c: index, decrypt, replay, cryptokey routing); the inner packets go to
 * the coalescing table. */
static void open_datagram(struct dp_queue *q, struct inbound *in, int i, uint64_t *pkts, uint64_t *bytes, uint64_t now,
                          struct peer_acc *acc) {
  struct dataplane *dp = q->dp;
  struct msghdr *mh = &in->msgs[i].msg_hdr;
  size_t len = in->msgs[i].msg_len;
  size_t seg = train_segment_size(mh);
  if (!seg) seg = len;
  uint8_t *buf = in->iov[i].iov_base;
  int truncated = (mh->msg_flags & MSG_TRUNC) != 0;
  for (size_t off = 0; off < len; off += seg) {
    size_t sl = len - off < seg ? len - off : seg;
    uint8_t *p = buf + off;
    (*pkts)++;
    *bytes += sl;
    size_t outer = sl;
    uint32_t peer = UINT32_MAX;
    enum wg_in_verdict v = truncated ? WG_IN_OVERSIZED : wg_open_datagram(dp, in->aead, &in->names[i], &p, &sl, now, q->counters, &peer);
    in->wg_counts[v]++;
    if (v == WG_IN_DELIVER || v == WG_IN_KEEPALIVE) peer_acc_add(acc, peer, outer);
    else wg_count_peer_drop(q, v, peer, &in->names[i]);
    if (v != WG_IN_DELIVER) continue;
    coalesce(q, in, p, sl, 1); /* authenticated by the AEAD */
  }
}

/* Stage 2 for one datagram; survivors go to the coalescing table. */
static void check_datagram(struct dp_queue *q, struct inbound *in, int i, uint64_t *v, uint64_t *pkts, uint64_t *bytes,
                           struct peer_acc *acc) {
  struct dataplane *dp = q->dp;
  struct msghdr *mh = &in->msgs[i].msg_hdr;
  size_t len = in->msgs[i].msg_len;
  size_t seg = train_segment_size(mh);
  struct outer o = outer_source(&in->names[i]);
  int trusted = seg > 0 || o.family == 6; /* the kernel verified the outer checksum (above) */
  if (!seg) seg = len;
  uint8_t *buf = in->iov[i].iov_base;
  int known = outer_known(dp, o); /* once per train: every segment has the same outer source */
  uint32_t owner = RT_NONE;       /* the peer its drops are pinned on, looked up at the first */
  int truncated = (mh->msg_flags & MSG_TRUNC) != 0;
  for (size_t off = 0; off < len; off += seg) {
    size_t sl = len - off < seg ? len - off : seg;
    uint8_t *pkt = buf + off;
    (*pkts)++;
    *bytes += sl;
    uint32_t peer = 0;
    enum in_verdict verdict = known ? check_inner(dp, o, pkt, sl, truncated, &peer) : IN_UNKNOWN_PEER;
    if (verdict != IN_DELIVER) {
      v[verdict]++;
      if (known && owner == RT_NONE) owner = outer_owner(dp, o);
      if (known) peer_drop(q->pcs, q->index, owner, in_verdict_slot(verdict), 1);
      continue;
    }
    peer_acc_add(acc, peer, sl);
    coalesce(q, in, pkt, sl, trusted);
  }
}

long inbound_drain(struct dp_queue *q, struct inbound *in, int max_batches) {
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  long got = 0;
  for (int b = 0; b < max_batches; b++) {
    if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) break;
    for (int i = 0; i < DP_BATCH; i++) { /* 1. */
      in->iov[i] = (struct iovec){in->slots[i].buf + DP_HEADROOM, DP_BUF_SIZE - DP_HEADROOM};
      in->msgs[i].msg_hdr = (struct msghdr){.msg_name = &in->names[i], .msg_namelen = sizeof(in->names[i]),
                                            .msg_iov = &in->iov[i], .msg_iovlen = 1,
                                            .msg_control = in->cmsg[i].buf, .msg_controllen = sizeof(in->cmsg[i].buf)};
    }
    int n = recvmmsg(q->udp_fd, in->msgs, DP_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0 && errno == EINTR) {
      b--;
      continue;
    }
    if (n <= 0) break; /* EAGAIN, or a queued ICMP error: back to poll */
    got += n;
    uint64_t v[IN_VERDICTS] = {0}, pkts = 0, bytes = 0, writes_before = in->writes;
    struct peer_acc acc = {.pcs = q->pcs, .queue = q->index, .dir = PC_RX_PACKETS};
    pthread_rwlock_rdlock(&dp->lock); /* 2., 3. */
    if (dp->wg) {
      uint64_t now = wg_now_ms();
      for (int i = 0; i < n; i++) open_datagram(q, in, i, &pkts, &bytes, now, &acc);
    } else {
      for (int i = 0; i < n; i++) check_datagram(q, in, i, v, &pkts, &bytes, &acc);
    }
    pthread_rwlock_unlock(&dp->lock);
    peer_acc_flush(&acc);
    if (dp->wg) {
      wg_count_inbound(c, in->wg_counts);
      memset(in->wg_counts, 0, sizeof(in->wg_counts));
    }
    cadd(c, TC_IN_PACKETS, pkts);
    cadd(c, TC_IN_BYTES, bytes);
    cadd(c, TC_IN_UDP_DATAGRAMS, (uint64_t)n);
    cadd(c, TC_IN_BATCHES, 1);
    count_in_verdicts(c, v);
    write_out(q, in); /* 4. */
    /* what the kernel answered to those packets is in the TUN already: forward it now */
    if (in->reply) { /* from our own queue (offload.h, reply_queue), if this batch wrote anything */
      if (in->writes != writes_before) cadd(c, TC_OUT_INLINE_READS, (uint64_t)outbound_drain(q, in->reply, 1));
    } else if (dp->offload.inline_replies && q->oq && q->oq->out && pthread_mutex_trylock(&q->oq->out_lock) == 0) {
      long r = outbound_drain(q, q->oq->out, 1);
      cadd(c, TC_OUT_INLINE_READS, (uint64_t)r); /* an outbound counter: written under out_lock */
      pthread_mutex_unlock(&q->oq->out_lock);
    }
    if (n < DP_BATCH) break;
  }
  return got;
}

/* reply_queue: a batch from each ready fd in turn (neither starves the other), until neither
 * had a full batch waiting. */
static void serve_both(struct dp_queue *q, struct inbound *in, int ready) {
  while (ready && !atomic_load_explicit(&q->dp->stopping, memory_order_relaxed)) {
    long got = (ready & 1) ? inbound_drain(q, in, 1) : 0;
    long reads = (ready & 2) ? outbound_drain(q, in->reply, 1) : 0;
    ready = (got >= DP_BATCH ? 1 : 0) | (reads >= DP_BATCH ? 2 : 0);
  }
}

void *inbound_offload_thread(void *arg) {
  struct dp_queue *q = arg;
  struct dataplane *dp = q->dp;
  struct inbound *in = calloc(1, sizeof(*in));
  int ok = in && (in->slots = alloc_slots()) && (in->gro = malloc(sizeof(*in->gro))) && (!dp->wg || (in->aead = wg_aead_new(dp->wg)));
  if (ok && dp->offload.reply_queue && q->reply_fd >= 0) ok = (in->reply = outbound_new(dp, q->reply_fd)) != NULL;
  dp_thread_started(q, ok, "inbound");
  if (!ok) goto out;
  gro_init(in->gro, dp->offload.coalesce_tcp, dp->offload.coalesce_udp, dp->offload.vnet_len > 0);
  int ready;
  while ((ready = wait_readable2(dp, q->udp_fd, in->reply ? q->reply_fd : -1))) {
    struct offload_queue *oq = q->oq; /* read each time: the fuzz harness replaces it between inputs */
    if (oq) {
      pthread_mutex_lock(&oq->in_lock);
      oq->in = in; /* for the spinning outbound thread (offload.h) */
    }
    if (!in->reply) inbound_drain(q, in, 1 << 30);
    else serve_both(q, in, ready);
    if (oq) pthread_mutex_unlock(&oq->in_lock);
  }
out:
  if (q->oq) {
    pthread_mutex_lock(&q->oq->in_lock);
    if (q->oq->in == in) q->oq->in = NULL;
    pthread_mutex_unlock(&q->oq->in_lock);
  }
  if (in) {
    outbound_free(in->reply);
    free(in->slots);
    free(in->gro);
    if (dp->wg) wg_aead_free(dp->wg, in->aead);
  }
  free(in);
  return NULL;
}
