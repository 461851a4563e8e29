/*
 * Outbound segmentation (userspace GSO): a TUN read with IFF_VNET_HDR returns either one packet,
 * maybe with a partial checksum to complete, or a TCP/UDP super-packet of up to 64 KB that must
 * be cut into segments of gso_size payload bytes before it goes on the wire.
 *
 * Zero-copy: a segment is its rebuilt headers (written into the caller's header area) plus a
 * payload slice borrowed from the super-packet, to be sent with one iovec each, or sealed from
 * the two pieces by a cipher. Nothing is allocated; the super-packet itself is not modified.
 */
#ifndef TULLE_GSO_H
#define TULLE_GSO_H
#include <stddef.h>
#include <stdint.h>
#include "vnet.h"

#define GSO_MAX_HDR 192 /* IP header with extensions + TCP header with options */

struct gso_seg {
  uint8_t *hdr;        /* IP + TCP/UDP header of this segment: caller's header area */
  const uint8_t *data; /* payload: borrowed from the super-packet */
  uint16_t hdr_len, data_len;
};

enum gso_error {
  GSO_E_HEADER = -1, /* virtio-net header inconsistent with the packet */
  GSO_E_ROOM = -2,   /* more segments than the caller has room for */
};

/* Completes the partial checksum at csum_start/csum_offset (VNET_F_NEEDS_CSUM) in place. */
int gso_complete_csum(uint8_t *pkt, size_t len, const struct vnet_hdr *h);

/*
 * Splits the super-packet pkt[0..len) described by h (gso_type TCPV4, TCPV6 or UDP_L4) into
 * segments: headers go to hdrs + i * hdr_stride (hdr_stride >= GSO_MAX_HDR), descriptors to
 * segs[i]. Per segment: IPv4 id + i, total length and header checksum; IPv6 payload length;
 * TCP sequence number advanced, CWR only on the first, FIN and PSH only on the last; UDP length;
 * the full TCP/UDP checksum. Returns the number of segments or a gso_error.
 */
int gso_split(const uint8_t *pkt, size_t len, const struct vnet_hdr *h, uint8_t *hdrs, size_t hdr_stride,
              struct gso_seg *segs, int max_segs);

/* The same, in pieces: segments first .. first + max_segs - 1 (fewer at the end) of the split,
 * numbered as in a whole split (IPv4 id, sequence numbers, flags). *total = segments of the whole
 * super-packet. Returns how many were written (>= 1), or GSO_E_HEADER. However small gso_size
 * is, a caller with room for any number of segments gets through the packet. */
int gso_split_from(const uint8_t *pkt, size_t len, const struct vnet_hdr *h, int first, uint8_t *hdrs, size_t hdr_stride,
                   struct gso_seg *segs, int max_segs, int *total);

#endif
