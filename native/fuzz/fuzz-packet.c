/*
 * Target `packet`: the first checks every packet meets. ip_parse (packet.c) against the model of
 * model.c; the ICMP "net unreachable" built for a packet with no route (a well-formed ICMP/ICMPv6
 * error whose checksums verify, addressed back to the sender, quoting the start of the packet,
 * never longer than 1280 bytes, never sent for an ICMP error, a fragment tail or multicast); and
 * the plain-mode inbound checks (loop.c outer_source, outer_known, check_inner) against the fake
 * topology of fake-dp.c, for every kind of sender address the socket can report.
 *
 * Input: [sender u8][mtu u8][truncated u8][packet]. Mutator: a fresh packet (TCP, UDP, ICMP,
 * ICMPv6, fragments, IPv4 options) from one of the peers' subnets, or one header field.
 */
#include "common.h"
#include "fake-dp.h"
#include "model.h"
#include "loop.h"
#include "packet.h"
#include <netinet/in.h>

#define HEAD 3

static void check_icmp(const uint8_t *orig, size_t len, const struct ip_view *v) {
  static uint8_t out[1500];
  memset(out, 0xee, sizeof(out));
  size_t il = icmp_net_unreachable(orig, len, v, out);
  int v4 = v->family == 4;
  size_t ihl = v4 ? (size_t)(orig[0] & 15) * 4 : 40;
  int proto = v4 ? orig[9] : orig[6];
  int frag_tail = v4 && ((orig[6] & 0x1f) || orig[7]);
  int mcast = v4 ? (orig[12] >= 224 || orig[16] >= 224) : (orig[8] == 0xff || orig[24] == 0xff);
  int is_error = v4 ? proto == 1 && len > ihl && orig[ihl] != 0 && orig[ihl] != 8 && orig[ihl] != 13 && orig[ihl] != 14
                    : proto == 58 && len > 40 && orig[40] < 128;
  FUZZ_ASSERT(il <= 1280, "ICMP error of %zu bytes", il);
  FUZZ_ASSERT(out[il] == 0xee || il == 0, "ICMP builder wrote past its %zu bytes", il);
  if (frag_tail || mcast || is_error) {
    FUZZ_ASSERT(il == 0, "ICMP error sent for a fragment tail, multicast or an ICMP error (%zu bytes)", il);
    return;
  }
  FUZZ_ASSERT(il > 0, "no ICMP error for a %zu-byte unicast packet", len);
  FUZZ_ASSERT(model_ip_ok(out, il), "ICMP error: IP header does not describe its %zu bytes", il);
  size_t hl = v4 ? 28 : 48, quote = il - hl;
  FUZZ_ASSERT(quote <= len && !memcmp(out + hl, orig, quote), "ICMP error does not quote the packet");
  if (v4) {
    FUZZ_ASSERT(out[9] == 1 && out[20] == 3 && out[21] == 0, "ICMP type %d/%d", out[20], out[21]);
    FUZZ_ASSERT(!memcmp(out + 12, orig + 16, 4) && !memcmp(out + 16, orig + 12, 4), "ICMP addresses not swapped");
    FUZZ_ASSERT(ref_fold(ref_sum(out, 20, 0)) == 0xffff, "ICMP: IPv4 header checksum");
    FUZZ_ASSERT(ref_fold(ref_sum(out + 20, il - 20, 0)) == 0xffff, "ICMP checksum");
  } else {
    FUZZ_ASSERT(out[6] == 58 && out[40] == 1 && out[41] == 0, "ICMPv6 type %d/%d", out[40], out[41]);
    FUZZ_ASSERT(!memcmp(out + 8, orig + 24, 16) && !memcmp(out + 24, orig + 8, 16), "ICMPv6 addresses not swapped");
    FUZZ_ASSERT(ref_l4_csum_ok(out, il, 40, 58), "ICMPv6 checksum");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD) return 0;
  const uint8_t *p = data + HEAD;
  size_t len = size - HEAD;
  uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any read past the packet */
  if (!copy) abort();
  memcpy(copy, p, len);
  struct ip_view v;
  int ok = ip_parse(copy, len, &v) == 0;
  FUZZ_ASSERT(ok == model_ip_ok(copy, len), "ip_parse says %d for %zu bytes, model %d", ok, len, model_ip_ok(copy, len));
  if (ok) {
    FUZZ_ASSERT(v.family == copy[0] >> 4, "family %d", v.family);
    FUZZ_ASSERT(v.src == copy + (v.family == 4 ? 12 : 8) && v.dst == copy + (v.family == 4 ? 16 : 24), "address pointers");
    check_icmp(copy, len, &v);
  }

  /* the plain-mode inbound checks */
  struct fdp_config cfg = {.sock6 = data[0] >> 7, .mtu = data[1] == 0 ? 1420 : 576 + data[1] * 8};
  struct dataplane *dp = fdp_new(&cfg);
  int sender = data[0] & 7;
  struct sockaddr_storage from;
  fdp_peer_addr(dp, sender, &from);
  struct outer o = outer_source(&from);
  int known = outer_known(dp, o);
  FUZZ_ASSERT(known == (sender < FDP_PEERS), "sender %d known %d", sender, known);
  int truncated = data[2] & 1;
  uint32_t peer = UINT32_MAX;
  enum in_verdict got = check_inner(dp, o, copy, len, truncated, &peer);
  enum in_verdict want = IN_SPOOFED;
  if (truncated || (int)len > dp->opt.mtu) want = IN_OVERSIZED;
  else if (!model_ip_ok(copy, len)) want = IN_MALFORMED;
  else if (!model_ip4_csum_ok(copy)) want = IN_BAD_IP_CSUM;
  else if (fdp_route(copy[0] >> 4, copy + (copy[0] >> 4 == 4 ? 12 : 8)) == sender) want = IN_DELIVER;
  if (known) FUZZ_ASSERT(got == want, "check_inner: verdict %d, model %d (sender %d, %zu bytes)", got, want, sender, len);
  if (got == IN_DELIVER) FUZZ_ASSERT(peer == (uint32_t)sender, "delivered as peer %u, sent by %d (per-peer counters)", peer, sender);
  fdp_free(dp);
  free(copy);
  return 0;
}

static size_t fresh(struct rng *r, uint8_t *out, size_t max) {
  if (max < HEAD + 1600) return 0;
  struct flow f;
  flow_random(r, &f);
  int peer = (int)rng_below(r, FDP_PEERS + 1);
  if (f.family == 4) f.src[2] = (uint8_t)(peer + 1);
  else {
    static const uint8_t pre[8] = {0xfd, 0x10, 0x02, 0x44, 0, 0, 0, 0};
    memcpy(f.src, pre, 8);
    f.src[5] = (uint8_t)(peer + 1);
  }
  switch (rng_below(r, 5)) {
  case 0: f.proto = f.family == 4 ? 1 : 58; break;
  case 1: f.proto = (int)rng_below(r, 256); break;
  default: break;
  }
  out[0] = (uint8_t)(peer | (rng_chance(r, 2) ? 0x80 : 0));
  out[1] = (uint8_t)rng_below(r, 4);
  out[2] = rng_chance(r, 10);
  size_t len = build_packet(&f, NULL, rng_below(r, rng_chance(r, 8) ? 1500 : 100), (uint32_t)rng_next(r), 0x18, 1, out + HEAD);
  if (f.proto == 1 || f.proto == 58) out[HEAD + flow_l4(&f)] = (uint8_t)(rng_chance(r, 2) ? rng_below(r, 20) : 128 + rng_below(r, 10));
  if (f.family == 4 && rng_chance(r, 6)) wr16(out + HEAD + 6, rng_interesting(r, 13)); /* a fragment */
  return HEAD + len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  struct rng r = {seed};
  if (size < HEAD + 20 || rng_chance(&r, 5)) {
    size_t n = fresh(&r, data, max);
    return n ? n : LLVMFuzzerMutate(data, size, max);
  }
  if (rng_chance(&r, 4)) return LLVMFuzzerMutate(data, size, max);
  if (rng_chance(&r, 6)) {
    data[rng_below(&r, HEAD)] = (uint8_t)rng_next(&r);
    return size;
  }
  int bits;
  size_t at = pick_field(&r, data + HEAD, size - HEAD, &bits);
  set_field(data + HEAD, size - HEAD, at, bits, rng_interesting(&r, bits));
  if (rng_chance(&r, 2)) fix_packet(data + HEAD, size - HEAD);
  return size;
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[4096];
  for (int s = 0; s < 60; s++) {
    struct rng r = {0x9a0u + (uint64_t)s};
    emit(buf, fresh(&r, buf, sizeof(buf)));
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
