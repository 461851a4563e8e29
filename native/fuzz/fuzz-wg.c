/*
 * Target `wg`: encrypted mode's message handling (wg-data.c, wg.c) called directly, against a
 * model: wg_open_datagram on transport messages sealed with the fixed test keys of fake-dp.c and
 * then mutated (type, reserved bytes, receiver index, counter, ciphertext, tag, length, key) and on
 * handshake-sized and raw datagrams -> the exact verdict, the inner packet delivered, replay
 * windows, roaming to the last authenticated source; wg_seal_parts with the plaintext cut into
 * two parts -> a message the peer's key opens to the same bytes, counter in order, padding by the
 * rule; the event ring -> handshake messages drained in order, byte for byte, dropped (and
 * counted) when the ring is full; transport data under an unknown index from a peer's address ->
 * one "unknown index" event per source and WG_UNKNOWN_INDEX_MS (sources hashed with FNV-1a into
 * WG_UNKNOWN_INDEX_SLOTS, as documented in wg-data.c), none for strangers.
 *
 * Input: [ipv6 socket u8][mtu u8] then records ([len u16][body]):
 *   [0] kind: 0 transport from a peer, 1 handshake-sized message, 2 raw, 3 seal, 4 drain events,
 *             5 a burst of identical handshake messages (fills the ring)
 *   [1] peer 0..4 (4: none) and sender address bits, [2] knobs (1 wrong key, 2 corrupt, 4 replay,
 *   8 fix inner lengths), [3] corrupt offset, [4..5] counter skip / cut / count, [6..] payload
 */
#include "common.h"
#include "fake-dp.h"
#include "fake-io.h"
#include "model.h"
#include "aead.h"
#include "loop.h"
#include "blake2s.h"
#include <arpa/inet.h>

#define HEAD 2

static struct aead *peer_aead, *our_aead;
static uint64_t next_ctr[FDP_PEERS], seal_ctr[FDP_PEERS];
static struct replay_model {
  uint64_t last;
  int any;
  uint64_t seen[4096];
  size_t n;
} rm[FDP_PEERS];
static struct sockaddr_storage endpoint[FDP_PEERS];
static uint8_t ring_model[WG_EVENT_RING][WG_EVENT_RECORD];
static size_t ring_head, ring_n;
static uint64_t ring_drops;
static uint64_t unknown_slot_ms[WG_UNKNOWN_INDEX_SLOTS], unknown_reports;
/* per-peer drops (dataplane.h): the peer wg_open_datagram names for the last message, and what
 * each peer must hold by reason */
static uint32_t model_who;
static uint64_t model_drops[FDP_PEERS][PC_COUNT];

static int replay_ok(struct replay_model *m, uint64_t c) {
  if (c >= WG_REJECT_AFTER_MESSAGES) return 0;
  if (m->any && c <= m->last && m->last - c > 8128) return 0;
  for (size_t i = 0; i < m->n; i++)
    if (m->seen[i] == c) return 0;
  if (m->n < 4096) m->seen[m->n++] = c;
  if (!m->any || c > m->last) m->last = c;
  m->any = 1;
  return 1;
}

static int ring_push(int kind, const struct sockaddr_storage *from, const uint8_t *b, size_t n) {
  if (ring_n == WG_EVENT_RING) {
    ring_drops++;
    return 0;
  }
  uint8_t *r = ring_model[(ring_head + ring_n++) % WG_EVENT_RING];
  memset(r, 0, WG_EVENT_RECORD);
  r[0] = (uint8_t)kind;
  wr32le(r + 4, UINT32_MAX);
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *s = (const void *)from;
    r[1] = 4, wr16le(r + 2, ntohs(s->sin_port)), memcpy(r + 8, &s->sin_addr, 4);
  } else {
    const struct sockaddr_in6 *s = (const void *)from;
    int mapped = IN6_IS_ADDR_V4MAPPED(&s->sin6_addr);
    r[1] = mapped ? 4 : 6, wr16le(r + 2, ntohs(s->sin6_port));
    memcpy(r + 8, mapped ? s->sin6_addr.s6_addr + 12 : s->sin6_addr.s6_addr, mapped ? 4 : 16);
  }
  wr16le(r + 24, (uint32_t)n);
  if (n) memcpy(r + 28, b, n);
  return 1;
}

/* the source's address is one of our peers' (any port) */
static int from_peer_address(struct dataplane *dp, const struct sockaddr_storage *from) {
  for (int p = 0; p < FDP_PEERS; p++) {
    struct sockaddr_storage e;
    fdp_peer_addr(dp, p, &e);
    if (e.ss_family == AF_INET ? !memcmp(&((struct sockaddr_in *)&e)->sin_addr, &((const struct sockaddr_in *)from)->sin_addr, 4)
                               : !memcmp(&((struct sockaddr_in6 *)&e)->sin6_addr, &((const struct sockaddr_in6 *)from)->sin6_addr, 16))
      return 1;
  }
  return 0;
}

/* "unknown index" from `from` at `now`: reported when the source is a peer's address and its
 * slot (FNV-1a of the address as the event carries it, then the port low byte, high byte) has
 * not reported within WG_UNKNOWN_INDEX_MS */
static void model_unknown_index(struct dataplane *dp, const struct sockaddr_storage *from, uint64_t now) {
  if (!from_peer_address(dp, from)) return;
  const uint8_t *addr;
  size_t alen;
  uint16_t port;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *s = (const void *)from;
    addr = (const uint8_t *)&s->sin_addr, alen = 4, port = ntohs(s->sin_port);
  } else {
    const struct sockaddr_in6 *s = (const void *)from;
    int mapped = IN6_IS_ADDR_V4MAPPED(&s->sin6_addr);
    addr = s->sin6_addr.s6_addr + (mapped ? 12 : 0), alen = mapped ? 4 : 16, port = ntohs(s->sin6_port);
  }
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < alen; i++) h = (h ^ addr[i]) * 16777619u;
  h = (h ^ (port & 0xffu)) * 16777619u;
  h = (h ^ (uint32_t)(port >> 8)) * 16777619u;
  uint64_t *slot = &unknown_slot_ms[h % WG_UNKNOWN_INDEX_SLOTS];
  if (*slot && now - *slot < WG_UNKNOWN_INDEX_MS) return;
  *slot = now;
  if (ring_push(WG_EV_UNKNOWN_INDEX, from, NULL, 0)) unknown_reports++;
}

/* the peer whose underlay address `from` is (any port), or -1 */
static int peer_at_address(struct dataplane *dp, const struct sockaddr_storage *from) {
  for (int p = 0; p < FDP_PEERS; p++) {
    struct sockaddr_storage e;
    fdp_peer_addr(dp, p, &e);
    if (e.ss_family == AF_INET ? !memcmp(&((struct sockaddr_in *)&e)->sin_addr, &((const struct sockaddr_in *)from)->sin_addr, 4)
                               : !memcmp(&((struct sockaddr_in6 *)&e)->sin6_addr, &((const struct sockaddr_in6 *)from)->sin6_addr, 16))
      return p;
  }
  return -1;
}

/* Which per-peer drop a verdict is (-1: none): the reasons a peer can be blamed for. */
static int model_drop_slot(enum wg_in_verdict v) {
  switch (v) {
  case WG_IN_BAD_MAC1: return PC_IN_DROP_HANDSHAKE_MAC1;
  case WG_IN_NOT_WIREGUARD: return PC_IN_DROP_PLAINTEXT;
  case WG_IN_UNKNOWN_INDEX: return PC_IN_DROP_UNKNOWN_INDEX;
  case WG_IN_EXPIRED: return PC_IN_DROP_EXPIRED_SESSION;
  case WG_IN_DECRYPT: return PC_IN_DROP_DECRYPT;
  case WG_IN_REPLAY: return PC_IN_DROP_REPLAY;
  case WG_IN_MALFORMED: return PC_IN_DROP_MALFORMED;
  case WG_IN_OVERSIZED: return PC_IN_DROP_OVERSIZED;
  case WG_IN_CRYPTOKEY: return PC_IN_DROP_CRYPTOKEY_ROUTING;
  case WG_IN_BAD_IP_CSUM: return PC_IN_DROP_IP_HEADER_CHECKSUM;
  default: return -1;
  }
}

static void compare_peer_drops(struct dataplane *dp) {
  for (int p = 0; p < FDP_PEERS; p++)
    for (int r = PC_IN_DROP_SPOOFED_SOURCE; r < PC_COUNT; r++)
      FUZZ_ASSERT(fdp_peer_counter(dp, (uint32_t)p, r) == model_drops[p][r], "peer %d drop reason %d: %llu, model %llu", p, r,
                  (unsigned long long)fdp_peer_counter(dp, (uint32_t)p, r), (unsigned long long)model_drops[p][r]);
}

static void drain_and_compare(struct dataplane *dp) {
  static uint8_t out[WG_EVENT_RING * WG_EVENT_RECORD];
  uint32_t n = wg_drain_events(dp->wg, out, WG_EVENT_RING);
  FUZZ_ASSERT(n == ring_n, "drained %u events, model %zu", n, ring_n);
  for (uint32_t i = 0; i < n; i++)
    FUZZ_ASSERT(!memcmp(out + (size_t)i * WG_EVENT_RECORD, ring_model[(ring_head + i) % WG_EVENT_RING], WG_EVENT_RECORD),
                "event %u differs", i);
  ring_head = ring_n = 0;
  FUZZ_ASSERT(dp->counters[TC_IN_DROP_HANDSHAKE_QUEUE_FULL] == ring_drops, "ring drops %llu, model %llu",
              (unsigned long long)dp->counters[TC_IN_DROP_HANDSHAKE_QUEUE_FULL], (unsigned long long)ring_drops);
  FUZZ_ASSERT(dp->counters[TC_IN_WG_UNKNOWN_INDEX_REPORTS] == unknown_reports, "unknown-index reports %llu, model %llu",
              (unsigned long long)dp->counters[TC_IN_WG_UNKNOWN_INDEX_REPORTS], (unsigned long long)unknown_reports);
}

static void mac1_key(uint8_t key[32]) {
  uint8_t in[40];
  memcpy(in, "mac1----", 8);
  memcpy(in + 8, fdp_public_key(), 32);
  blake2s(key, 32, NULL, 0, in, sizeof(in));
}

/* mac1 over everything before it (initiation, response: mac1 then mac2 end the message) */
static int mac1_valid(const uint8_t *b, size_t n) {
  uint8_t k[32], m[16];
  mac1_key(k);
  blake2s(m, 16, k, 32, b, n - 32);
  return !memcmp(m, b + n - 32, 16);
}

static void mac1_fill(uint8_t *b, size_t n) {
  uint8_t k[32];
  mac1_key(k);
  blake2s(b + n - 32, 16, k, 32, b, n - 32);
}

static int session_peer(uint32_t idx) {
  for (int p = 0; p < FDP_PEERS; p++)
    if (fdp_local_index(p) == idx) return p;
  return -1;
}

/* What wg_open_datagram must answer for message b (n bytes) from `from`. */
static enum wg_in_verdict model_open(struct dataplane *dp, const struct sockaddr_storage *from, const uint8_t *b, size_t n,
                                     uint64_t now, size_t *deliver_len) {
  static uint8_t copy[70000];
  model_who = UINT32_MAX;
  if (n < 4 || b[1] || b[2] || b[3]) return WG_IN_NOT_WIREGUARD;
  if (b[0] >= 1 && b[0] <= 3) {
    if (n != (b[0] == 1 ? 148u : b[0] == 2 ? 92u : 64u)) return WG_IN_NOT_WIREGUARD;
    if (b[0] == 3) {
      int known = from_peer_address(dp, from);
      if (!known) return WG_IN_COOKIE_STRANGER;
    } else if (!mac1_valid(b, n)) {
      return WG_IN_BAD_MAC1;
    }
    int full = ring_n == WG_EVENT_RING;
    ring_push(WG_EV_HANDSHAKE, from, b, n);
    return full ? WG_IN_HANDSHAKE_DROPPED : WG_IN_HANDSHAKE;
  }
  if (b[0] != 4) return WG_IN_NOT_WIREGUARD;
  if (n < 32) return WG_IN_MALFORMED;
  int p = session_peer(rd32le(b + 4));
  if (p < 0) {
    model_unknown_index(dp, from, now);
    return WG_IN_UNKNOWN_INDEX;
  }
  model_who = (uint32_t)p; /* from here on, drops are the session's peer's */
  uint64_t ctr = 0;
  for (int i = 0; i < 8; i++) ctr |= (uint64_t)b[8 + i] << (8 * i);
  if (ctr >= WG_REJECT_AFTER_MESSAGES) return WG_IN_REPLAY;
  size_t clen = n - 32;
  memcpy(copy, b + 16, n - 16);
  uint8_t key[32];
  fdp_key(p, 0, key);
  if (aead_open(peer_aead, 200u + (uint64_t)p, key, ctr, copy, clen) != 0) return WG_IN_DECRYPT;
  if (!replay_ok(&rm[p], ctr)) return WG_IN_REPLAY;
  memcpy(&endpoint[p], from, sizeof(*from));
  if (clen == 0) return WG_IN_KEEPALIVE;
  size_t iplen = 0;
  if (clen >= 20 && copy[0] >> 4 == 4) iplen = rd16(copy + 2);
  else if (clen >= 40 && copy[0] >> 4 == 6) iplen = 40 + (size_t)rd16(copy + 4);
  if (!iplen || iplen > clen || !model_ip_ok(copy, iplen)) return WG_IN_MALFORMED;
  if ((int)iplen > dp->opt.mtu) return WG_IN_OVERSIZED;
  if (!model_ip4_csum_ok(copy)) return WG_IN_BAD_IP_CSUM;
  int fam = copy[0] >> 4;
  if (fdp_route(fam, copy + (fam == 4 ? 12 : 8)) != p) return WG_IN_CRYPTOKEY;
  *deliver_len = iplen;
  return WG_IN_DELIVER;
}

static void open_one(struct dataplane *dp, const struct sockaddr_storage *from, const uint8_t *b, size_t n) {
  static uint8_t buf[70100], plain[70100];
  memcpy(buf, b, n);
  size_t want_len = 0;
  uint64_t now = wg_now_ms();
  enum wg_in_verdict want = model_open(dp, from, b, n, now, &want_len);
  uint8_t *p = buf;
  size_t len = n;
  uint32_t who = UINT32_MAX;
  enum wg_in_verdict got = wg_open_datagram(dp, our_aead, from, &p, &len, now, dp->counters, &who);
  FUZZ_ASSERT(got == want, "verdict %d, model %d (type %d, %zu bytes)", got, want, b[0], n);
  /* the per-peer counters' attribution: traffic and drops past the session lookup name its peer */
  FUZZ_ASSERT(who == model_who, "peer %u named, model %u (verdict %d)", who, model_who, got);
  wg_count_peer_drop(&dp->q[0], got, who, from);
  int slot = model_drop_slot(want), blamed = model_who != UINT32_MAX ? (int)model_who : peer_at_address(dp, from);
  if (slot >= 0 && blamed >= 0) model_drops[blamed][slot]++;
  if (got != WG_IN_DELIVER) return;
  FUZZ_ASSERT(p == buf + 16 && len == want_len, "delivered %zu bytes at +%td, model %zu at +16", len, p - buf, want_len);
  memcpy(plain, b + 16, n - 16);
  int peer = session_peer(rd32le(b + 4));
  uint8_t key[32];
  fdp_key(peer, 0, key);
  uint64_t ctr = 0;
  for (int i = 0; i < 8; i++) ctr |= (uint64_t)b[8 + i] << (8 * i);
  if (aead_open(peer_aead, 200u + (uint64_t)peer, key, ctr, plain, n - 32) != 0) abort();
  FUZZ_ASSERT(!memcmp(p, plain, len), "delivered bytes differ from the sealed plaintext");
}

static void seal_one(struct dataplane *dp, int peer, const uint8_t *pt, size_t len, size_t cut) {
  static uint8_t hdr[16 + 70000], part2[70000], tail[WG_TAIL_BYTES + 16], msg[70100];
  if (cut > len) cut = len;
  uint8_t *p1 = hdr + 16;
  memcpy(p1, pt, cut);
  memcpy(part2, pt + cut, len - cut);
  size_t tl = 0;
  enum wg_out_verdict v = wg_seal_parts(dp, our_aead, (uint32_t)peer, p1, cut, part2, len - cut, tail, &tl, wg_now_ms(), dp->counters);
  if (peer >= FDP_PEERS) {
    FUZZ_ASSERT(v == WG_OUT_STAGE_FULL, "sealed for a peer that does not exist (%d)", v);
    return;
  }
  FUZZ_ASSERT(v == WG_OUT_SEND, "no message for peer %d with a live session (%d)", peer, v);
  size_t padded = (len + 15) & ~(size_t)15;
  if (padded > (size_t)dp->opt.mtu) padded = len > (size_t)dp->opt.mtu ? len : (size_t)dp->opt.mtu;
  FUZZ_ASSERT(tl == padded - len + 16, "tail %zu bytes for %zu, expected %zu", tl, len, padded - len + 16);
  memcpy(msg, hdr, 16 + cut);
  memcpy(msg + 16 + cut, part2, len - cut);
  memcpy(msg + 16 + len, tail, tl);
  uint64_t ctr = 0;
  for (int i = 0; i < 8; i++) ctr |= (uint64_t)msg[8 + i] << (8 * i);
  FUZZ_ASSERT(msg[0] == 4 && !msg[1] && !msg[2] && !msg[3] && rd32le(msg + 4) == 0x200u + (uint32_t)peer, "header");
  FUZZ_ASSERT(ctr == seal_ctr[peer], "counter %llu, expected %llu", (unsigned long long)ctr, (unsigned long long)seal_ctr[peer]);
  seal_ctr[peer]++;
  uint8_t key[32];
  fdp_key(peer, 1, key);
  FUZZ_ASSERT(aead_open(peer_aead, 300u + (uint64_t)peer, key, ctr, msg + 16, padded) == 0, "the peer cannot open it");
  FUZZ_ASSERT(!memcmp(msg + 16, pt, len), "plaintext differs");
  for (size_t i = len; i < padded; i++) FUZZ_ASSERT(msg[16 + i] == 0, "padding byte %zu not zero", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD) return 0;
  if (!peer_aead && (!(peer_aead = aead_new()) || !(our_aead = aead_new()))) abort();
  struct fdp_config cfg = {.encrypted = 1, .sock6 = data[0] & 1, .mtu = data[1] == 0 ? 1420 : 576 + data[1] * 64};
  struct dataplane *dp = fdp_new(&cfg);
  fake_reset();
  memset(rm, 0, sizeof(rm));
  memset(next_ctr, 0, sizeof(next_ctr));
  for (int p = 0; p < FDP_PEERS; p++) {
    seal_ctr[p] = 1; /* 0 went out as the keepalive confirming the session */
    fdp_peer_addr(dp, p, &endpoint[p]);
  }
  ring_head = ring_n = 0;
  ring_drops = 0;
  memset(unknown_slot_ms, 0, sizeof(unknown_slot_ms));
  unknown_reports = 0;
  memset(model_drops, 0, sizeof(model_drops));
  static struct rec recs[MAX_RECS];
  static uint8_t msg[70100], inner[70000];
  size_t n = recs_parse(data, size, HEAD, recs, MAX_RECS);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *b = recs[i].p;
    size_t len = recs[i].len;
    if (len < 6) continue;
    int peer = b[1] % (FDP_PEERS + 1), knobs = b[2];
    struct sockaddr_storage from;
    fdp_peer_addr(dp, (b[1] >> 3) % 8 < 6 ? peer : 4 + (b[1] >> 3) % 4, &from);
    const uint8_t *pay = b + 6;
    size_t plen = len - 6;
    switch (b[0] % 6) {
    case 0: { /* transport from a peer */
      int p = peer % FDP_PEERS;
      memcpy(inner, pay, plen);
      if (knobs & 8) fix_packet(inner, plen);
      uint64_t ctr = (knobs & 4) && next_ctr[p] ? next_ctr[p] - 1 - rd16le(b + 4) % next_ctr[p] : next_ctr[p] + rd16le(b + 4) % 9000;
      if (!(knobs & 4)) next_ctr[p] = ctr + 1;
      size_t padded = (plen + 15) & ~(size_t)15;
      memset(msg, 0, 32 + padded);
      msg[0] = 4;
      wr32le(msg + 4, fdp_local_index(p));
      for (int k = 0; k < 8; k++) msg[8 + k] = (uint8_t)(ctr >> (8 * k));
      memcpy(msg + 16, inner, plen);
      uint8_t key[32];
      fdp_key(p, 0, key);
      if (knobs & 1) key[5] ^= 0x80;
      if (aead_seal(peer_aead, 400u + (uint64_t)p * 2 + (knobs & 1), key, ctr, msg + 16, padded) != 0) abort();
      size_t mlen = 32 + padded;
      if (knobs & 2) msg[b[3] % mlen] ^= (uint8_t)(1u << (b[3] % 8));
      if (knobs & 16) mlen = b[3] % mlen; /* cut short */
      open_one(dp, &from, msg, mlen);
      break;
    }
    case 1: { /* handshake-sized */
      static const size_t sizes[3] = {148, 92, 64};
      size_t t = b[3] % 3, ml = sizes[t] + ((knobs & 2) ? (size_t)(b[4] % 3) - 1 : 0);
      memset(msg, 0, ml);
      memcpy(msg, pay, plen < ml ? plen : ml);
      msg[0] = (uint8_t)(t + 1), msg[1] = msg[2] = msg[3] = 0;
      if (t < 2 && !(knobs & 1) && ml == sizes[t]) mac1_fill(msg, ml); /* knob 1: a stranger's mac1 */
      open_one(dp, &from, msg, ml);
      break;
    }
    case 2: open_one(dp, &from, pay, plen); break;
    case 3: seal_one(dp, peer, pay, plen, rd16le(b + 4)); break;
    case 4: drain_and_compare(dp); break;
    case 5: { /* the same handshake message many times: the ring fills */
      memset(msg, 0, 148);
      memcpy(msg, pay, plen < 148 ? plen : 148);
      msg[0] = 1, msg[1] = msg[2] = msg[3] = 0;
      if (!(knobs & 1)) mac1_fill(msg, 148);
      for (int k = 0; k < (b[4] | b[5] << 8) % 1500; k++) open_one(dp, &from, msg, 148);
      break;
    }
    }
  }
  drain_and_compare(dp);
  compare_peer_drops(dp);
  /* roaming: each peer is now reached where its last authenticated message came from */
  for (int p = 0; p < FDP_PEERS; p++) {
    struct sockaddr_storage ep;
    socklen_t l = wg_peer_endpoint(dp, (uint32_t)p, &ep);
    size_t cmp = endpoint[p].ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    FUZZ_ASSERT(l == cmp && !memcmp(&ep, &endpoint[p], cmp), "peer %d endpoint not the last authenticated source", p);
  }
  fdp_free(dp);
  return 0;
}

static size_t fresh(struct rng *r, uint8_t *out, size_t cap) {
  if (cap < 1600) return 0;
  uint8_t kind = (uint8_t)(rng_chance(r, 2) ? 0 : rng_below(r, 6));
  int peer = (int)rng_below(r, FDP_PEERS + 1);
  out[0] = kind;
  out[1] = (uint8_t)(peer | (rng_chance(r, 6) ? 0x30 : 0));
  out[2] = (uint8_t)(rng_chance(r, 3) ? 1u << rng_below(r, 5) : 0);
  out[3] = (uint8_t)rng_next(r);
  wr16le(out + 4, kind == 5 ? 1000 + rng_below(r, 200) : rng_chance(r, 2) ? 0 : rng_below(r, 200));
  struct flow f;
  flow_random(r, &f);
  int p = peer % FDP_PEERS;
  if (f.family == 4) f.src[2] = (uint8_t)(p + 1);
  else {
    static const uint8_t pre[8] = {0xfd, 0x10, 0x02, 0x44, 0, 0, 0, 0};
    memcpy(f.src, pre, 8);
    f.src[5] = (uint8_t)(p + 1);
  }
  size_t len = rng_chance(r, 10) ? 0 : build_packet(&f, NULL, rng_below(r, rng_chance(r, 8) ? 1400 : 100), (uint32_t)rng_next(r), 0x18, 1, out + 6);
  return 6 + len;
}

static size_t tweak(struct rng *r, uint8_t *rec, size_t len, size_t cap) {
  if (len < 6) return LLVMFuzzerMutate(rec, len, cap);
  switch (rng_below(r, 4)) {
  case 0: rec[2] ^= (uint8_t)(1u << rng_below(r, 5)); break;
  case 1: rec[3] = (uint8_t)rng_next(r); break;
  case 2: wr16le(rec + 4, rng_interesting(r, 14)); break;
  default:
    if (len > 26) {
      int bits;
      size_t at = 6 + pick_field(r, rec + 6, len - 6, &bits);
      set_field(rec, len, at, bits, rng_interesting(r, bits));
    }
  }
  return len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  if (seed % 6 == 0) return LLVMFuzzerMutate(data, size, max);
  return recs_mutate(data, size, max, HEAD, seed, fresh, tweak);
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[1 << 16], store[16][1600];
  struct rec recs[16];
  for (int s = 0; s < 40; s++) {
    struct rng r = {0x3e0u + (uint64_t)s};
    uint8_t head[HEAD] = {(uint8_t)(s & 1), 0};
    size_t n = 1 + rng_below(&r, 12);
    for (size_t i = 0; i < n; i++) recs[i] = (struct rec){store[i], fresh(&r, store[i], sizeof(store[i]))};
    size_t len = recs_write(buf, sizeof(buf), head, HEAD, recs, n);
    if (len) emit(buf, len);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
