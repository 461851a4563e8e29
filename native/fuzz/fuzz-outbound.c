/*
 * Target `outbound`: the real send loops (outbound-offload.c: virtio-net header, partial checksum,
 * GSO split, route, UDP_SEGMENT trains, the GSO fallback; outbound.c without offloads; plain and
 * encrypted mode) on a fake TUN and socket, end to end: TUN reads in, datagrams and ICMP errors
 * out. Checked: every datagram goes to the endpoint of the peer owning the inner destination, holds
 * (encrypted: seals with that peer's session, counter in order) exactly the segments of the reads
 * routed to that peer, each once and in order within its flow; trains are equal-sized segments
 * but the last; ICMP errors written back are well-formed.
 *
 * Input: [mode u8][mtu u8] then records ([len u16][body]): one TUN read each, [vnet 10][packet]
 * (without a virtio-net header the first 10 bytes are ignored).
 * mode: 1 encrypted, 2 IPv6 socket, 4 plain loop (no offloads), 8 no virtio-net header,
 *       16 no UDP_SEGMENT, 32 the kernel refuses trains (EIO: sent one by one)
 */
#include "common.h"
#include "fake-dp.h"
#include "fake-io.h"
#include "model.h"
#include "aead.h"
#include "gso.h"
#include "loop.h"
#include "offload.h"
#include <errno.h>

#define HEAD 2

static struct aead *peer_aead;
static struct pkt_list want[FDP_PEERS], got[FDP_PEERS];

static int peer_of(const struct dataplane *dp, const struct sockaddr_storage *a, socklen_t al) {
  for (int p = 0; p < FDP_PEERS; p++) {
    struct sockaddr_storage e;
    socklen_t el = fdp_peer_addr(dp, p, &e);
    if (el == al && !memcmp(&e, a, el)) return p;
  }
  return -1;
}

/* Expected segments of one TUN read (model of stages 1-3; gso_split itself is the gso target's). */
static void expect_read(const struct dataplane *dp, const uint8_t *b, size_t n) {
  /* the loop splits a super-packet of any number of segments (gso_size 1: 65k of them) */
  static uint8_t pkt[70000], hdrs[70000 * GSO_MAX_HDR], seg[70000];
  static struct gso_seg segs[70000];
  size_t vl = (size_t)dp->offload.vnet_len;
  if (n <= vl) return;
  struct vnet_hdr h = {0};
  if (vl) vnet_decode(b, &h);
  size_t len = n - vl;
  memcpy(pkt, b + vl, len);
  int type = h.gso_type & ~VNET_GSO_ECN;
  if (type == VNET_GSO_NONE && (h.flags & VNET_F_NEEDS_CSUM) && gso_complete_csum(pkt, len, &h) < 0) return;
  if (!model_ip_ok(pkt, len)) return;
  int fam = pkt[0] >> 4, p = fdp_route(fam, pkt + (fam == 4 ? 16 : 24));
  if (p < 0) return;
  if (type == VNET_GSO_NONE) {
    pl_push(&want[p], pkt, len);
    return;
  }
  int k = gso_split(pkt, len, &h, hdrs, GSO_MAX_HDR, segs, 70000);
  for (int i = 0; i < k; i++) {
    memcpy(seg, segs[i].hdr, segs[i].hdr_len);
    memcpy(seg + segs[i].hdr_len, segs[i].data, segs[i].data_len);
    pl_push(&want[p], seg, (size_t)segs[i].hdr_len + segs[i].data_len);
  }
}

static void datagram(const struct dataplane *dp, int p, const uint8_t *d, size_t n, uint64_t *ctr) {
  if (!dp->wg) {
    pl_push(&got[p], d, n);
    return;
  }
  static uint8_t plain[70000];
  FUZZ_ASSERT(n >= 32 && d[0] == 4 && !d[1] && !d[2] && !d[3] && rd32le(d + 4) == 0x200u + (uint32_t)p, "not a transport message for peer %d", p);
  uint64_t c = 0;
  for (int i = 0; i < 8; i++) c |= (uint64_t)d[8 + i] << (8 * i);
  FUZZ_ASSERT(c == ctr[p], "peer %d: counter %llu, expected %llu", p, (unsigned long long)c, (unsigned long long)ctr[p]);
  ctr[p]++;
  uint8_t key[32];
  fdp_key(p, 1, key);
  memcpy(plain, d + 16, n - 16);
  FUZZ_ASSERT(aead_open(peer_aead, 500u + (uint64_t)p, key, c, plain, n - 32) == 0, "peer %d cannot open its message", p);
  size_t clen = n - 32, il = 0;
  if (clen >= 20 && plain[0] >> 4 == 4) il = rd16(plain + 2);
  else if (clen >= 40 && plain[0] >> 4 == 6) il = 40 + (size_t)rd16(plain + 4);
  FUZZ_ASSERT(il && il <= clen, "sealed plaintext is no IP packet");
  for (size_t i = il; i < clen; i++) FUZZ_ASSERT(!plain[i], "padding not zero");
  pl_push(&got[p], plain, il);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD) return 0;
  if (!peer_aead && !(peer_aead = aead_new())) abort();
  uint8_t mode = data[0];
  struct fdp_config cfg = {.encrypted = mode & 1, .sock6 = (mode & 2) != 0, .offload = !(mode & 4), .vnet = !(mode & 8),
                           .gso = !(mode & 16), .gro = 1, .coalesce_tcp = 1, .coalesce_udp = 1};
  cfg.mtu = data[1] == 0 ? 1420 : 576 + data[1] * 32;
  struct dataplane *dp = fdp_new(&cfg);
  fake_reset();
  fake_send_errno = mode & 32 ? EIO : 0;
  for (int p = 0; p < FDP_PEERS; p++) pl_clear(&want[p]), pl_clear(&got[p]);
  static struct rec recs[MAX_RECS];
  size_t n = recs_parse(data, size, HEAD, recs, MAX_RECS);
  size_t vl = (size_t)dp->offload.vnet_len;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *b = recs[i].p;
    size_t len = recs[i].len;
    if (len < VNET_HDR_LEN) continue;
    b += VNET_HDR_LEN - vl, len -= VNET_HDR_LEN - vl; /* the header only where the TUN has one */
    fake_push(&fake_tun_in, b, len, NULL, 0, 0);
    if (!cfg.offload && len > DP_BUF_SIZE - DP_HEADROOM - DP_TAILROOM) len = DP_BUF_SIZE - DP_HEADROOM - DP_TAILROOM;
    expect_read(dp, b, len);
  }
  if (cfg.offload) {
    pthread_mutex_lock(&dp->q[0].oq->out_lock);
    outbound_drain(&dp->q[0], dp->q[0].oq->out, 1 << 30);
    pthread_mutex_unlock(&dp->q[0].oq->out_lock);
  } else {
    fake_run(outbound_thread, &dp->q[0], 32 + cfg.encrypted + 2 * cfg.sock6);
  }
  uint64_t ctr[FDP_PEERS] = {1, 1, 1, 1}; /* 0 went out as the keepalive confirming the session */
  uint64_t sent_pkts[FDP_PEERS] = {0}, sent_bytes[FDP_PEERS] = {0};
  for (size_t i = 0; i < fake_udp_out.n; i++) {
    struct fake_msg *m = &fake_udp_out.m[i];
    int p = peer_of(dp, &m->addr, m->addr_len);
    FUZZ_ASSERT(p >= 0, "datagram %zu sent to an address that is no peer's", i);
    sent_pkts[p] += m->seg ? (m->len + m->seg - 1) / m->seg : 1;
    sent_bytes[p] += m->len;
    size_t seg = m->seg ? (size_t)m->seg : m->len;
    FUZZ_ASSERT(!m->seg || m->len > seg, "a train of one segment");
    for (size_t off = 0; off < m->len || (off == 0 && m->len == 0); off += seg) {
      size_t sl = m->len - off < seg ? m->len - off : seg;
      datagram(dp, p, m->data + off, sl, ctr);
      if (!seg) break;
    }
  }
  for (size_t i = 0; i < fake_tun_out.n; i++) { /* ICMP errors back into the TUN */
    struct fake_msg *m = &fake_tun_out.m[i];
    FUZZ_ASSERT(m->len > vl && model_ip_ok(m->data + vl, m->len - vl), "ICMP error %zu malformed", i);
  }
  for (int p = 0; p < FDP_PEERS; p++) model_compare_flows(&got[p], &want[p], "outbound");
  /* the per-peer counters (dataplane.h) count exactly what went out to each peer */
  for (int p = 0; p < FDP_PEERS; p++) {
    uint64_t pk = fdp_peer_counter(dp, (uint32_t)p, PC_TX_PACKETS), by = fdp_peer_counter(dp, (uint32_t)p, PC_TX_BYTES);
    FUZZ_ASSERT(pk == sent_pkts[p] && by == sent_bytes[p], "peer %d: counted %llu datagrams / %llu bytes, sent %llu / %llu", p,
                (unsigned long long)pk, (unsigned long long)by, (unsigned long long)sent_pkts[p], (unsigned long long)sent_bytes[p]);
  }
  /* outbound drops pinned on peers: every send error and full stage is the routed peer's */
  fdp_check_peer_drops(dp, 1u << PC_OUT_DROP_SEND_ERROR | 1u << PC_OUT_DROP_STAGE_FULL);
  fdp_free(dp);
  return 0;
}

static size_t fresh(struct rng *r, uint8_t *out, size_t max) {
  if (max < 9000) return 0;
  struct flow f;
  flow_random(r, &f);
  int p = (int)rng_below(r, FDP_PEERS + 1); /* FDP_PEERS: no route */
  if (f.family == 4) f.dst[2] = (uint8_t)(p + 1);
  else {
    static const uint8_t pre[8] = {0xfd, 0x10, 0x02, 0x44, 0, 0, 0, 0};
    memcpy(f.dst, pre, 8);
    f.dst[5] = (uint8_t)(p + 1);
  }
  size_t hlen = flow_hlen(&f);
  uint32_t gso = 1 + rng_below(r, rng_chance(r, 3) ? 1400 : 200);
  size_t pay = rng_below(r, gso * (1 + rng_below(r, 20)));
  if (hlen + pay + VNET_HDR_LEN > 8000) pay = 8000 - hlen - VNET_HDR_LEN;
  int super = rng_chance(r, 2);
  uint8_t flags = f.proto == 6 ? (uint8_t)(rng_chance(r, 3) ? 0x18 : 0x10) : 0;
  size_t len = build_packet(&f, NULL, pay, (uint32_t)rng_next(r), flags, super || rng_chance(r, 2) ? 2 : 1, out + VNET_HDR_LEN);
  struct vnet_hdr h = {VNET_F_NEEDS_CSUM, (uint8_t)(f.proto == 17 ? VNET_GSO_UDP_L4 : f.family == 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6),
                       (uint16_t)hlen, (uint16_t)gso, (uint16_t)flow_l4(&f), (uint16_t)(f.proto == 6 ? 16 : 6)};
  if (!super) h.gso_type = VNET_GSO_NONE, h.gso_size = 0;
  vnet_encode(out, &h);
  return VNET_HDR_LEN + len;
}

static size_t tweak(struct rng *r, uint8_t *rec, size_t len, size_t cap) {
  if (len < VNET_HDR_LEN + 20) return LLVMFuzzerMutate(rec, len, cap);
  struct vnet_hdr h;
  vnet_decode(rec, &h);
  switch (rng_below(r, 4)) {
  case 0: h.gso_size = (uint16_t)rng_interesting(r, 16); break;
  case 1: h.gso_type = (uint8_t)(const uint8_t[]){0, 1, 3, 4, 5, 0x81}[rng_below(r, 6)]; break;
  case 2: h.csum_start = (uint16_t)rng_below(r, 80), h.csum_offset = (uint16_t)rng_below(r, 20); break;
  default: {
    int bits;
    size_t at = VNET_HDR_LEN + pick_field(r, rec + VNET_HDR_LEN, len - VNET_HDR_LEN, &bits);
    set_field(rec, len, at, bits, rng_interesting(r, bits));
    return len;
  }
  }
  vnet_encode(rec, &h);
  return len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  if (seed % 6 == 0) return LLVMFuzzerMutate(data, size, max);
  return recs_mutate(data, size, max, HEAD, seed, fresh, tweak);
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[1 << 17], store[8][9000];
  struct rec recs[8];
  for (int s = 0; s < 40; s++) {
    struct rng r = {0xb17u + (uint64_t)s};
    uint8_t head[HEAD] = {(uint8_t)(s % 8 | (s % 5 == 4 ? 16 : 0) | (s % 7 == 6 ? 32 : 0)), 0};
    size_t n = 1 + rng_below(&r, 6);
    for (size_t i = 0; i < n; i++) recs[i] = (struct rec){store[i], fresh(&r, store[i], sizeof(store[i]))};
    size_t len = recs_write(buf, sizeof(buf), head, HEAD, recs, n);
    if (len) emit(buf, len);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
