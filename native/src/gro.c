#include "gro.h"
#include "csum.h"
#include <string.h>

_Static_assert(GRO_MAX_PACKETS <= UINT16_MAX + 1, "slot[] holds item indices in 16 bits");
_Static_assert(GRO_HASH_SLOTS >= 2 * GRO_MAX_PACKETS, "linear probing needs free slots");
_Static_assert(GRO_MAX_LINKS <= INT32_MAX, "links are indexed by int32_t");

enum gro_kind { K_NONE, K_TCP4, K_TCP6, K_UDP4, K_UDP6 };
#define F_VERIFIED 1 /* checksum verified, or the bytes vouched for: a single packet goes out NEEDS_CSUM */
#define F_PSH 2
#define F_CLOSED 4  /* nothing may be appended */

#define TCP_ACK 0x10
#define TCP_PSH 0x08

void gro_init(struct gro_table *t, int tcp, int udp, int partial) {
  t->tcp = tcp;
  t->udp = udp;
  t->partial = partial;
  t->coalesced = t->bad_csum = 0;
  t->n_items = t->n_links = 0;
  t->gen = 1;
  memset(t->slot_gen, 0, sizeof(t->slot_gen));
}

void gro_reset(struct gro_table *t) {
  if (t->n_items && ++t->gen == 0) {
    memset(t->slot_gen, 0, sizeof(t->slot_gen));
    t->gen = 1;
  }
  t->n_items = t->n_links = 0;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Kind, transport offset and flow hash of a packet; K_NONE for what is never coalesced nor
 * checksummed here (not TCP/UDP, IPv4 options or fragments, IPv6 extension headers), whether or
 * not the table coalesces its protocol. *flow is set (non-zero) for every TCP/UDP packet. */
static int classify(const struct gro_table *t, const uint8_t *p, size_t len, uint16_t *l4, uint16_t *l4len, uint32_t *flow,
                    uint8_t *protop) {
  int kind = K_NONE, fam = len ? p[0] >> 4 : 0, proto;
  *flow = 0;
  if ((fam != 4 || len < 20) && (fam != 6 || len < 40)) return K_NONE; /* not for us to judge: held as is */
  int plain = 1; /* may be merged: no IPv4 options, not a fragment */
  if (fam == 4) {
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    plain = ihl == 20 && !(p[6] & 0x3f) && !p[7];
    /* options or a first fragment: never merged, but still its flow's latest packet, so a later
     * segment cannot be merged into an earlier one ahead of it; a fragment tail has no ports */
    if (ihl < 20 || ihl > len || (p[6] & 0x1f) || p[7]) return K_NONE;
    proto = p[9];
    *l4 = (uint16_t)ihl;
  } else {
    proto = p[6]; /* extension headers are not coalesced */
    *l4 = 40;
  }
  if (proto == 6 && len >= (size_t)*l4 + 20) {
    *l4len = (uint16_t)((p[*l4 + 12] >> 4) * 4);
    if (*l4len < 20 || *l4 + *l4len > len) return K_NONE;
    kind = fam == 4 ? K_TCP4 : K_TCP6;
  } else if (proto == 17 && len >= (size_t)*l4 + 8) {
    *l4len = 8;
    kind = fam == 4 ? K_UDP4 : K_UDP6;
  } else {
    return K_NONE;
  }
  /* FNV-1a over addresses and ports */
  uint32_t h = 2166136261u ^ (uint32_t)proto;
  const uint8_t *a = p + (fam == 4 ? 12 : 8);
  for (int i = 0; i < (fam == 4 ? 8 : 32); i++) h = (h ^ a[i]) * 16777619u;
  for (int i = 0; i < 4; i++) h = (h ^ p[*l4 + i]) * 16777619u;
  *flow = h | 1;
  *protop = (uint8_t)proto;
  return plain ? kind : K_NONE;
}

/* The transport checksum holds, or (trusted) need not be summed: the bytes are known to be what
 * the sender sent, whose checksum the kernel then completes (NEEDS_CSUM). A UDP packet without a
 * checksum or whose length field disagrees is never vouched for. */
static int csum_ok(const uint8_t *p, size_t len, int kind, uint16_t l4, int trusted) {
  int fam = kind == K_TCP4 || kind == K_UDP4 ? 4 : 6;
  int udp = kind == K_UDP4 || kind == K_UDP6;
  if (udp && p[l4 + 6] == 0 && p[l4 + 7] == 0) return 0; /* no checksum: cannot be vouched for */
  if (udp && (size_t)(p[l4 + 4] << 8 | p[l4 + 5]) != len - l4) return 0;
  if (trusted) return 1;
  uint64_t s = csum_pseudo(fam, p + (fam == 4 ? 12 : 8), p + (fam == 4 ? 16 : 24), udp ? 17 : 6, (uint32_t)(len - l4));
  return csum_fold(csum_add(s, p + l4, len - l4)) == 0xffff;
}

/* Same addresses, ports and protocol (the flow key), whatever the kinds. */
static int same_key(const struct gro_item *it, const uint8_t *p, uint16_t l4, uint8_t proto) {
  const uint8_t *h = it->pkt;
  if (it->proto != proto || (h[0] >> 4) != (p[0] >> 4)) return 0;
  if ((p[0] >> 4) == 4 ? memcmp(h + 12, p + 12, 8) : memcmp(h + 8, p + 8, 32)) return 0;
  return memcmp(h + it->l4, p + l4, 4) == 0; /* ports, each after its own IP header */
}

/* The IP fields that must match for a merge (the key already does). */
static int same_flow(const struct gro_item *it, const uint8_t *p) {
  const uint8_t *h = it->pkt;
  uint16_t l4 = it->l4;
  if (it->kind == K_TCP4 || it->kind == K_UDP4) {
    if (memcmp(h + 12, p + 12, 8) || h[1] != p[1] || h[8] != p[8] || (h[6] >> 5) != (p[6] >> 5)) return 0;
  } else {
    if (memcmp(h + 8, p + 8, 32) || memcmp(h, p, 4) || h[7] != p[7]) return 0;
  }
  return memcmp(h + l4, p + l4, 4) == 0;
}

static int new_item(struct gro_table *t, uint8_t *pkt, size_t len, int kind, uint16_t l4, uint16_t l4len, uint8_t flags) {
  struct gro_item *it = &t->items[t->n_items];
  it->pkt = pkt;
  it->total = (uint32_t)len;
  it->kind = (uint8_t)kind;
  it->flags = flags;
  it->l4 = l4;
  it->l4len = l4len;
  it->nseg = 1;
  it->first = it->last = -1;
  it->gso_size = it->last_size = (uint16_t)(len - l4 - l4len);
  it->next_seq = kind == K_TCP4 || kind == K_TCP6 ? rd32(pkt + l4 + 4) + it->gso_size : 0;
  if (flags & F_PSH) it->flags |= F_CLOSED;
  return t->n_items++;
}

int gro_add(struct gro_table *t, uint8_t *pkt, size_t len, int trusted) {
  /* room for either outcome (a new item or a link), checked before anything changes */
  if (t->n_items >= GRO_MAX_PACKETS || t->n_links >= GRO_MAX_LINKS) return GRO_FULL;
  uint16_t l4 = 0, l4len = 0;
  uint32_t flow;
  uint8_t proto = 0;
  int kind = classify(t, pkt, len, &l4, &l4len, &flow, &proto);
  if (!t->partial) kind = K_NONE; /* no virtio-net header: written as they come, for the kernel to check */
  uint8_t flags = 0;
  size_t payload = kind != K_NONE ? len - l4 - l4len : 0;
  int tcp = kind == K_TCP4 || kind == K_TCP6;
  int mergeable = 0;
  if (kind != K_NONE) {
    if (!csum_ok(pkt, len, kind, l4, trusted)) {
      t->bad_csum++;
      kind = K_NONE;
    } else {
      flags = F_VERIFIED;
      uint8_t tf = tcp ? pkt[l4 + 13] : 0;
      mergeable = (tcp ? t->tcp : t->udp) && payload > 0 && (!tcp || tf == TCP_ACK || tf == (TCP_ACK | TCP_PSH));
      if (tcp && (tf & TCP_PSH)) flags |= F_PSH;
    }
  }
  /* the flow's slot: the first empty one or the one holding this flow, by linear probing */
  uint32_t s = flow % GRO_HASH_SLOTS;
  struct gro_item *it = NULL;
  if (flow) {
    for (; t->slot_gen[s] == t->gen; s = (s + 1) % GRO_HASH_SLOTS) {
      struct gro_item *c = &t->items[t->slot[s]];
      if (c->flow == flow && same_key(c, pkt, l4, proto)) {
        it = c;
        break;
      }
    }
  }
  if (mergeable && it) {
    if (it->kind == kind && !(it->flags & F_CLOSED) && it->l4len == l4len && payload <= it->gso_size &&
        it->total + payload <= 65535 && same_flow(it, pkt) &&
        (!tcp || (rd32(pkt + l4 + 4) == it->next_seq && !memcmp(pkt + l4 + 8, it->pkt + l4 + 8, 4) &&
                  !memcmp(pkt + l4 + 14, it->pkt + l4 + 14, 2) &&
                  !memcmp(pkt + l4 + 20, it->pkt + l4 + 20, l4len - 20u)))) {
      struct gro_link *k = &t->links[t->n_links];
      k->data = pkt + l4 + l4len;
      k->len = (uint32_t)payload;
      k->next = -1;
      if (it->last >= 0) t->links[it->last].next = t->n_links;
      else it->first = t->n_links;
      it->last = t->n_links++;
      it->total += (uint32_t)payload;
      it->next_seq += (uint32_t)payload;
      it->last_size = (uint16_t)payload;
      it->flags |= flags & F_PSH;
      if (++it->nseg >= GRO_MAX_SEGS || payload < it->gso_size || (flags & F_PSH)) it->flags |= F_CLOSED;
      t->coalesced++;
      return GRO_MERGED;
    }
  }
  int i = new_item(t, pkt, len, kind, l4, l4len, flags | (mergeable ? 0 : F_CLOSED));
  t->items[i].flow = flow;
  t->items[i].proto = proto;
  if (flow) { /* the flow's latest packet: later ones never overtake it */
    t->slot_gen[s] = t->gen;
    t->slot[s] = (uint16_t)i;
  }
  return GRO_HELD;
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

int gro_output(struct gro_table *t, int i, uint8_t *vnet, struct iovec *iov, int iov_cap, int *segs) {
  struct gro_item *it = &t->items[i];
  struct vnet_hdr h = {0};
  *segs = it->nseg;
  if (iov_cap < it->nseg) return -1; /* one iovec per segment: head + one per link */
  uint8_t *p = it->pkt;
  int tcp = it->kind == K_TCP4 || it->kind == K_TCP6, fam = it->kind == K_TCP4 || it->kind == K_UDP4 ? 4 : 6;
  uint32_t l4total = it->total - it->l4;
  if (it->nseg == 1) {
    /* verified (or vouched for) TCP/UDP: only the pseudo-header sum, NEEDS_CSUM, so the kernel
     * takes it as checked (it ignores DATA_VALID on a TUN write and would sum it all again) */
    if ((it->flags & F_VERIFIED) && t->partial) {
      uint64_t ps = csum_pseudo(fam, p + (fam == 4 ? 12 : 8), p + (fam == 4 ? 16 : 24), tcp ? 6 : 17, l4total);
      csum_store(p + it->l4 + (tcp ? 16 : 6), csum_fold(ps));
      h.flags = VNET_F_NEEDS_CSUM;
      h.hdr_len = (uint16_t)(it->l4 + it->l4len);
      h.csum_start = it->l4;
      h.csum_offset = tcp ? 16 : 6;
    }
    vnet_encode(vnet, &h);
    iov[0] = (struct iovec){it->pkt, it->total};
    return 1;
  }
  if (fam == 4) {
    put16(p + 2, it->total);
    csum_ip4_header(p, 20);
  } else {
    put16(p + 4, it->total - 40);
  }
  if (tcp && (it->flags & F_PSH)) p[it->l4 + 13] |= TCP_PSH;
  if (!tcp) put16(p + it->l4 + 4, l4total);
  uint64_t ps = csum_pseudo(fam, p + (fam == 4 ? 12 : 8), p + (fam == 4 ? 16 : 24), tcp ? 6 : 17, l4total);
  csum_store(p + it->l4 + (tcp ? 16 : 6), csum_fold(ps)); /* partial: the kernel adds the rest */
  h.flags = VNET_F_NEEDS_CSUM;
  h.gso_type = tcp ? (fam == 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6) : VNET_GSO_UDP_L4;
  h.hdr_len = (uint16_t)(it->l4 + it->l4len);
  h.gso_size = it->gso_size;
  h.csum_start = it->l4;
  h.csum_offset = tcp ? 16 : 6;
  vnet_encode(vnet, &h);
  int n = 0;
  iov[n++] = (struct iovec){p, (size_t)it->l4 + it->l4len + it->gso_size};
  for (int k = it->first; k >= 0; k = t->links[k].next) iov[n++] = (struct iovec){(void *)t->links[k].data, t->links[k].len};
  return n;
}
