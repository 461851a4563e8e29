#include "model.h"
#include "common.h"
#include "gso.h"
#include "gro.h"
#include "vnet.h"

int model_ip_ok(const uint8_t *p, size_t len) {
  if (len < 1) return 0;
  if (p[0] >> 4 == 4) {
    if (len < 20) return 0;
    size_t ihl = (size_t)(p[0] & 15) * 4;
    return ihl >= 20 && ihl <= len && rd16(p + 2) == len;
  }
  if (p[0] >> 4 == 6) return len >= 40 && (size_t)rd16(p + 4) + 40 == len;
  return 0;
}

int model_ip4_csum_ok(const uint8_t *p) { return p[0] >> 4 != 4 || ref_fold(ref_sum(p, (size_t)(p[0] & 15) * 4, 0)) == 0xffff; }

void pl_push(struct pkt_list *l, const uint8_t *p, size_t len) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 256;
    l->p = realloc(l->p, l->cap * sizeof(*l->p));
    l->len = realloc(l->len, l->cap * sizeof(*l->len));
    if (!l->p || !l->len) abort();
  }
  l->p[l->n] = malloc(len ? len : 1);
  if (!l->p[l->n]) abort();
  memcpy(l->p[l->n], p, len);
  l->len[l->n++] = len;
}

void pl_clear(struct pkt_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->p[i]);
  l->n = 0;
}

static int transport_of(const uint8_t *p, size_t len, size_t *l4, int *proto) {
  if (len >= 20 && p[0] >> 4 == 4) {
    *l4 = (size_t)(p[0] & 15) * 4;
    *proto = p[9];
    return 4;
  }
  if (len >= 40 && p[0] >> 4 == 6) {
    *l4 = 40;
    *proto = p[6];
    return 6;
  }
  return 0;
}

void model_tun_writes(const struct pkt_list *w, int vnet, struct pkt_list *out) {
  static uint8_t hdrs[256 * GSO_MAX_HDR], seg[65536];
  static struct gso_seg segs[256];
  for (size_t i = 0; i < w->n; i++) {
    const uint8_t *p = w->p[i];
    size_t len = w->len[i];
    if (!vnet) {
      pl_push(out, p, len);
      continue;
    }
    FUZZ_ASSERT(len >= VNET_HDR_LEN, "TUN write %zu of %zu bytes: no virtio-net header", i, len);
    struct vnet_hdr h;
    vnet_decode(p, &h);
    p += VNET_HDR_LEN, len -= VNET_HDR_LEN;
    size_t l4 = 0;
    int proto = 0;
    if (h.gso_type == VNET_GSO_NONE) {
      FUZZ_ASSERT(h.flags == 0 || h.flags == VNET_F_NEEDS_CSUM, "single packet with vnet flags %d", h.flags);
      if (h.flags == VNET_F_NEEDS_CSUM) {
        int fam = transport_of(p, len, &l4, &proto);
        FUZZ_ASSERT(fam && (proto == 6 || proto == 17) && h.csum_start == l4 && h.csum_offset == (proto == 6 ? 16 : 6) &&
                        l4 + h.csum_offset + 2 <= len,
                    "single packet %zu: NEEDS_CSUM fields %d/%d for proto %d at %zu", i, h.csum_start, h.csum_offset, proto, l4);
        /* the kernel completes it: the one's complement of the sum from csum_start, pseudo-header
         * sum included (it sits in the field), 0 sent as 0xffff for UDP */
        static uint8_t one[70000];
        FUZZ_ASSERT(len <= sizeof(one), "single packet %zu of %zu bytes", i, len);
        memcpy(one, p, len);
        uint16_t c = (uint16_t)~ref_fold(ref_sum(one + l4, len - l4, 0));
        if (c == 0 && proto == 17) c = 0xffff;
        wr16(one + l4 + h.csum_offset, c);
        pl_push(out, one, len);
        continue;
      }
      pl_push(out, p, len);
      continue;
    }
    int fam = transport_of(p, len, &l4, &proto);
    FUZZ_ASSERT(fam && model_ip_ok(p, len), "super-packet %zu: IP header does not describe its %zu bytes", i, len);
    FUZZ_ASSERT(h.flags == VNET_F_NEEDS_CSUM && h.csum_start == l4 && h.csum_offset == (proto == 6 ? 16 : 6),
                "super-packet %zu: checksum fields %d/%d/%d", i, h.flags, h.csum_start, h.csum_offset);
    FUZZ_ASSERT((h.gso_type == VNET_GSO_TCPV4 && fam == 4 && proto == 6) || (h.gso_type == VNET_GSO_TCPV6 && fam == 6 && proto == 6) ||
                    (h.gso_type == VNET_GSO_UDP_L4 && proto == 17),
                "super-packet %zu: gso_type %d for family %d proto %d", i, h.gso_type, fam, proto);
    int n = gso_split(p, len, &h, hdrs, GSO_MAX_HDR, segs, 256);
    FUZZ_ASSERT(n >= 2 && n <= GRO_MAX_SEGS, "super-packet %zu (%zu bytes, gso_size %d) splits into %d", i, len, h.gso_size, n);
    for (int k = 0; k < n; k++) {
      memcpy(seg, segs[k].hdr, segs[k].hdr_len);
      memcpy(seg + segs[k].hdr_len, segs[k].data, segs[k].data_len);
      pl_push(out, seg, (size_t)segs[k].hdr_len + segs[k].data_len);
    }
  }
}

void model_vouched(uint8_t *p, size_t len) {
  size_t l4 = 0;
  int proto = 0, fam = transport_of(p, len, &l4, &proto);
  if (fam == 4 && (l4 != 20 || (p[6] & 0x3f) || p[7])) return;
  if (!fam || (proto != 6 && proto != 17)) return;
  if (proto == 6 && (len < l4 + 20 || (size_t)(p[l4 + 12] >> 4) * 4 < 20 || l4 + (size_t)(p[l4 + 12] >> 4) * 4 > len)) return;
  if (proto == 17 && (len < l4 + 8 || rd16(p + l4 + 6) == 0 || rd16(p + l4 + 4) != len - l4)) return;
  size_t at = l4 + (proto == 6 ? 16 : 6);
  wr16(p + at, 0);
  /* pseudo-header: addresses, protocol, transport length */
  uint32_t s = fam == 4 ? ref_sum(p + 12, 8, 0) : ref_sum(p + 8, 32, 0);
  s += (uint32_t)proto + (uint32_t)((len - l4) >> 16) + (uint32_t)((len - l4) & 0xffff);
  uint16_t c = (uint16_t)~ref_fold(ref_sum(p + l4, len - l4, s));
  if (c == 0 && proto == 17) c = 0xffff;
  wr16(p + at, c);
}

static uint64_t flow_key(const uint8_t *p, size_t len) {
  uint64_t h = 1469598103934665603ull;
#define MIX(b) (h = (h ^ (uint8_t)(b)) * 1099511628211ull)
  size_t l4 = 0;
  int proto = -1, fam = transport_of(p, len, &l4, &proto);
  MIX(fam);
  MIX(proto);
  if (fam == 4) {
    for (int i = 12; i < 20; i++) MIX(p[i]);
    if ((p[6] & 0x3f) || p[7]) return h; /* a fragment: no ports */
  } else if (fam == 6) {
    for (int i = 8; i < 40; i++) MIX(p[i]);
  } else {
    return h;
  }
  if ((proto == 6 || proto == 17) && l4 + 4 <= len)
    for (size_t i = 0; i < 4; i++) MIX(p[l4 + i]);
#undef MIX
  return h;
}

struct keyed {
  uint64_t key;
  size_t idx;
};

static int by_key(const void *a, const void *b) {
  const struct keyed *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx; /* stable: arrival order within a flow */
}

static int same_packet(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  if (al != bl) return 0;
  for (size_t i = 0; i < al; i++) {
    if (al >= 20 && a[0] >> 4 == 4 && (i == 4 || i == 5 || i == 10 || i == 11)) continue;
    if (a[i] != b[i]) return 0;
  }
  return 1;
}

static void dump(const char *what, const uint8_t *p, size_t len) {
  fprintf(stderr, "  %s (%zu bytes):", what, len);
  for (size_t i = 0; i < len && i < 64; i++) fprintf(stderr, " %02x", p[i]);
  fprintf(stderr, "%s\n", len > 64 ? " ..." : "");
}

void model_compare_flows(const struct pkt_list *got, const struct pkt_list *want, const char *what) {
  if (got->n != want->n) {
    fprintf(stderr, "%s: %zu packets out, %zu expected\n", what, got->n, want->n);
    for (size_t i = 0; i < got->n && i < 4; i++) dump("got", got->p[i], got->len[i]);
    for (size_t i = 0; i < want->n && i < 4; i++) dump("want", want->p[i], want->len[i]);
    FUZZ_ASSERT(got->n == want->n, "packet count");
  }
  struct keyed *g = malloc((got->n + 1) * sizeof(*g)), *w = malloc((want->n + 1) * sizeof(*w));
  if (!g || !w) abort();
  for (size_t i = 0; i < got->n; i++) g[i] = (struct keyed){flow_key(got->p[i], got->len[i]), i};
  for (size_t i = 0; i < want->n; i++) w[i] = (struct keyed){flow_key(want->p[i], want->len[i]), i};
  qsort(g, got->n, sizeof(*g), by_key);
  qsort(w, want->n, sizeof(*w), by_key);
  for (size_t i = 0; i < got->n; i++) {
    const uint8_t *a = got->p[g[i].idx], *b = want->p[w[i].idx];
    size_t al = got->len[g[i].idx], bl = want->len[w[i].idx];
    if (g[i].key != w[i].key || !same_packet(a, al, b, bl)) {
      fprintf(stderr, "%s: flow packet mismatch (got #%zu, expected #%zu in arrival order)\n", what, g[i].idx, w[i].idx);
      dump("got", a, al);
      dump("want", b, bl);
      for (size_t k = 0; k < al && k < bl; k++)
        if (a[k] != b[k]) {
          fprintf(stderr, "  first difference at byte %zu: %02x, expected %02x\n", k, a[k], b[k]);
          break;
        }
      FUZZ_ASSERT(0, "a packet changed, was lost, or overtook an earlier one of its flow");
    }
  }
  free(g);
  free(w);
}
