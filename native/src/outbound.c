/*
 * Outbound: TUN -> UDP. Stages, in order: drain the TUN a batch at a time -> parse -> route
 * lookup (under the read lock, once per batch) -> sendmmsg to the owning peers; a packet with no
 * route gets an ICMP net-unreachable written back into the TUN (rate-limited).
 */
#include "dataplane.h"
#include "loop.h"
#include "packet.h"
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

void *outbound_thread(void *arg) {
  struct dp_queue *q = arg;
  struct dataplane *dp = q->dp;
  uint64_t *c = q->counters;
  struct slot *slots = alloc_slots();
  struct mmsghdr *msgs = calloc(DP_BATCH, sizeof(*msgs));
  struct iovec *iov = calloc(DP_BATCH, sizeof(*iov));
  struct sockaddr_storage *names = calloc(DP_BATCH, sizeof(*names));
  size_t *lens = calloc(DP_BATCH, sizeof(*lens));
  uint8_t *icmp = malloc(1500);
  uint64_t icmp_window = 0, icmp_sent_in_window = 0;
  if (!slots || !msgs || !iov || !names || !lens || !icmp) goto out;

  while (wait_readable(dp, q->tun_fd)) {
    for (;;) { /* drain the TUN, a batch at a time */
      if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) goto out;
      int n = 0;
      uint64_t bytes = 0;
      while (n < DP_BATCH) {
        ssize_t r = read(q->tun_fd, slots[n].buf + DP_HEADROOM, DP_BUF_SIZE - DP_HEADROOM);
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
      for (int i = 0; i < n; i++) {
        uint8_t *pkt = slots[i].buf + DP_HEADROOM;
        struct ip_view v;
        if (ip_parse(pkt, lens[i], &v) != 0) {
          malformed++;
          continue;
        }
        struct dp_peer *p = peer_get(dp, rt_lookup(&dp->routes, v.family, v.dst));
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
        memcpy(&names[k], &p->ep, p->ep_len);
        iov[k].iov_base = pkt;
        iov[k].iov_len = lens[i];
        msgs[k].msg_hdr = (struct msghdr){
            .msg_name = &names[k], .msg_namelen = p->ep_len, .msg_iov = &iov[k], .msg_iovlen = 1};
        k++;
      }
      pthread_rwlock_unlock(&dp->lock);
      cadd(c, TC_OUT_DROP_NO_ROUTE, no_route);
      cadd(c, TC_OUT_DROP_MALFORMED, malformed);
      cadd(c, TC_OUT_ICMP_UNREACHABLE, icmp_n);

      uint64_t sent = 0, sent_bytes = 0, errors = 0;
      for (int at = 0; at < k;) {
        int r = sendmmsg(q->udp_fd, msgs + at, (unsigned)(k - at), 0);
        if (r < 0) {
          if (errno == EINTR) continue;
          errors++; /* the datagram at `at` failed (unreachable, too big, ...): skip it */
          at++;
          continue;
        }
        for (int j = at; j < at + r; j++) sent_bytes += iov[j].iov_len;
        sent += (uint64_t)r;
        at += r;
      }
      cadd(c, TC_OUT_SENT_PACKETS, sent);
      cadd(c, TC_OUT_SENT_BYTES, sent_bytes);
      cadd(c, TC_OUT_DROP_SEND_ERROR, errors);
      if (n < DP_BATCH) break;
    }
  }
out:
  free(slots);
  free(msgs);
  free(iov);
  free(names);
  free(lens);
  free(icmp);
  return NULL;
}

