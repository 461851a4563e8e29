#include "gso.h"
#include "csum.h"
#include <string.h>

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

int gso_complete_csum(uint8_t *pkt, size_t len, const struct vnet_hdr *h) {
  size_t at = (size_t)h->csum_start + h->csum_offset;
  if (h->csum_start >= len || at + 2 > len) return GSO_E_HEADER;
  /* the field holds the folded pseudo-header sum: include it, then store the complement */
  uint64_t sum = csum_add(0, pkt + h->csum_start, len - h->csum_start);
  uint16_t c = (uint16_t)~csum_fold(sum);
  if (c == 0 && h->csum_offset == 6) c = 0xffff; /* UDP: zero means "no checksum" */
  csum_store(pkt + at, c);
  return 0;
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

int gso_split(const uint8_t *pkt, size_t len, const struct vnet_hdr *h, uint8_t *hdrs, size_t hdr_stride,
              struct gso_seg *segs, int max_segs) {
  int total, n = gso_split_from(pkt, len, h, 0, hdrs, hdr_stride, segs, max_segs, &total);
  return n < 0 ? n : n < total ? GSO_E_ROOM : n;
}

int gso_split_from(const uint8_t *pkt, size_t len, const struct vnet_hdr *h, int first, uint8_t *hdrs, size_t hdr_stride,
                   struct gso_seg *segs, int max_segs, int *total) {
  int type = h->gso_type & ~VNET_GSO_ECN;
  int tcp = type == VNET_GSO_TCPV4 || type == VNET_GSO_TCPV6;
  if (!tcp && type != VNET_GSO_UDP_L4) return GSO_E_HEADER;
  if (len < 1 || max_segs < 1 || first < 0) return GSO_E_HEADER;
  int family = pkt[0] >> 4;
  if ((type == VNET_GSO_TCPV4 && family != 4) || (type == VNET_GSO_TCPV6 && family != 6)) return GSO_E_HEADER;
  if (family != 4 && family != 6) return GSO_E_HEADER;
  /* every segment's IP length field must hold its length: the whole packet bounds them all */
  if (family == 4 ? len > 65535 : len > 65535 + 40) return GSO_E_HEADER;
  size_t l4 = h->csum_start; /* transport header offset: do not trust hdr_len */
  if (family == 4 && (l4 < 20 || len < 20 || l4 != (size_t)(pkt[0] & 0x0f) * 4)) return GSO_E_HEADER;
  if (family == 6 && l4 < 40) return GSO_E_HEADER;
  if (h->csum_offset != (tcp ? 16 : 6)) return GSO_E_HEADER;
  if (l4 + (tcp ? 20 : 8) > len) return GSO_E_HEADER;
  size_t l4len = tcp ? (size_t)(pkt[l4 + 12] >> 4) * 4 : 8;
  if (l4len < (tcp ? 20 : 8)) return GSO_E_HEADER;
  size_t hlen = l4 + l4len;
  if (hlen > len || hlen > GSO_MAX_HDR || hlen > hdr_stride || h->gso_size == 0) return GSO_E_HEADER;
  if (family == 4 && ((pkt[6] & 0x3f) || pkt[7])) return GSO_E_HEADER; /* a fragment */
  /* the protocol the header names (IPv6 with extension headers: not readable here, the offsets
   * above still bound every access) */
  if (family == 4 ? pkt[9] != (tcp ? 6 : 17) : l4 == 40 && pkt[6] != (tcp ? 6 : 17)) return GSO_E_HEADER;
  size_t payload = len - hlen;
  int all = payload == 0 ? 1 : (int)((payload + h->gso_size - 1) / h->gso_size);
  *total = all;
  if (first >= all) return GSO_E_HEADER;
  int n = all - first < max_segs ? all - first : max_segs;

  const uint8_t *src = pkt + (family == 4 ? 12 : 8), *dst = pkt + (family == 4 ? 16 : 24);
  uint8_t proto = tcp ? 6 : 17;
  uint16_t id0 = (uint16_t)(pkt[4] << 8 | pkt[5]);
  uint32_t seq0 = tcp ? (uint32_t)pkt[l4 + 4] << 24 | (uint32_t)pkt[l4 + 5] << 16 | (uint32_t)pkt[l4 + 6] << 8 | pkt[l4 + 7] : 0;
  /* pseudo-header addresses are the same for every segment */
  uint64_t addr_sum = csum_add(csum_add(0, src, family == 4 ? 4 : 16), dst, family == 4 ? 4 : 16);
  size_t off = hlen + (size_t)first * h->gso_size;
  for (int j = 0; j < n; j++) {
    int i = first + j; /* number of the segment in the whole split */
    size_t dlen = payload - (off - hlen) < h->gso_size ? payload - (off - hlen) : h->gso_size;
    uint8_t *o = hdrs + (size_t)j * hdr_stride;
    memcpy(o, pkt, hlen);
    size_t total_len = hlen + dlen;
    if (family == 4) {
      put16(o + 2, (uint32_t)total_len);
      put16(o + 4, (uint16_t)(id0 + i));
      csum_ip4_header(o, l4);
    } else {
      put16(o + 4, (uint32_t)(total_len - 40));
    }
    uint8_t *t = o + l4;
    if (tcp) {
      uint32_t seq = seq0 + (uint32_t)(off - hlen);
      t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8), t[7] = (uint8_t)seq;
      if (i > 0) t[13] &= (uint8_t)~TCP_CWR;
      if (i < all - 1) t[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
      t[16] = t[17] = 0;
    } else {
      put16(t + 4, (uint32_t)(8 + dlen));
      t[6] = t[7] = 0;
    }
    uint64_t sum = addr_sum + htonl((uint32_t)(l4len + dlen)) + htonl(proto);
    sum = csum_add(sum, t, l4len);
    sum = csum_add(sum, pkt + off, dlen);
    uint16_t c = (uint16_t)~csum_fold(sum);
    if (!tcp && c == 0) c = 0xffff;
    csum_store(t + (tcp ? 16 : 6), c);
    segs[j].hdr = o;
    segs[j].hdr_len = (uint16_t)hlen;
    segs[j].data = pkt + off;
    segs[j].data_len = (uint16_t)dlen;
    off += dlen;
  }
  return n;
}
