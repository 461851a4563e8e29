/*
 * The virtio-net header the TUN device puts in front of every packet with IFF_VNET_HDR
 * (include/uapi/linux/virtio_net.h; 10 bytes, little-endian on this machine, the TUN default
 * size). It says whether the packet is a GSO super-packet and where a partial checksum sits.
 *
 *   0        1          2         4          6            8             10
 *   +--------+----------+---------+----------+------------+-------------+
 *   | flags  | gso_type | hdr_len | gso_size | csum_start | csum_offset |
 *   +--------+----------+---------+----------+------------+-------------+
 */
#ifndef TULLE_VNET_H
#define TULLE_VNET_H
#include <stdint.h>

#define VNET_HDR_LEN 10

/* flags */
#define VNET_F_NEEDS_CSUM 1 /* csum_start/csum_offset hold a partial checksum to complete */
#define VNET_F_DATA_VALID 2 /* the checksum was verified already */
/* gso_type */
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP 3 /* UFO, never used */
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80

/* TUNSETOFFLOAD bits; the USO ones are missing from older uapi headers. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

struct vnet_hdr {
  uint8_t flags, gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

static inline void vnet_decode(const uint8_t *b, struct vnet_hdr *h) {
  h->flags = b[0];
  h->gso_type = b[1];
  h->hdr_len = (uint16_t)(b[2] | b[3] << 8);
  h->gso_size = (uint16_t)(b[4] | b[5] << 8);
  h->csum_start = (uint16_t)(b[6] | b[7] << 8);
  h->csum_offset = (uint16_t)(b[8] | b[9] << 8);
}

static inline void vnet_encode(uint8_t *b, const struct vnet_hdr *h) {
  b[0] = h->flags;
  b[1] = h->gso_type;
  b[2] = (uint8_t)h->hdr_len, b[3] = (uint8_t)(h->hdr_len >> 8);
  b[4] = (uint8_t)h->gso_size, b[5] = (uint8_t)(h->gso_size >> 8);
  b[6] = (uint8_t)h->csum_start, b[7] = (uint8_t)(h->csum_start >> 8);
  b[8] = (uint8_t)h->csum_offset, b[9] = (uint8_t)(h->csum_offset >> 8);
}

#endif
