#include "fake-dp.h"
#include "fake-io.h"
#include "common.h"
#include <arpa/inet.h>

static void cmd_head(uint8_t *r, int op, int size) {
  memset(r, 0, (size_t)size);
  r[0] = (uint8_t)op;
  wr16le(r + 2, (uint32_t)size);
}

const uint8_t *fdp_public_key(void) {
  static uint8_t k[32];
  for (int i = 0; i < 32; i++) k[i] = (uint8_t)(0x11 * i + 7);
  return k;
}

uint32_t fdp_local_index(int peer) { return 0x00010100u * (uint32_t)(peer + 1); }

void fdp_key(int peer, int ours_send, uint8_t out[32]) {
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(0x40 + peer * 7 + i * 13 + (ours_send ? 0x80 : 0));
}

int fdp_route(int family, const uint8_t *a) {
  if (family == 4) return a[0] == 10 && a[1] == 244 && a[2] >= 1 && a[2] <= FDP_PEERS ? a[2] - 1 : -1;
  static const uint8_t pre[5] = {0xfd, 0x10, 0x02, 0x44, 0x00};
  if (memcmp(a, pre, 5) || a[5] < 1 || a[5] > FDP_PEERS) return -1;
  for (int i = 6; i < 8; i++)
    if (a[i]) return -1;
  return a[5] - 1;
}

static void peer_outer(int i, int sock6, int *fam, uint8_t addr[16]) {
  memset(addr, 0, 16);
  if (i == 3 && sock6) {
    *fam = 6;
    addr[0] = 0xfd, addr[15] = 3;
  } else if (i < FDP_PEERS) {
    *fam = 4;
    addr[0] = 198, addr[1] = 18, addr[2] = 0, addr[3] = (uint8_t)(10 + i);
  } else if (i % 2 && sock6) { /* unknown hosts */
    *fam = 6;
    addr[0] = 0xfd, addr[15] = (uint8_t)(0x90 + i);
  } else {
    *fam = 4;
    addr[0] = 198, addr[1] = 18, addr[2] = 0, addr[3] = (uint8_t)(90 + i);
  }
}

socklen_t fdp_peer_addr(const struct dataplane *dp, int i, struct sockaddr_storage *out) {
  int fam;
  uint8_t a[16];
  int sock6 = dp->sock_family == AF_INET6;
  peer_outer(i, sock6, &fam, a);
  memset(out, 0, sizeof(*out));
  uint16_t port = (uint16_t)(51820 + i);
  if (!sock6) {
    struct sockaddr_in *s = (struct sockaddr_in *)out;
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    memcpy(&s->sin_addr, a, 4);
    return sizeof(*s);
  }
  struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  if (fam == 4) {
    s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
    memcpy(s->sin6_addr.s6_addr + 12, a, 4);
  } else {
    memcpy(&s->sin6_addr, a, 16);
  }
  return sizeof(*s);
}

static struct dataplane *create(int encrypted, int sock6) {
  struct dataplane *dp = calloc(1, sizeof(*dp));
  uint64_t *counters = calloc(TULLE_COUNTER_SLOTS, sizeof(uint64_t));
  struct dp_peer_counters *peer_counters = dp_pc_new(1);
  if (!dp || !counters || !peer_counters) abort();
  dp->opt.queues = 1;
  dp->opt.encrypted = encrypted;
  dp->opt.peer_counters = peer_counters; /* blocks made by dp_apply, as in the addon */
  dp->sock_family = sock6 ? AF_INET6 : AF_INET;
  dp->n_queues = 1;
  dp->counters = counters;
  dp->stop_fd = FAKE_STOP;
  for (int i = 0; i < DP_MAX_QUEUES; i++) {
    dp->q[i].dp = dp;
    dp->q[i].index = i;
    dp->q[i].tun_fd = dp->q[i].udp_fd = dp->q[i].reply_fd = -1;
    dp->q[i].counters = counters;
  }
  dp->q[0].tun_fd = FAKE_TUN;
  dp->q[0].udp_fd = FAKE_UDP;
  dp->q[0].pcs = peer_counters; /* queue 0 runs the packet code */
  pthread_rwlock_init(&dp->lock, NULL);
  if (rt_init(&dp->routes) < 0 || rt_init(&dp->peer_addrs) < 0 || rt_init(&dp->addr_owner) < 0) abort();
  if (encrypted && !(dp->wg = wg_new(120000, 180000, fdp_public_key()))) abort();
  return dp;
}

/* The topology again: endpoints (roaming) and sessions (replay windows, counters) start over. */
static void program(struct dataplane *dp) {
  uint8_t cmds[FDP_PEERS * (28 * 3 + 84)], *r = cmds;
  int sock6 = dp->sock_family == AF_INET6;
  for (int i = 0; i < FDP_PEERS; i++) {
    int fam;
    uint8_t a[16];
    peer_outer(i, sock6, &fam, a);
    cmd_head(r, DP_OP_SET_PEER, 28);
    wr32le(r + 4, (uint32_t)i), r[8] = (uint8_t)fam, wr16le(r + 10, 51820u + (uint32_t)i), memcpy(r + 12, a, 16);
    r += 28;
    cmd_head(r, DP_OP_SET_ROUTE, 28);
    wr32le(r + 4, (uint32_t)i), r[8] = 4, r[9] = 24, r[12] = 10, r[13] = 244, r[14] = (uint8_t)(i + 1);
    r += 28;
    cmd_head(r, DP_OP_SET_ROUTE, 28);
    wr32le(r + 4, (uint32_t)i), r[8] = 6, r[9] = 64, r[12] = 0xfd, r[13] = 0x10, r[14] = 0x02, r[15] = 0x44, r[17] = (uint8_t)(i + 1);
    r += 28;
    if (dp->wg) {
      cmd_head(r, DP_OP_INSTALL_SESSION, 84);
      wr32le(r + 4, (uint32_t)i), wr32le(r + 8, fdp_local_index(i)), wr32le(r + 12, 0x200u + (uint32_t)i), r[16] = 1;
      fdp_key(i, 1, r + 20);
      fdp_key(i, 0, r + 52);
      r += 84;
    }
  }
  long bad = dp_apply(dp, cmds, (size_t)(r - cmds));
  if (bad >= 0) {
    fprintf(stderr, "fake data plane: command at %ld refused\n", bad);
    abort();
  }
  if (dp->wg) {
    static uint8_t drain[WG_EVENT_RING * WG_EVENT_RECORD];
    wg_drain_events(dp->wg, drain, WG_EVENT_RING);
    for (int i = 0; i < FDP_PEERS; i++) atomic_store(&dp->wg->peers[i]->need_requested_ms, 0);
    /* rate limits start over too: an input must not depend on the reports of the one before */
    for (int i = 0; i < WG_UNKNOWN_INDEX_SLOTS; i++) atomic_store(&dp->wg->unknown_index_ms[i], 0);
  }
}

static struct dataplane *cache[2][2];

struct dataplane *fdp_new(const struct fdp_config *cfg) {
  struct dataplane **slot = &cache[!!cfg->encrypted][!!cfg->sock6], *dp = *slot;
  if (!dp) dp = *slot = create(cfg->encrypted, cfg->sock6);
  dp->opt.mtu = cfg->mtu;
  dp->opt.offload = (struct dp_offload){cfg->offload, 1, 1, 1, cfg->gso, cfg->gro, cfg->coalesce_tcp || cfg->coalesce_udp, 0};
  int had_gso = dp->offload.gso;
  dp->offload = (struct dp_offload_state){0};
  if (cfg->offload) {
    dp->offload = (struct dp_offload_state){.vnet_len = cfg->vnet ? VNET_HDR_LEN : 0, .csum = cfg->vnet, .tso = cfg->vnet,
                                            .uso = cfg->vnet, .gso = cfg->gso, .gro = cfg->gro,
                                            .coalesce_tcp = cfg->vnet && cfg->coalesce_tcp,
                                            .coalesce_udp = cfg->vnet && cfg->coalesce_udp};
    struct dp_queue *q = &dp->q[0];
    if (!q->oq || cfg->fresh_outbound || had_gso != cfg->gso) { /* outbound state: 5 MB, kept when it can be */
      offload_free_queue(q);
      if (!(q->oq = calloc(1, sizeof(*q->oq)))) abort();
      pthread_mutex_init(&q->oq->out_lock, NULL);
      pthread_mutex_init(&q->oq->in_lock, NULL);
      if (!(q->oq->out = outbound_new(dp, q->tun_fd))) abort();
    }
  }
  memset(dp->counters, 0, TULLE_COUNTER_SLOTS * sizeof(uint64_t));
  atomic_store(&dp->stopping, 0);
  program(dp);
  /* after program(): its session-confirming keepalives are not the harness's traffic */
  /* (the topology's peers are in block 0; ids a harness sets elsewhere start from zero when set) */
  memset(dp->opt.peer_counters->block[0], 0, dp_pc_block_bytes(dp->opt.peer_counters));
  return dp;
}

void fdp_free(struct dataplane *dp) { /* a cached data plane stays for the next input */
  (void)dp;
}

void fdp_destroy(struct dataplane *dp) {
  uint64_t *c = dp->counters;
  struct dp_peer_counters *pcs = dp->opt.peer_counters;
  dp->q[0].tun_fd = dp->q[0].udp_fd = -1;
  dp->stop_fd = -1;
  dp_stop(dp);
  free(c);
  dp_pc_free(pcs);
}

uint64_t fdp_peer_counter(const struct dataplane *dp, uint32_t peer, int slot) {
  const uint64_t *pc = peer_slot(dp->opt.peer_counters, 0, peer);
  return pc ? pc[slot] : 0;
}

int fdp_global_of_peer_counter(int slot) {
  static const char *peer_names[] = {
#define X(id, name) name,
      DP_PEER_COUNTERS(X)
#undef X
  };
  static const char *names[] = {
#define X(id, name) name,
      TULLE_COUNTERS(X)
#undef X
  };
  for (int i = 0; i < TC_COUNT; i++)
    if (!strcmp(names[i], peer_names[slot])) return i;
  return -1;
}

void fdp_check_peer_drops(const struct dataplane *dp, uint32_t exact) {
  for (int r = PC_IN_DROP_SPOOFED_SOURCE; r < PC_COUNT; r++) {
    int g = fdp_global_of_peer_counter(r);
    FUZZ_ASSERT(g >= 0, "per-peer drop reason %d has no global counter of the same name", r);
    uint64_t sum = 0;
    for (uint32_t p = 0; p < DP_PC_BLOCK_PEERS; p++) {
      uint64_t v = fdp_peer_counter(dp, p, r);
      FUZZ_ASSERT(p < FDP_PEERS || !v, "drop reason %d pinned on %u, which is no peer", r, p);
      sum += v;
    }
    uint64_t global = dp->counters[g];
    if (r == PC_OUT_DROP_SEND_ERROR) /* a peer's send errors include the control path's sends to it */
      global += dp->counters[TC_CTL_WG_SEND_ERRORS] + dp->counters[TC_IN_WG_STAGED_SEND_ERRORS];
    if (exact & (1u << r)) FUZZ_ASSERT(sum == global, "drop reason %d: peers hold %llu, global %llu", r, (unsigned long long)sum, (unsigned long long)global);
    else FUZZ_ASSERT(sum <= global, "drop reason %d: peers hold %llu, over the global %llu", r, (unsigned long long)sum, (unsigned long long)global);
  }
}
