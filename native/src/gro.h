/*
 * Inbound coalescing (userspace GRO): consecutive in-order segments of one TCP flow (and of one
 * UDP flow when the TUN accepts USO) become one super-packet, written to the TUN once with a
 * virtio-net header (GSO_TCPV4/TCPV6/UDP_L4 + NEEDS_CSUM) so the kernel finishes the job.
 *
 * Zero-copy: the table only records where packets are. An output packet is an iovec list
 *   [virtio-net header][head packet, headers patched in place][payload of segment 2]...
 * borrowed from the caller's receive buffers, which must stay put until the writes are done.
 *
 * Rules (those of the kernel's tcp_gro_receive, stricter where simpler): same addresses and
 * ports; IPv4 without options or fragmentation, same TOS, TTL and DF; IPv6 without extension
 * headers, same first word and hop limit; TCP flags ACK or ACK|PSH only, same ACK, window and
 * options, contiguous sequence numbers, nothing after a PSH; all segments of gso_size payload
 * but the last, which may be shorter; at most GRO_MAX_SEGS segments and 65535 bytes.
 *
 * Checksums: the kernel recomputes the checksum of what it is handed with NEEDS_CSUM, so a
 * corrupt segment must never be merged or marked so. A candidate's transport checksum is
 * verified first, unless the caller vouches for the bytes (`trusted`: the kernel verified the
 * outer UDP checksum, which covers the whole inner packet, or the AEAD authenticated them); one
 * that fails is written on its own, untouched, for the kernel to reject. A UDP packet without a
 * checksum is never vouched for. Single packets that verified go out NEEDS_CSUM with the
 * pseudo-header sum (when the TUN takes a virtio-net header): the kernel does not sum them again.
 */
#ifndef TULLE_GRO_H
#define TULLE_GRO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "vnet.h"

/* Capacities of one table. Nothing assumes how many packets a batch brings (a UDP_GRO train may
 * hold 128 segments, a batch 64 trains): gro_add refuses with GRO_FULL when either array is full,
 * and the caller writes out what the table holds and adds again. */
#define GRO_MAX_PACKETS 4096 /* output packets (items) held at once */
#define GRO_MAX_LINKS 4096   /* merged segments (links) held at once */
#define GRO_MAX_SEGS 64      /* per output packet */
#define GRO_HASH_SLOTS 8192 /* open addressing, >= 2 x GRO_MAX_PACKETS */

struct gro_item {
  uint8_t *pkt;        /* head packet (borrowed) */
  uint32_t total;      /* IP length of the output packet */
  uint32_t next_seq;   /* TCP: sequence number that may follow */
  int32_t last;        /* last appended entry in the table's links, -1 if none */
  int32_t first;
  uint16_t l4, l4len;  /* transport header offset and length */
  uint16_t gso_size;   /* payload of the head segment */
  uint16_t last_size;  /* payload of the last segment */
  uint16_t nseg;
  uint32_t flow;       /* hash of addresses, ports, protocol; 0 = not TCP/UDP */
  uint8_t kind;        /* see gro.c */
  uint8_t flags;
  uint8_t proto;
};

struct gro_link {
  const uint8_t *data; /* payload slice of an appended segment */
  uint32_t len;
  int32_t next;
};

struct gro_table {
  int tcp, udp;        /* what may be coalesced */
  int partial;         /* output has a virtio-net header: verified singles go out NEEDS_CSUM */
  int n_items, n_links;
  uint64_t coalesced;  /* packets merged into an earlier one, since init */
  uint64_t bad_csum;   /* candidates whose checksum did not verify, since init */
  uint16_t gen;                  /* slot entries of older generations are empty */
  uint16_t slot_gen[GRO_HASH_SLOTS];
  uint16_t slot[GRO_HASH_SLOTS]; /* flow -> index of the flow's latest item */
  struct gro_item items[GRO_MAX_PACKETS];
  struct gro_link links[GRO_MAX_LINKS];
};

enum gro_add_result {
  GRO_FULL = -1,  /* refused, nothing changed: write out the table (gro_output, gro_reset), add again */
  GRO_HELD = 0,   /* a new output packet */
  GRO_MERGED = 1, /* appended to an earlier packet of its flow */
};

/* tcp, udp: what may be coalesced; partial: the TUN takes a virtio-net header (else single
 * packets are written untouched and nothing may be coalesced). */
void gro_init(struct gro_table *t, int tcp, int udp, int partial);
/* Forgets the batch (call after the writes). */
void gro_reset(struct gro_table *t);
/* Adds one IP packet (len bytes, checked by ip_parse; anything shorter than its headers is held
 * as it is, never merged). trusted: its bytes are vouched for (see above), its transport checksum
 * is not summed. Returns an enum gro_add_result; on GRO_FULL the table is unchanged. */
int gro_add(struct gro_table *t, uint8_t *pkt, size_t len, int trusted);
/* Output packet i: patches the head's headers, fills vnet (VNET_HDR_LEN bytes) and iov
 * (iov_cap entries; GRO_MAX_SEGS always suffice; vnet not included: the caller puts it first
 * when the TUN has IFF_VNET_HDR). Returns the number of iovecs, or -1 when iov_cap is too small
 * (nothing patched); *segs = inner packets it carries. */
int gro_output(struct gro_table *t, int i, uint8_t *vnet, struct iovec *iov, int iov_cap, int *segs);

#endif
