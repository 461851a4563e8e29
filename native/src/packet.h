/*
 * IP packet parsing and the ICMP errors tulle sends into its own TUN.
 *
 *   IPv4 (RFC 791)                         IPv6 (RFC 8200)
 *   0      4      8             16    31   0      4          12         31
 *   +------+------+-------------+------+   +------+----------+----------+
 *   | ver  | ihl  |     tos     | total len  | ver  | class    | flow     |
 *   +------+------+-------------+------+   +------+---+------+----+-----+
 *   |   ... ttl | proto | csum  ...    |   | payload len | next | hops |
 *   | source address (12..15)          |   | source address (8..23)    |
 *   | destination address (16..19)     |   | destination address (24..39)
 */
#ifndef TULLE_PACKET_H
#define TULLE_PACKET_H
#include <stdint.h>
#include <stddef.h>

struct ip_view {
  int family;         /* 4 or 6 */
  const uint8_t *src; /* 4 or 16 bytes inside the packet */
  const uint8_t *dst;
};

/* 0 when buf holds exactly one well-formed IPv4/IPv6 packet (header lengths consistent with len). */
int ip_parse(const uint8_t *buf, size_t len, struct ip_view *v);

/*
 * Build "destination network unreachable" (ICMPv4 3/0 or ICMPv6 1/0) for the packet `orig` into
 * `out` (room >= 1280 bytes). Its source is the unreachable destination itself: tulle has no
 * address of its own on the TUN link, and the kernel drops a packet whose source is one of its
 * own addresses. Returns its length, or 0 when no error may be sent for `orig` (it is itself an
 * ICMP error, a fragment tail, or has a multicast source or destination).
 */
size_t icmp_net_unreachable(const uint8_t *orig, size_t len, const struct ip_view *v, uint8_t *out);

uint16_t inet_checksum(const void *data, size_t len, uint32_t seed);

/* Inbound: 1 when an IPv4 header's checksum verifies (always 1 for IPv6, which has none). v from
 * ip_parse. Verified for every inner packet from the network: the UDP checksum (plain mode) is
 * optional on the underlay and the AEAD (encrypted mode) only vouches for the sender, not for
 * what it built, while the coalescer rewrites the header checksum of every packet it merges, so
 * a damaged header would otherwise leave here looking valid. */
int ip_header_checksum_ok(const uint8_t *buf, const struct ip_view *v);

#endif
