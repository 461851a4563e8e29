/*
 * Target `gso`: outbound segmentation (gso.c) of what a TUN read returns: [virtio-net header]
 * [packet or super-packet]. Checked on every split: each segment a well-formed IP packet whose
 * TCP/UDP checksum verifies, no longer than headers + gso_size, sequence numbers and flags where
 * they belong, payloads reassembling to the original; then the round trip: the segments coalesced
 * by gro.c and split again come back byte for byte, in order. GSO_NONE + NEEDS_CSUM: a partial
 * checksum the kernel left is completed into one that verifies.
 *
 * Input: [vnet header 10][packet]. Mutator: a fresh valid super-packet (IPv4/IPv6, TCP with
 * options or UDP, partial checksum, a consistent header), or one field of the header or packet.
 */
#include "common.h"
#include "model.h"
#include "gso.h"
#include "gro.h"

#define MAX_SEGS 1024

static uint8_t hdrs[MAX_SEGS * GSO_MAX_HDR], pkt[70000], *segbuf[MAX_SEGS], *segmem;
static struct gso_seg segs[MAX_SEGS];
static struct gro_table gro;
static struct pkt_list in_list, writes, back;

static void check_csum_completion(const uint8_t *orig, uint8_t *p, size_t len, const struct vnet_hdr *h) {
  int v4 = len >= 20 && p[0] >> 4 == 4;
  size_t l4 = v4 ? (size_t)(p[0] & 15) * 4 : 40;
  int proto = len >= 40 ? (v4 ? p[9] : p[6]) : 0;
  if (!model_ip_ok(p, len) || h->csum_start != l4 || (proto != 6 && proto != 17) || h->csum_offset != (proto == 6 ? 16 : 6) ||
      l4 + (proto == 6 ? 20u : 8u) > len)
    return;
  /* only when the field held what the kernel leaves there: the folded pseudo-header sum */
  uint32_t ps = ref_sum(p + (v4 ? 12 : 8), v4 ? 8 : 32, 0) + (uint32_t)proto + (uint32_t)(len - l4);
  if (rd16(orig + l4 + h->csum_offset) != ref_fold(ps)) return;
  FUZZ_ASSERT(ref_l4_csum_ok(p, len, l4, proto), "completed checksum does not verify (%zu bytes)", len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < VNET_HDR_LEN || size - VNET_HDR_LEN > sizeof(pkt)) return 0;
  struct vnet_hdr h;
  vnet_decode(data, &h);
  size_t len = size - VNET_HDR_LEN;
  memcpy(pkt, data + VNET_HDR_LEN, len);
  int type = h.gso_type & ~VNET_GSO_ECN;
  if (type == VNET_GSO_NONE) {
    if ((h.flags & VNET_F_NEEDS_CSUM) && gso_complete_csum(pkt, len, &h) == 0)
      check_csum_completion(data + VNET_HDR_LEN, pkt, len, &h);
    return 0;
  }
  int n = gso_split(pkt, len, &h, hdrs, GSO_MAX_HDR, segs, MAX_SEGS);
  FUZZ_ASSERT(n != 0 && n >= GSO_E_ROOM, "gso_split returned %d", n);
  FUZZ_ASSERT(!memcmp(pkt, data + VNET_HDR_LEN, len), "the super-packet was modified");
  if (n < 0) return 0;
  int v4 = pkt[0] >> 4 == 4, tcp = type != VNET_GSO_UDP_L4;
  size_t l4 = h.csum_start, hlen = segs[0].hdr_len, off = hlen;
  pl_clear(&in_list);
  free(segmem);
  if (!(segmem = malloc(len + (size_t)n * GSO_MAX_HDR))) abort();
  for (int i = 0, at = 0; i < n; at += segs[i].hdr_len + segs[i].data_len, i++) segbuf[i] = segmem + at;
  for (int i = 0; i < n; i++) {
    uint8_t *s = segbuf[i];
    size_t sl = (size_t)segs[i].hdr_len + segs[i].data_len;
    FUZZ_ASSERT(segs[i].hdr_len == hlen && segs[i].data_len <= h.gso_size, "segment %d: %d + %d bytes", i, segs[i].hdr_len,
                segs[i].data_len);
    FUZZ_ASSERT(segs[i].data == pkt + off, "segment %d payload not where it was read", i);
    FUZZ_ASSERT(i == n - 1 || segs[i].data_len == h.gso_size, "segment %d short but not last", i);
    memcpy(s, segs[i].hdr, hlen);
    memcpy(s + hlen, segs[i].data, segs[i].data_len);
    FUZZ_ASSERT(model_ip_ok(s, sl), "segment %d: IP header does not describe its %zu bytes", i, sl);
    FUZZ_ASSERT(ref_l4_csum_ok(s, sl, l4, tcp ? 6 : 17), "segment %d: transport checksum does not verify", i);
    if (v4) FUZZ_ASSERT(ref_fold(ref_sum(s, l4, 0)) == 0xffff, "segment %d: IPv4 header checksum", i);
    if (tcp) {
      FUZZ_ASSERT(rd32(s + l4 + 4) == rd32(pkt + l4 + 4) + (uint32_t)(off - hlen), "segment %d: sequence number", i);
      uint8_t f = s[l4 + 13], f0 = pkt[l4 + 13];
      FUZZ_ASSERT((f & 0x09) == (i == n - 1 ? (f0 & 0x09) : 0), "segment %d: FIN/PSH %02x of %02x", i, f, f0);
      FUZZ_ASSERT((f & 0x80) == (i == 0 ? (f0 & 0x80) : 0), "segment %d: CWR %02x of %02x", i, f, f0);
    }
    off += segs[i].data_len;
    if (sl <= 65535) pl_push(&in_list, s, sl);
  }
  FUZZ_ASSERT(off == len, "segments cover %zu of %zu bytes", off, len);

  /* round trip through the coalescer, as the receiving peer does */
  if ((size_t)n != in_list.n || n > GRO_MAX_PACKETS) return 0;
  gro_init(&gro, 1, 1, 1);
  /* trusted (bytes vouched for) half the time: then what the kernel gets has its checksums
   * recomputed where the coalescer reads TCP/UDP (model_vouched): the same as the split's unless
   * the super-packet's header placed the transport header elsewhere than the IP header says */
  int trusted = (int)(len & 1);
  for (size_t i = 0; i < in_list.n; i++) gro_add(&gro, in_list.p[i], in_list.len[i], trusted);
  pl_clear(&writes);
  for (int i = 0; i < gro.n_items; i++) {
    uint8_t vnet[VNET_HDR_LEN], out[70000];
    struct iovec iov[GRO_MAX_SEGS + 1];
    int nsegs, k = gro_output(&gro, i, vnet, iov, GRO_MAX_SEGS + 1, &nsegs);
    FUZZ_ASSERT(k > 0, "gro_output refused item %d", i);
    size_t at = VNET_HDR_LEN;
    memcpy(out, vnet, VNET_HDR_LEN);
    for (int j = 0; j < k; j++) {
      FUZZ_ASSERT(at + iov[j].iov_len <= sizeof(out), "output packet %d too large", i);
      memcpy(out + at, iov[j].iov_base, iov[j].iov_len);
      at += iov[j].iov_len;
    }
    pl_push(&writes, out, at);
  }
  /* gro_output patched the heads in place: compare against fresh copies of the segments */
  struct pkt_list orig = {0};
  for (int i = 0; i < n; i++) {
    pl_push(&orig, segbuf[i], (size_t)segs[i].hdr_len + segs[i].data_len);
    if (trusted) model_vouched(orig.p[orig.n - 1], orig.len[orig.n - 1]);
  }
  pl_clear(&back);
  model_tun_writes(&writes, 1, &back);
  model_compare_flows(&back, &orig, "split, coalesce, split");
  pl_clear(&orig);
  free(orig.p), free(orig.len);
  return 0;
}

static size_t fresh(struct rng *r, uint8_t *out, size_t max) {
  struct flow f;
  flow_random(r, &f);
  size_t hlen = flow_hlen(&f);
  uint32_t gso = rng_chance(r, 4) ? 1 + rng_below(r, 9000) : 1 + rng_below(r, 1460);
  size_t pay = rng_below(r, (uint32_t)(gso * (1 + rng_below(r, 64))));
  if (hlen + pay + VNET_HDR_LEN > max) pay = max > hlen + VNET_HDR_LEN + 1 ? rng_below(r, (uint32_t)(max - hlen - VNET_HDR_LEN)) : 0;
  if (hlen + pay > 65535) pay = 65535 - hlen;
  uint8_t flags = f.proto == 6 ? (const uint8_t[]){0x10, 0x18, 0x19, 0x90, 0x98, 0x11}[rng_below(r, 6)] : 0;
  size_t len = build_packet(&f, NULL, pay, (uint32_t)rng_next(r), flags, 2, out + VNET_HDR_LEN);
  struct vnet_hdr h = {VNET_F_NEEDS_CSUM, (uint8_t)(f.proto == 17 ? VNET_GSO_UDP_L4 : f.family == 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6),
                       (uint16_t)hlen, (uint16_t)gso, (uint16_t)flow_l4(&f), (uint16_t)(f.proto == 6 ? 16 : 6)};
  if (rng_chance(r, 5)) h.gso_type = VNET_GSO_NONE, h.gso_size = 0;
  vnet_encode(out, &h);
  return VNET_HDR_LEN + len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  struct rng r = {seed};
  if (rng_chance(&r, 4) || size < VNET_HDR_LEN + 20) {
    if (rng_chance(&r, 2) || size < VNET_HDR_LEN + 20) return fresh(&r, data, max);
    return LLVMFuzzerMutate(data, size, max);
  }
  struct vnet_hdr h;
  vnet_decode(data, &h);
  switch (rng_below(&r, 6)) {
  case 0: h.gso_type = (uint8_t)(rng_chance(&r, 2) ? (const uint8_t[]){0, 1, 3, 4, 5, 0x81}[rng_below(&r, 6)] : rng_next(&r)); break;
  case 1: h.gso_size = (uint16_t)rng_interesting(&r, 16); break;
  case 2: h.csum_start = (uint16_t)(rng_chance(&r, 2) ? rng_below(&r, 80) : rng_interesting(&r, 16)); break;
  case 3: h.csum_offset = (uint16_t)(rng_chance(&r, 2) ? rng_below(&r, 20) : rng_interesting(&r, 16)); break;
  case 4: h.flags = (uint8_t)rng_next(&r), h.hdr_len = (uint16_t)rng_interesting(&r, 16); break;
  default: {
    int bits;
    size_t at = pick_field(&r, data + VNET_HDR_LEN, size - VNET_HDR_LEN, &bits);
    set_field(data + VNET_HDR_LEN, size - VNET_HDR_LEN, at, bits, rng_interesting(&r, bits));
    return size;
  }
  }
  vnet_encode(data, &h);
  return size;
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[80000];
  for (int s = 0; s < 40; s++) {
    struct rng r = {0x650u + (uint64_t)s};
    emit(buf, fresh(&r, buf, s < 30 ? 4096 : sizeof(buf)));
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
