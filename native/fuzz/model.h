/*
 * Independent models the harnesses compare the native code against: IP parsing as the inbound
 * checks define it, and what the kernel gets back from a TUN write (virtio-net header checked,
 * super-packets split into their segments), compared per flow so order within a flow is checked.
 */
#ifndef TULLE_FUZZ_MODEL_H
#define TULLE_FUZZ_MODEL_H
#include <stddef.h>
#include <stdint.h>

/* ip_parse's contract, written out again: 0 when one well-formed IPv4/IPv6 packet of len bytes. */
int model_ip_ok(const uint8_t *p, size_t len);

/* An IPv4 header's checksum verifies (IPv6 has none): the inbound checks drop what fails. */
int model_ip4_csum_ok(const uint8_t *p);

struct pkt_list {
  uint8_t **p;
  size_t *len;
  size_t n, cap;
};
void pl_push(struct pkt_list *l, const uint8_t *p, size_t len);
void pl_clear(struct pkt_list *l);

/* Decodes TUN writes (vnet: each starts with a virtio-net header), checks each header against its
 * packet (NEEDS_CSUM at the transport header; a super-packet at most 64 segments and 65535 bytes)
 * and appends the inner packets to out as the kernel would see them: a NEEDS_CSUM packet's
 * checksum completed. (A packet marked NEEDS_CSUM whose checksum was wrong and not vouched for
 * then differs from what was sent: the flow comparison catches it.) */
void model_tun_writes(const struct pkt_list *writes, int vnet, struct pkt_list *out);

/* A packet whose bytes were vouched for (a UDP_GRO train, an IPv6 peer, the AEAD: gro.h) as the
 * kernel gets it from tulle: if it is TCP/UDP in a form the coalescer reads (IPv4 without options
 * or fragments, IPv6 without extension headers, a whole TCP header; UDP with a checksum and a
 * length field that agrees), its transport checksum recomputed; else unchanged. In place. */
void model_vouched(uint8_t *p, size_t len);

/* Aborts unless got and want hold the same packets and, within each flow (addresses, protocol,
 * ports), in the same order. IPv4 id and header checksum are not compared (GRO renumbers). */
void model_compare_flows(const struct pkt_list *got, const struct pkt_list *want, const char *what);

#endif
