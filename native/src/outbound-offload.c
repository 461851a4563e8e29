/*
 * Outbound with offloads: TUN -> UDP. Stages, in order:
 *   1. read the TUN a batch at a time; each read is a virtio-net header + a packet or super-packet
 *   2. split (gso.c): complete a partial checksum, or cut a super-packet into segments whose
 *      headers go to the header area and whose payloads stay where they were read (zero-copy)
 *   3. route lookup, once per read, under the read lock; no route: ICMP net-unreachable
 *   4. group: consecutive segments of one flow to one peer, all of one size but the last, become
 *      one UDP_SEGMENT train (one datagram per segment on the wire, one skb in our kernel)
 *   5. sendmmsg the trains; a train the kernel refuses is resent one datagram at a time
 *
 * The stages are separate so encrypted mode can seal each segment between 2 and 4: a segment is
 * (hdr, hdr_len, data, data_len) and the header area has DP_HEADROOM bytes in front of each
 * header for a transport header.
 */
#include "dataplane.h"
#include "gso.h"
#include "loop.h"
#include "offload.h"
#include "packet.h"
#include "wg.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define SEG_CAP 1024                        /* segments per flush (a super-packet may need more: process) */
#define HDR_STRIDE (DP_HEADROOM + GSO_MAX_HDR) /* header area slot: room + headers */
#define TRAIN_MAX_SEGS 64                   /* UDP_MAX_SEGMENTS of older kernels */
#define TRAIN_MAX_BYTES (65535 - 8 - 40)    /* UDP payload limit, IPv6 underlay worst case */
#define ICMP_PER_SECOND 200

/* sendmmsg takes at most UIO_MAXIOV messages, and each train's iovecs (up to 3 per segment) must
 * fit one msghdr */
_Static_assert(SEG_CAP <= 1024 && TRAIN_MAX_SEGS * 3 <= 1024, "UIO_MAXIOV");

struct train {
  uint32_t peer, flow;
  uint16_t seg_size;
  uint16_t nseg;
  uint32_t bytes;
  int closed; /* a shorter segment ended it */
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cmsg;
};

/* Per queue, shared by its two threads under offload_queue.out_lock (offload.h); with reply_queue
 * the inbound thread has a second one for its own TUN queue. */
struct outbound {
  int tun_fd; /* the TUN queue this state reads (and writes ICMP errors to) */
  struct slot *slots;
  size_t lens[DP_BATCH];
  uint8_t *hdrs;
  struct gso_seg segs[SEG_CAP];
  int nseg;
  struct mmsghdr msgs[SEG_CAP];
  struct iovec iov[3 * SEG_CAP];
  uint8_t seg_iovs[3 * SEG_CAP]; /* at a segment's first iovec: how many it has (1 to 3) */
  struct sockaddr_storage names[SEG_CAP];
  struct train trains[SEG_CAP];
  int ntrain, niov;
  int gso; /* UDP_SEGMENT usable: cleared for good when the kernel refuses a train */
  struct wg_state *wg; /* encrypted mode, else NULL */
  struct aead *aead; /* encrypted mode: this queue's cipher context (used under out_lock) */
  uint8_t *tails;    /* encrypted mode: SEG_CAP × WG_TAIL_BYTES, each segment's padding + tag */
  uint8_t icmp[1500];
  uint64_t icmp_window, icmp_in_window;
};

static uint32_t flow_hash(const uint8_t *p, size_t len) {
  int v4 = (p[0] >> 4) == 4;
  size_t l4 = v4 ? (size_t)(p[0] & 0x0f) * 4 : 40;
  uint8_t proto = v4 ? p[9] : p[6];
  uint32_t h = 2166136261u ^ proto;
  const uint8_t *a = p + (v4 ? 12 : 8);
  for (int i = 0; i < (v4 ? 8 : 32); i++) h = (h ^ a[i]) * 16777619u;
  if ((proto == 6 || proto == 17) && len >= l4 + 4)
    for (size_t i = 0; i < 4; i++) h = (h ^ p[l4 + i]) * 16777619u;
  return h;
}

/* Appends one segment (1 to 3 pieces) for a peer at endpoint ep to the pending trains. */
static void add_segment(struct outbound *o, const struct iovec *parts, int nparts, uint32_t peer_id,
                        const struct sockaddr_storage *ep, socklen_t ep_len, uint32_t flow) {
  uint32_t size = 0;
  for (int k = 0; k < nparts; k++) size += (uint32_t)parts[k].iov_len;
  struct train *t = o->ntrain ? &o->trains[o->ntrain - 1] : NULL;
  int join = o->gso && t && t->peer == peer_id && t->flow == flow && !t->closed && t->nseg < TRAIN_MAX_SEGS &&
             size <= t->seg_size && t->bytes + size <= TRAIN_MAX_BYTES;
  if (!join) {
    int m = o->ntrain++;
    t = &o->trains[m];
    *t = (struct train){.peer = peer_id, .flow = flow, .seg_size = (uint16_t)size};
    memcpy(&o->names[m], ep, ep_len);
    o->msgs[m].msg_hdr = (struct msghdr){
        .msg_name = &o->names[m], .msg_namelen = ep_len, .msg_iov = &o->iov[o->niov], .msg_iovlen = 0};
  }
  struct msghdr *mh = &o->msgs[t - o->trains].msg_hdr;
  o->seg_iovs[o->niov] = (uint8_t)nparts;
  for (int k = 0; k < nparts; k++) o->iov[o->niov++] = parts[k];
  mh->msg_iovlen += (size_t)nparts;
  t->nseg++;
  t->bytes += size;
  if (size < t->seg_size) t->closed = 1;
}

/* Encrypted mode, between split (2) and grouping (4): seals each segment in place (wg-data.c),
 * giving [transport header + headers][payload][padding + tag]. Equal plaintext sizes seal to
 * equal sizes, so trains still hold. A segment without a session is staged or dropped (counted). */
static void seal_segments(struct dp_queue *q, struct outbound *o, struct gso_seg *segs, int n, uint32_t peer_id,
                          uint32_t flow) {
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  uint64_t now = wg_now_ms();
  struct sockaddr_storage ep;
  socklen_t ep_len = wg_peer_endpoint(dp, peer_id, &ep);
  for (int i = 0; i < n; i++) {
    struct gso_seg *s = &segs[i];
    uint8_t *tail = o->tails + (size_t)(s - o->segs) * WG_TAIL_BYTES;
    size_t tl = 0;
    switch (wg_seal_parts(dp, o->aead, peer_id, s->hdr, s->hdr_len, (uint8_t *)s->data, s->data_len, tail, &tl, now, c)) {
    case WG_OUT_SEND: break;
    case WG_OUT_STAGED: cadd(c, TC_OUT_WG_STAGED, 1); continue;
    case WG_OUT_STAGE_FULL:
      cadd(c, TC_OUT_DROP_STAGE_FULL, 1);
      peer_drop(q->pcs, q->index, peer_id, PC_OUT_DROP_STAGE_FULL, 1);
      continue;
    }
    struct iovec parts[3] = {{s->hdr - WG_HEADER, WG_HEADER + (size_t)s->hdr_len}, {(void *)s->data, s->data_len}, {tail, tl}};
    if (!s->data_len) parts[1] = parts[2];
    add_segment(o, parts, s->data_len ? 3 : 2, peer_id, &ep, ep_len, flow);
  }
}

/* Sends the pending trains; returns nothing, counts everything. */
static void flush(struct dp_queue *q, struct outbound *o) {
  uint64_t *c = q->counters;
  uint64_t sent = 0, sent_bytes = 0, errors = 0, sends = 0, fallbacks = 0;
  for (int m = 0; m < o->ntrain; m++) {
    struct train *t = &o->trains[m];
    struct msghdr *mh = &o->msgs[m].msg_hdr;
    if (t->nseg > 1) {
      struct cmsghdr *cm = (struct cmsghdr *)t->cmsg.buf;
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      memcpy(CMSG_DATA(cm), &t->seg_size, sizeof(uint16_t));
      mh->msg_control = t->cmsg.buf;
      mh->msg_controllen = sizeof(t->cmsg.buf);
    } else {
      mh->msg_control = NULL;
      mh->msg_controllen = 0;
    }
  }
  for (int at = 0; at < o->ntrain;) {
    int end = dp_send_run_end(q->dp, o->msgs, at, o->ntrain); /* split mode: one socket per underlay family */
    int fd = dp_send_fd(q, ((struct sockaddr *)o->msgs[at].msg_hdr.msg_name)->sa_family);
    int r = sendmmsg(fd, o->msgs + at, (unsigned)(end - at), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      struct train *t = &o->trains[at];
      struct msghdr *mh = &o->msgs[at].msg_hdr;
      /* EMSGSIZE: a segment plus headers exceeds the path MTU (EINVAL before Linux 6.x); EIO: no
       * checksum offload on the way out; the others: no UDP GSO at all */
      if (t->nseg > 1 && (errno == EMSGSIZE || errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT)) {
        /* the kernel will not segment this train: send it datagram by datagram from now on */
        o->gso = 0;
        fallbacks++;
        struct iovec *iv = mh->msg_iov;
        size_t left = mh->msg_iovlen;
        while (left) {
          size_t n = o->seg_iovs[iv - o->iov], len = 0;
          for (size_t k = 0; k < n; k++) len += iv[k].iov_len;
          struct msghdr one = {.msg_name = mh->msg_name, .msg_namelen = mh->msg_namelen, .msg_iov = iv, .msg_iovlen = n};
          if (sendmsg(fd, &one, 0) >= 0) sent++, sent_bytes += len, sends++, peer_count(q->pcs, q->index, t->peer, PC_TX_PACKETS, 1, len);
          else errors++, peer_drop(q->pcs, q->index, t->peer, PC_OUT_DROP_SEND_ERROR, 1);
          iv += n;
          left -= n;
        }
      } else {
        errors += t->nseg; /* unreachable, too big, ...: the train is lost */
        peer_drop(q->pcs, q->index, t->peer, PC_OUT_DROP_SEND_ERROR, t->nseg);
      }
      at++;
      continue;
    }
    for (int j = at; j < at + r; j++) {
      struct train *t = &o->trains[j];
      sent += t->nseg, sent_bytes += t->bytes;
      peer_count(q->pcs, q->index, t->peer, PC_TX_PACKETS, t->nseg, t->bytes);
    }
    sends += (uint64_t)r;
    at += r;
  }
  cadd(c, TC_OUT_SENT_PACKETS, sent);
  cadd(c, TC_OUT_SENT_BYTES, sent_bytes);
  cadd(c, TC_OUT_DROP_SEND_ERROR, errors);
  cadd(c, TC_OUT_UDP_SENDS, sends);
  cadd(c, TC_OUT_GSO_FALLBACKS, fallbacks);
  o->ntrain = o->niov = o->nseg = 0;
}

static uint64_t now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec;
}

static void no_route(struct dp_queue *q, struct outbound *o, const uint8_t *pkt, size_t len, const struct ip_view *v) {
  struct dataplane *dp = q->dp;
  uint64_t s = now_sec();
  if (s != o->icmp_window) o->icmp_window = s, o->icmp_in_window = 0;
  if (o->icmp_in_window >= ICMP_PER_SECOND) return;
  size_t il = icmp_net_unreachable(pkt, len, v, o->icmp + VNET_HDR_LEN);
  if (!il) return;
  memset(o->icmp, 0, VNET_HDR_LEN);
  size_t vl = (size_t)dp->offload.vnet_len;
  if (write(o->tun_fd, o->icmp + VNET_HDR_LEN - vl, il + vl) == (ssize_t)(il + vl)) {
    o->icmp_in_window++;
    cadd(q->counters, TC_OUT_ICMP_UNREACHABLE, 1);
  }
}

/* A flush in the middle of a batch (segments ran out): not under the table lock, so a blocking
 * send never holds up a command. Pending trains carry copies of their addresses. */
static void flush_mid_batch(struct dp_queue *q, struct outbound *o) {
  pthread_rwlock_unlock(&q->dp->lock);
  flush(q, o);
  pthread_rwlock_rdlock(&q->dp->lock);
}

/* Stages 3-4 for segs[0..n) of one read, already split into o->segs at o->nseg: route (again
 * after every flush: the read lock was let go), then seal or queue them on trains. Returns 0
 * when there is no route (the segments are counted as dropped, an ICMP error goes back once). */
static int route_segments(struct dp_queue *q, struct outbound *o, uint8_t *pkt, size_t len, const struct ip_view *v,
                          struct gso_seg *segs, int n, int icmp) {
  struct dataplane *dp = q->dp;
  uint32_t peer_id = rt_lookup(&dp->routes, v->family, v->dst);
  struct dp_peer *p = peer_get(dp, peer_id);
  if (!p) {
    cadd(q->counters, TC_OUT_DROP_NO_ROUTE, (uint64_t)n);
    if (icmp) no_route(q, o, pkt, len, v);
    return 0;
  }
  uint32_t flow = flow_hash(pkt, len);
  o->nseg += n;
  if (dp->wg) {
    seal_segments(q, o, segs, n, peer_id, flow);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    struct iovec parts[2] = {{segs[i].hdr, segs[i].hdr_len}, {(void *)segs[i].data, segs[i].data_len}};
    add_segment(o, parts, segs[i].data_len ? 2 : 1, peer_id, &p->ep, p->ep_len, flow);
  }
  return 1;
}

static void count_read(uint64_t *c, const struct gso_seg *segs, int n) {
  uint64_t bytes = 0;
  for (int i = 0; i < n; i++) bytes += (uint64_t)segs[i].hdr_len + segs[i].data_len;
  cadd(c, TC_OUT_PACKETS, (uint64_t)n);
  cadd(c, TC_OUT_BYTES, bytes);
}

/* Stages 2-4 for one read: pkt (len bytes) preceded by its virtio-net header when vnet.
 * Called under the table's read lock. The segment area holds SEG_CAP segments: a super-packet
 * that needs more (a small gso_size) is split piece by piece, the area flushed in between. */
static void process(struct dp_queue *q, struct outbound *o, uint8_t *pkt, size_t len) {
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  struct vnet_hdr h = {0};
  if (dp->offload.vnet_len) vnet_decode(pkt - dp->offload.vnet_len, &h);
  int type = h.gso_type & ~VNET_GSO_ECN;
  if (type == VNET_GSO_NONE && (h.flags & VNET_F_NEEDS_CSUM)) {
    if (gso_complete_csum(pkt, len, &h) < 0) {
      cadd(c, TC_OUT_DROP_BAD_VNET, 1);
      return;
    }
    cadd(c, TC_OUT_CSUM_COMPLETED, 1);
  }
  struct ip_view v;
  /* a segment's length is 16 bits (struct gso_seg, train sizes): a longer read is no IP packet */
  if (len > UINT16_MAX || ip_parse(pkt, len, &v) != 0) {
    cadd(c, TC_OUT_PACKETS, 1);
    cadd(c, TC_OUT_BYTES, len);
    cadd(c, TC_OUT_DROP_MALFORMED, 1);
    return;
  }
  if (type == VNET_GSO_NONE) {
    if (o->nseg == SEG_CAP) flush_mid_batch(q, o);
    struct gso_seg *seg = &o->segs[o->nseg];
    *seg = (struct gso_seg){.hdr = pkt, .hdr_len = (uint16_t)len, .data = NULL, .data_len = 0};
    count_read(c, seg, 1);
    route_segments(q, o, pkt, len, &v, seg, 1, 1);
    return;
  }
  for (int first = 0, total = 1; first < total;) {
    if (o->nseg == SEG_CAP) flush_mid_batch(q, o);
    struct gso_seg *segs = &o->segs[o->nseg];
    int n = gso_split_from(pkt, len, &h, first, o->hdrs + (size_t)o->nseg * HDR_STRIDE + DP_HEADROOM, HDR_STRIDE, segs,
                           SEG_CAP - o->nseg, &total);
    if (n < 0) { /* only the first piece can fail: the header is checked before anything is written */
      cadd(c, TC_OUT_DROP_BAD_VNET, 1);
      return;
    }
    if (first == 0) cadd(c, TC_OUT_GSO_SPLITS, 1);
    count_read(c, segs, n);
    if (!route_segments(q, o, pkt, len, &v, segs, n, first == 0)) {
      if (first + n < total) cadd(c, TC_OUT_PACKETS, (uint64_t)(total - first - n)), cadd(c, TC_OUT_DROP_NO_ROUTE, (uint64_t)(total - first - n));
      return;
    }
    first += n;
  }
}

struct outbound *outbound_new(const struct dataplane *dp, int tun_fd) {
  struct outbound *o = calloc(1, sizeof(*o));
  if (!o || !(o->slots = alloc_slots()) || !(o->hdrs = malloc((size_t)SEG_CAP * HDR_STRIDE))) {
    outbound_free(o);
    return NULL;
  }
  o->tun_fd = tun_fd;
  o->gso = dp->offload.gso;
  o->wg = dp->wg;
  if (dp->wg && (!(o->aead = wg_aead_new(dp->wg)) || !(o->tails = malloc((size_t)SEG_CAP * WG_TAIL_BYTES)))) {
    outbound_free(o);
    return NULL;
  }
  return o;
}

void outbound_free(struct outbound *o) {
  if (!o) return;
  free(o->slots);
  free(o->hdrs);
  if (o->wg) wg_aead_free(o->wg, o->aead);
  free(o->tails);
  free(o);
}

long outbound_drain(struct dp_queue *q, struct outbound *o, int max_batches) {
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  size_t vl = (size_t)dp->offload.vnet_len;
  long total = 0;
  for (int b = 0; b < max_batches; b++) { /* 1. drain the TUN, a batch at a time */
    if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) break;
    int n = 0;
    while (n < DP_BATCH) {
      ssize_t r = read(o->tun_fd, o->slots[n].buf + DP_HEADROOM - vl, DP_BUF_SIZE - DP_HEADROOM + vl);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && n == 0 && max_batches > 1) usleep(10000); /* device gone or broken: do not spin */
        break;
      }
      if ((size_t)r <= vl) continue;
      o->lens[n++] = (size_t)r - vl;
    }
    if (n == 0) break;
    total += n;
    cadd(c, TC_OUT_TUN_READS, (uint64_t)n);
    if (o->tun_fd == q->reply_fd) cadd(c, TC_OUT_REPLY_QUEUE_READS, (uint64_t)n);
    cadd(c, TC_OUT_BATCHES, 1);
    /* 2-4, under the read lock; a flush may happen in the middle when segments run out */
    pthread_rwlock_rdlock(&dp->lock);
    for (int i = 0; i < n; i++) process(q, o, o->slots[i].buf + DP_HEADROOM, o->lens[i]);
    pthread_rwlock_unlock(&dp->lock);
    flush(q, o); /* 5. */
    if (n < DP_BATCH) break;
  }
  return total;
}

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* After a small batch went out: stay awake up to spin_us for what comes next (offload.h). */
static void spin_for_answer(struct dp_queue *q, struct offload_queue *oq, uint64_t spin_ns) {
  struct dataplane *dp = q->dp;
  struct pollfd p[2] = {{.fd = q->tun_fd, .events = POLLIN}, {.fd = q->udp_fd, .events = POLLIN}};
  uint64_t until = mono_ns() + spin_ns;
  do {
    if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) return;
    if (poll(p, 2, 0) <= 0) continue;
    if (p[0].revents) return; /* more to send: the thread's loop takes it without sleeping */
    if (!(p[1].revents & (POLLIN | POLLERR))) return;
    if (pthread_mutex_trylock(&oq->in_lock) != 0) return; /* the inbound thread is at it */
    if (oq->in) cadd(q->counters, TC_IN_SPIN_RECEIVES, (uint64_t)(inbound_drain(q, oq->in, 1) > 0)); /* written under in_lock */
    pthread_mutex_unlock(&oq->in_lock);
    return;
  } while (mono_ns() < until);
}

void *outbound_offload_thread(void *arg) {
  struct dp_queue *q = arg;
  struct offload_queue *oq = q->oq;
  dp_thread_started(q, oq && oq->out, "outbound"); /* its buffers: offload_setup_queue */
  if (!oq || !oq->out) return NULL;
  uint64_t spin_ns = (uint64_t)q->dp->offload.spin_us * 1000u;
  while (wait_readable(q->dp, q->tun_fd)) {
    pthread_mutex_lock(&oq->out_lock);
    long reads = outbound_drain(q, oq->out, 1 << 30);
    pthread_mutex_unlock(&oq->out_lock);
    if (spin_ns && reads > 0 && reads <= SPIN_MAX_READS) spin_for_answer(q, oq, spin_ns);
  }
  return NULL;
}
