/*
 * Internet checksum (RFC 1071) in pieces. A running sum is kept unfolded in native byte order:
 * the ones' complement sum is byte-order independent, so summing native 16-bit words and
 * storing the folded result natively yields the network-order checksum. Every piece but the
 * last of one checksum must have an even length.
 */
#ifndef TULLE_CSUM_H
#define TULLE_CSUM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>

uint64_t csum_add(uint64_t sum, const void *data, size_t len);

static inline uint16_t csum_fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* Pseudo-header of TCP/UDP: family 4 or 6, addresses from the IP header, upper-layer length. */
static inline uint64_t csum_pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t len) {
  size_t alen = family == 4 ? 4 : 16;
  uint64_t s = csum_add(0, src, alen);
  s = csum_add(s, dst, alen);
  return s + htonl(len) + htonl(proto);
}

/* Stores a 16-bit value that is already in the sum's native order. */
static inline void csum_store(uint8_t *at, uint16_t v) { memcpy(at, &v, 2); }

/* IPv4 header checksum field (bytes 10..11) recomputed over ihl bytes. */
static inline void csum_ip4_header(uint8_t *iph, size_t ihl) {
  iph[10] = iph[11] = 0;
  csum_store(iph + 10, (uint16_t)~csum_fold(csum_add(0, iph, ihl)));
}

#endif
