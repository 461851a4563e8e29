#include "packet.h"
#include <string.h>
#include <arpa/inet.h>

int ip_parse(const uint8_t *b, size_t len, struct ip_view *v) {
  if (len < 1) return -1;
  switch (b[0] >> 4) {
  case 4: {
    if (len < 20) return -1;
    size_t ihl = (size_t)(b[0] & 0x0f) * 4;
    size_t total = (size_t)b[2] << 8 | b[3];
    if (ihl < 20 || ihl > len || total != len) return -1;
    v->family = 4;
    v->src = b + 12;
    v->dst = b + 16;
    return 0;
  }
  case 6: {
    if (len < 40) return -1;
    size_t payload = (size_t)b[4] << 8 | b[5];
    if (payload + 40 != len) return -1;
    v->family = 6;
    v->src = b + 8;
    v->dst = b + 24;
    return 0;
  }
  default:
    return -1;
  }
}

int ip_header_checksum_ok(const uint8_t *b, const struct ip_view *v) {
  return v->family != 4 || inet_checksum(b, (size_t)(b[0] & 0x0f) * 4, 0) == 0;
}

uint16_t inet_checksum(const void *data, size_t len, uint32_t seed) {
  const uint8_t *p = data;
  uint64_t sum = seed;
  while (len >= 2) {
    sum += (uint32_t)p[0] << 8 | p[1];
    p += 2;
    len -= 2;
  }
  if (len) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t x) {
  p[0] = (uint8_t)(x >> 8);
  p[1] = (uint8_t)x;
}

static size_t icmp4(const uint8_t *orig, size_t len, uint8_t *out) {
  size_t ihl = (size_t)(orig[0] & 0x0f) * 4;
  uint8_t proto = orig[9];
  if ((orig[6] & 0x1f) || orig[7]) return 0; /* not the first fragment */
  if (orig[12] >= 224 || orig[16] >= 224) return 0; /* multicast / reserved source or destination */
  if (proto == 1 && len >= ihl + 1) {
    uint8_t type = orig[ihl];
    if (type != 0 && type != 8 && type != 13 && type != 14) return 0; /* an ICMP error itself */
  }
  size_t quote = len > 548 ? 548 : len; /* RFC 1812: as much as fits in 576 bytes */
  size_t total = 20 + 8 + quote;
  memset(out, 0, 28);
  out[0] = 0x45;
  put16(out + 2, (uint16_t)total);
  out[8] = 64;
  out[9] = 1;
  memcpy(out + 12, orig + 16, 4);
  memcpy(out + 16, orig + 12, 4);
  put16(out + 10, inet_checksum(out, 20, 0));
  out[20] = 3; /* destination unreachable */
  out[21] = 0; /* net unreachable */
  memcpy(out + 28, orig, quote);
  put16(out + 22, inet_checksum(out + 20, 8 + quote, 0));
  return total;
}

static size_t icmp6(const uint8_t *orig, size_t len, uint8_t *out) {
  if (orig[8] == 0xff || orig[24] == 0xff) return 0; /* multicast source or destination */
  if (orig[6] == 58 && len > 40 && orig[40] < 128) return 0; /* an ICMPv6 error itself */
  size_t quote = len > 1280 - 48 ? 1280 - 48 : len;
  size_t plen = 8 + quote;
  memset(out, 0, 48);
  out[0] = 0x60;
  put16(out + 4, (uint16_t)plen);
  out[6] = 58;
  out[7] = 64;
  memcpy(out + 8, orig + 24, 16);
  memcpy(out + 24, orig + 8, 16);
  out[40] = 1; /* destination unreachable */
  out[41] = 0; /* no route to destination */
  memcpy(out + 48, orig, quote);
  /* pseudo-header: src, dst, upper-layer length, next header */
  uint32_t seed = 0;
  for (int i = 8; i < 40; i += 2) seed += (uint32_t)out[i] << 8 | out[i + 1];
  seed += (uint32_t)plen + 58;
  put16(out + 42, inet_checksum(out + 40, plen, seed));
  return 40 + plen;
}

size_t icmp_net_unreachable(const uint8_t *orig, size_t len, const struct ip_view *v, uint8_t *out) {
  return v->family == 4 ? icmp4(orig, len, out) : icmp6(orig, len, out);
}
