#include "dataplane.h"
#include "offload.h"
#include "vnet.h"
#include <stdlib.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_tun.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

int offload_tun_flags(const struct dataplane *dp) {
  if (!dp->opt.offload.enabled) return 0;
  int mq = dp->opt.offload.reply_queue ? IFF_MULTI_QUEUE : 0; /* reply_fd: a second queue */
  if (dp->q[0].tun_fd >= 0) return mq | (dp->offload.vnet_len ? IFF_VNET_HDR : 0); /* follow queue 0 */
  return mq | IFF_VNET_HDR;
}

static unsigned tun_bits(const struct dp_offload_state *s) {
  return (s->csum ? TUN_F_CSUM : 0) | (s->tso ? TUN_F_TSO4 | TUN_F_TSO6 : 0) | (s->uso ? TUN_F_USO4 | TUN_F_USO6 : 0);
}

void offload_free_queue(struct dp_queue *q) {
  if (!q->oq) return;
  outbound_free(q->oq->out);
  pthread_mutex_destroy(&q->oq->out_lock);
  pthread_mutex_destroy(&q->oq->in_lock);
  free(q->oq);
  q->oq = NULL;
}

void offload_setup_queue(struct dataplane *dp, struct dp_queue *q) {
  const struct dp_offload *want = &dp->opt.offload;
  struct dp_offload_state *s = &dp->offload;
  if (!want->enabled) return;
  if ((q->oq = calloc(1, sizeof(*q->oq)))) {
    pthread_mutex_init(&q->oq->out_lock, NULL);
    pthread_mutex_init(&q->oq->in_lock, NULL);
  }
  if (q->index == 0) {
    s->csum = want->csum; /* TSO and USO need CSUM */
    s->tso = want->csum && want->tso;
    s->uso = want->csum && want->uso;
    if (s->vnet_len) {
      /* most to least: TSO needs CSUM; USO is newest (Linux 6.2) */
      while (ioctl(q->tun_fd, TUNSETOFFLOAD, tun_bits(s)) < 0) {
        if (s->uso) s->uso = 0;
        else if (s->tso) s->tso = 0;
        else if (s->csum) s->csum = 0;
        else break;
      }
    } else {
      s->csum = s->tso = s->uso = 0;
    }
    int zero = 0, one = 1;
    s->gso = want->gso && setsockopt(q->udp_fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
    s->gro = want->gro && setsockopt(q->udp_fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
    s->coalesce_tcp = want->coalesce && s->vnet_len > 0;
    s->coalesce_udp = s->coalesce_tcp && s->uso;
    s->inline_replies = want->inline_replies;
    s->spin_us = want->spin_us;
    s->reply_queue = want->reply_queue && q->reply_fd >= 0;
    if (q->oq) q->oq->out = outbound_new(dp, q->tun_fd); /* after s->gso is known */
    return;
  }
  if (q->oq) q->oq->out = outbound_new(dp, q->tun_fd);
  if (s->vnet_len) (void)ioctl(q->tun_fd, TUNSETOFFLOAD, tun_bits(s));
  int one = 1;
  if (s->gro) (void)setsockopt(q->udp_fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
}
