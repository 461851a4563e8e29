/*
 * Target `inbound`: the real receive loops (inbound-offload.c with UDP_GRO trains and userspace
 * GRO, inbound.c without offloads; plain and encrypted mode) on a fake socket and TUN (fake-io.c),
 * end to end: datagrams in, TUN writes out.
 *
 * Input: [mode u8][mtu u8][rsv u16] then records ([len u16][body]), one per sender burst:
 *   body[0] kind: 0 = generated segments, 1 = one raw datagram (body[2..])
 *   body[1] sender: bits 0-2 peer 0..3 or an unknown host (4..7)
 *   generated: [2] segments (0 = 1) [3..4] payload bytes per segment [5] TCP flags [6] knobs
 *              [7] last segment shorter by [8] corrupt segment # [9] corrupt byte # [10..11] counter skip
 *              [12] bursts: the whole train again, this many times (0 = 1), sequence numbers going on
 *              [13..] template: IP + TCP/UDP header of the first segment
 *   knobs: 1 fix lengths and checksums, 2 advance TCP seq, 4 shorten the last, 8 corrupt a byte,
 *          16 encrypted: wrong key, 32 encrypted: replay an old counter, 64 no UDP_GRO train
 * mode: 1 encrypted, 2 IPv6 socket, 4 coalesce TCP, 8 coalesce UDP, 16 no virtio-net header,
 *       32 plain loop (no offloads), 64 no UDP_GRO
 *
 * Checked against a model (model.c and below): exactly the packets that pass the inbound checks
 * reach the TUN, unchanged, each once, in order within their flow; virtio-net headers are right.
 * Unchanged but for one thing (gro.h): with a virtio-net header, a packet whose bytes are vouched
 * for (a UDP_GRO train, an IPv6 peer, encrypted mode) reaches the kernel with its TCP/UDP checksum
 * recomputed (model_vouched), so a sender's bad inner checksum is not caught there; everywhere
 * else a bad one still reaches the kernel as it came.
 * Sanitizers catch the rest (the known links overflow of gro.c is found here).
 */
#include "common.h"
#include "fake-dp.h"
#include "fake-io.h"
#include "model.h"
#include "aead.h"
#include "loop.h"
#include "offload.h"
#include <netinet/in.h>

#define HEAD 4
#define MAX_TRAIN_SEGS 128   /* UDP_MAX_SEGMENTS: what one sender's GSO train can carry */
#define MAX_UDP_PAYLOAD 65507
#define MAX_SEGMENTS_PER_INPUT 8000 /* enough for 64 datagrams of 128 segments */

struct model_state {
  uint64_t next_ctr[FDP_PEERS];
  uint64_t last[FDP_PEERS];
  int any[FDP_PEERS];
  uint8_t *seen[FDP_PEERS]; /* bitmap of accepted counters, by counter (small in this harness) */
};
#define SEEN_BITS (1u << 17)

static struct aead *seal_ctx;
static struct pkt_list want, writes, got;
static uint8_t train[MAX_UDP_PAYLOAD + 64];

static int replay_model(struct model_state *m, int peer, uint64_t c) {
  if (c >= SEEN_BITS) return 0; /* never generated */
  if (m->any[peer] && c <= m->last[peer] && m->last[peer] - c > 8128) return 0;
  if (m->seen[peer][c >> 3] & (1u << (c & 7))) return 0;
  m->seen[peer][c >> 3] |= (uint8_t)(1u << (c & 7));
  if (!m->any[peer] || c > m->last[peer]) m->last[peer] = c;
  m->any[peer] = 1;
  return 1;
}

/* The plain-mode inbound checks (loop.c check_inner), written out again. */
static void expect_plain(const struct dataplane *dp, int sender, const uint8_t *p, size_t len, int truncated) {
  if (sender >= FDP_PEERS || truncated || (int)len > dp->opt.mtu || !model_ip_ok(p, len) || !model_ip4_csum_ok(p)) return;
  int fam = p[0] >> 4;
  if (fdp_route(fam, p + (fam == 4 ? 12 : 8)) == sender) pl_push(&want, p, len);
}

/* Encrypted mode (wg-data.c), for a message this harness sealed (ok = right key, not corrupted). */
static void expect_wg(const struct dataplane *dp, struct model_state *m, int peer, uint64_t ctr, int ok, const uint8_t *plain,
                      size_t clen) {
  if (!ok || !replay_model(m, peer, ctr) || clen == 0) return;
  size_t iplen = 0;
  if (clen >= 20 && plain[0] >> 4 == 4) iplen = rd16(plain + 2);
  else if (clen >= 40 && plain[0] >> 4 == 6) iplen = 40 + (size_t)rd16(plain + 4);
  if (!iplen || iplen > clen || !model_ip_ok(plain, iplen) || (int)iplen > dp->opt.mtu || !model_ip4_csum_ok(plain)) return;
  int fam = plain[0] >> 4;
  if (fdp_route(fam, plain + (fam == 4 ? 12 : 8)) == peer) pl_push(&want, plain, iplen);
}

/* with a virtio-net header, vouched-for packets get their checksums completed (see above) */
static int vouching;

struct train_state {
  size_t len, seg, nseg;
  size_t want_from; /* want's entries from the train's first segment on */
  int sender;
  struct sockaddr_storage from;
  socklen_t from_len;
};

static int outer_v6(const struct sockaddr_storage *a) {
  return a->ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* The kernel verified the outer checksum of a train (it has a UDP_GRO cmsg) and of anything from
 * an IPv6 peer: what plain mode expects from it is vouched for. */
static void vouch_since(size_t from) {
  for (size_t i = from; i < want.n; i++) model_vouched(want.p[i], want.len[i]);
}

static void train_flush(struct train_state *t) {
  if (!t->nseg) return;
  fake_push(&fake_udp_in, train, t->len, &t->from, t->from_len, t->nseg > 1 ? (int)t->seg : 0);
  if (vouching && (t->nseg > 1 || outer_v6(&t->from))) vouch_since(t->want_from);
  t->len = t->nseg = 0;
}

/* Appends one datagram-to-be to the sender's train as the kernel's UDP GRO would: equal sizes,
 * the last may be shorter, at most MAX_TRAIN_SEGS and 64 KB. */
static void train_add(struct train_state *t, const uint8_t *d, size_t len, int gro) {
  if (t->nseg && (!gro || len > t->seg || t->nseg == MAX_TRAIN_SEGS || t->len + len > MAX_UDP_PAYLOAD || t->len % t->seg))
    train_flush(t);
  if (len > MAX_UDP_PAYLOAD) len = MAX_UDP_PAYLOAD;
  if (!t->nseg) t->seg = len, t->want_from = want.n;
  memcpy(train + t->len, d, len);
  t->len += len;
  t->nseg++;
  if (len == 0) train_flush(t);
}

static void gen_record(const struct dataplane *dp, struct model_state *m, const uint8_t *b, size_t n, int gro,
                       struct train_state *t, long *budget) {
  static uint8_t seg[70000], msg[70100];
  int enc = dp->wg != NULL;
  int sender = n > 1 ? b[1] & 7 : 0;
  struct sockaddr_storage from;
  socklen_t fl = fdp_peer_addr(dp, sender, &from);
  if (t->nseg && (t->sender != sender)) train_flush(t);
  t->sender = sender, t->from = from, t->from_len = fl;
  if (n < 2 || b[0] % 2 == 1) { /* raw */
    train_flush(t);
    const uint8_t *d = b + (n < 2 ? n : 2);
    size_t len = n < 2 ? 0 : n - 2;
    fake_push(&fake_udp_in, d, len, &from, fl, 0);
    size_t from_n = want.n;
    if (!enc) expect_plain(dp, sender, d, len, 0);
    if (vouching && outer_v6(&from)) vouch_since(from_n);
    return;
  }
  if (n < 13) return;
  size_t nseg = b[2] ? b[2] : 1, pay = rd16le(b + 3), tpl = n - 13, bursts = b[12] ? b[12] : 1;
  uint8_t flags = b[5], knobs = b[6];
  if (tpl > 120) tpl = 120;
  if (pay > 9000) pay = pay % 9001;
  const uint8_t *tp = b + 13;
  int v4 = tpl >= 20 && tp[0] >> 4 == 4, v6 = tpl >= 40 && tp[0] >> 4 == 6;
  size_t l4 = v4 ? (size_t)(tp[0] & 15) * 4 : 40;
  int tcp = (v4 || v6) && (v4 ? tp[9] : tp[6]) == 6 && tpl >= l4 + 20;
  for (size_t k = 0; k < nseg * bursts && *budget > 0; k++, (*budget)--) {
    size_t plen = pay;
    if ((knobs & 4) && k % nseg == nseg - 1) plen = plen > b[7] ? plen - b[7] : 0;
    memcpy(seg, tp, tpl);
    fill_payload((uint32_t)(k * 2654435761u + pay), seg + tpl, plen);
    size_t len = tpl + plen;
    if (tcp) {
      if (knobs & 2) wr32(seg + l4 + 4, rd32(seg + l4 + 4) + (uint32_t)(k * pay)); /* shortened last: a gap */
      seg[l4 + 13] = flags;
    }
    if (knobs & 1) fix_packet(seg, len);
    int corrupt = (knobs & 8) && k % nseg == b[8] % nseg;
    if (!enc) {
      if (corrupt && len) seg[(size_t)b[9] * 7 % len] ^= 0x5a;
      train_add(t, seg, len, gro);
      expect_plain(dp, sender, seg, len, 0);
      continue;
    }
    if (sender >= FDP_PEERS) continue; /* nobody to seal for */
    uint64_t ctr;
    if ((knobs & 32) && m->next_ctr[sender] > 0) {
      uint64_t back = rd16le(b + 10) + 1u;
      ctr = back > m->next_ctr[sender] ? 0 : m->next_ctr[sender] - back;
    } else {
      ctr = m->next_ctr[sender] + rd16le(b + 10) % 9000;
      if (ctr >= SEEN_BITS) ctr = SEEN_BITS - 1;
      m->next_ctr[sender] = ctr + 1;
    }
    size_t padded = (len + 15) & ~(size_t)15;
    memset(msg, 0, 16 + padded + 16);
    msg[0] = 4;
    wr32le(msg + 4, fdp_local_index(sender));
    for (int i = 0; i < 8; i++) msg[8 + i] = (uint8_t)(ctr >> (8 * i));
    memcpy(msg + 16, seg, len);
    uint8_t key[32];
    int wrong = (knobs & 16) != 0;
    fdp_key(sender, 0, key);
    if (wrong) key[0] ^= 1;
    if (aead_seal(seal_ctx, 100u + (uint64_t)sender * 2 + (uint64_t)wrong, key, ctr, msg + 16, padded) != 0) abort();
    size_t mlen = 16 + padded + 16;
    if (corrupt) msg[(size_t)b[9] * 7 % mlen] ^= 0x5a;
    memset(seg + len, 0, padded - len);
    train_add(t, msg, mlen, gro);
    expect_wg(dp, m, sender, ctr, !wrong && !corrupt, seg, padded);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD) return 0;
  if (!seal_ctx && !(seal_ctx = aead_new())) abort();
  uint8_t mode = data[0];
  struct fdp_config cfg = {.encrypted = mode & 1, .sock6 = (mode & 2) != 0, .coalesce_tcp = (mode & 4) != 0,
                           .coalesce_udp = (mode & 8) != 0, .vnet = !(mode & 16), .offload = !(mode & 32),
                           .gso = 1, .gro = !(mode & 32) && !(mode & 64)};
  cfg.mtu = data[1] == 0 ? 1420 : 576 + data[1] * 256 > 65535 ? 65535 : 576 + data[1] * 256;
  struct dataplane *dp = fdp_new(&cfg);
  fake_reset();
  pl_clear(&want), pl_clear(&writes), pl_clear(&got);

  static struct rec recs[MAX_RECS];
  size_t n = recs_parse(data, size, HEAD, recs, MAX_RECS);
  struct model_state m = {0};
  for (int i = 0; i < FDP_PEERS; i++)
    if (!(m.seen[i] = calloc(SEEN_BITS / 8, 1))) abort();
  struct train_state t = {0};
  long budget = MAX_SEGMENTS_PER_INPUT;
  /* plain mode vouches train by train (train_flush); encrypted mode for all (the AEAD) */
  vouching = cfg.offload && cfg.vnet && !cfg.encrypted;
  for (size_t i = 0; i < n; i++) gen_record(dp, &m, recs[i].p, recs[i].len, cfg.gro, &t, &budget);
  train_flush(&t);
  if (cfg.offload && cfg.vnet && cfg.encrypted) vouch_since(0);
  for (int i = 0; i < FDP_PEERS; i++) free(m.seen[i]);

  /* one persistent thread per loop and table setting (gro_init reads the coalesce flags once) */
  int key = cfg.encrypted | cfg.sock6 << 1 | cfg.offload << 2 | (dp->offload.coalesce_tcp << 3) | (dp->offload.coalesce_udp << 4) |
            (dp->offload.vnet_len > 0) << 5;
  fake_run(cfg.offload ? inbound_offload_thread : inbound_thread, &dp->q[0], key);

  for (size_t i = 0; i < fake_tun_out.n; i++) pl_push(&writes, fake_tun_out.m[i].data, fake_tun_out.m[i].len);
  model_tun_writes(&writes, cfg.offload && cfg.vnet, &got);
  model_compare_flows(&got, &want, cfg.encrypted ? "inbound (encrypted)" : "inbound (plain)");
  /* plain mode: the per-peer counters (dataplane.h) hold every datagram that passed the checks */
  const uint64_t *c = dp->counters;
  uint64_t rx = 0, rx_bytes = 0;
  for (uint32_t p = 0; p < DP_PC_BLOCK_PEERS; p++)
    rx += fdp_peer_counter(dp, p, PC_RX_PACKETS), rx_bytes += fdp_peer_counter(dp, p, PC_RX_BYTES);
  for (uint32_t p = FDP_PEERS; p < DP_PC_BLOCK_PEERS; p++) FUZZ_ASSERT(!fdp_peer_counter(dp, p, PC_RX_PACKETS), "peer %u is no peer but counted", p);
  /* drops pinned on peers: plain mode checks only datagrams from a peer's address, so every
   * drop by these reasons is some peer's; encrypted mode's session-level ones always are */
  fdp_check_peer_drops(dp, cfg.encrypted ? 1u << PC_IN_DROP_EXPIRED_SESSION | 1u << PC_IN_DROP_DECRYPT | 1u << PC_IN_DROP_REPLAY |
                                               1u << PC_IN_DROP_CRYPTOKEY_ROUTING | 1u << PC_IN_DROP_IP_HEADER_CHECKSUM
                                         : 1u << PC_IN_DROP_SPOOFED_SOURCE | 1u << PC_IN_DROP_MALFORMED | 1u << PC_IN_DROP_OVERSIZED |
                                               1u << PC_IN_DROP_IP_HEADER_CHECKSUM);
  if (!cfg.encrypted) {
    uint64_t passed = c[TC_IN_PACKETS] - c[TC_IN_DROP_UNKNOWN_PEER] - c[TC_IN_DROP_SPOOFED_SOURCE] - c[TC_IN_DROP_MALFORMED] -
                      c[TC_IN_DROP_OVERSIZED] - c[TC_IN_DROP_IP_HEADER_CHECKSUM];
    FUZZ_ASSERT(rx == passed, "per-peer counters hold %llu datagrams, %llu passed the checks", (unsigned long long)rx, (unsigned long long)passed);
  }
  FUZZ_ASSERT(rx_bytes <= c[TC_IN_BYTES], "per-peer bytes %llu over the %llu received", (unsigned long long)rx_bytes, (unsigned long long)c[TC_IN_BYTES]);
  fdp_free(dp);
  return 0;
}

/* ---- structure-aware mutation ---- */

static size_t fresh_record(struct rng *r, uint8_t *out, size_t cap) {
  if (cap < 200) return 0;
  struct flow f;
  flow_random(r, &f);
  int peer = (int)rng_below(r, FDP_PEERS + 1);
  /* a source inside the sender's subnet (else the packet is spoofed) */
  if (f.family == 4) f.src[2] = (uint8_t)(peer + 1);
  else {
    static const uint8_t pre[8] = {0xfd, 0x10, 0x02, 0x44, 0x00, 0x00, 0, 0};
    memcpy(f.src, pre, 8);
    f.src[5] = (uint8_t)(peer + 1);
  }
  out[0] = rng_chance(r, 12) ? 1 : 0;
  out[1] = (uint8_t)peer;
  if (out[0] == 1) { /* a raw packet, or a WireGuard-looking message */
    size_t len = build_packet(&f, NULL, rng_below(r, 200), (uint32_t)rng_next(r), 0x18, 1, out + 2);
    if (rng_chance(r, 3)) {
      static const size_t sizes[4] = {148, 92, 64, 32};
      len = sizes[rng_below(r, 4)];
      memset(out + 2, 0, len);
      out[2] = (uint8_t)(1 + rng_below(r, 4));
    }
    return 2 + len;
  }
  out[2] = (uint8_t)(1 + rng_below(r, rng_chance(r, 4) ? 64 : 8));
  wr16le(out + 3, rng_chance(r, 8) ? 1 + rng_below(r, 1400) : 1 + rng_below(r, 120));
  out[5] = rng_chance(r, 4) ? 0x18 : 0x10;
  out[6] = 1 | 2;
  out[7] = (uint8_t)rng_next(r);
  out[8] = (uint8_t)rng_next(r);
  out[9] = (uint8_t)rng_next(r);
  wr16le(out + 10, 0);
  out[12] = (uint8_t)(1 + rng_below(r, 3));
  size_t hl = build_packet(&f, NULL, 0, 0, 0x10, 1, out + 13);
  return 13 + hl;
}

static size_t tweak_record(struct rng *r, uint8_t *rec, size_t len, size_t cap) {
  if (len < 13 || rec[0] % 2 == 1) {
    if (len > 2 && rng_chance(r, 2)) { /* a field of the raw packet */
      int bits;
      size_t at = 2 + pick_field(r, rec + 2, len - 2, &bits);
      set_field(rec, len, at, bits, rng_interesting(r, bits));
      return len;
    }
    return LLVMFuzzerMutate(rec, len, cap);
  }
  switch (rng_below(r, 7)) {
  case 0: rec[2] = (uint8_t)rng_interesting(r, 8); break; /* segments: up to 255, more than a train holds */
  case 6: rec[12] = (uint8_t)rng_interesting(r, 8); break; /* bursts */
  case 1: wr16le(rec + 3, rng_interesting(r, 11)); break;  /* payload per segment */
  case 2: rec[5] = (uint8_t)(rng_chance(r, 2) ? 0x10 | (rng_next(r) & 0x08) : rng_next(r)); break;
  case 3: rec[6] ^= (uint8_t)(1u << rng_below(r, 7)); break;
  case 4: wr16le(rec + 10, rng_interesting(r, 14)); break;
  default: { /* a header field of the template */
    int bits;
    size_t at = 13 + pick_field(r, rec + 13, len - 13, &bits);
    set_field(rec, len, at, bits, rng_interesting(r, bits));
  }
  }
  return len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  if (seed % 5 == 0) return LLVMFuzzerMutate(data, size, max);
  return recs_mutate(data, size, max, HEAD, seed, fresh_record, tweak_record);
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[1 << 16];
  struct rec recs[16];
  static uint8_t store[16][256];
  for (int s = 0; s < 48; s++) {
    struct rng r = {0x1b0u + (uint64_t)s};
    uint8_t head[HEAD] = {(uint8_t)((s & 1) | (s & 2) | 4 | 8 | (s % 7 == 6 ? 16 : 0) | (s % 11 == 10 ? 32 : 0)), 0, 0, 0};
    size_t n = 1 + rng_below(&r, 4);
    for (size_t i = 0; i < n; i++) recs[i] = (struct rec){store[i], fresh_record(&r, store[i], sizeof(store[i]))};
    size_t len = recs_write(buf, sizeof(buf), head, HEAD, recs, n);
    if (len) emit(buf, len);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
