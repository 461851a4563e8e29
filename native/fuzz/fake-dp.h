/*
 * A data plane as dp_start would leave it, without its threads or real descriptors: one queue on
 * the fake descriptors of fake-io.h, a fixed topology programmed through the real dp_apply, and
 * (encrypted mode) one session per peer with fixed test keys. The harness then runs a packet
 * loop's thread function on its own thread until the fake input is used up.
 *
 * Topology: peer i (0..3) has underlay 198.18.0.(10+i) port 51820+i (peer 3: fd00::3 when the
 * socket is IPv6), subnets 10.244.(i+1).0/24 and fd10:244:(i+1)::/64; session local index
 * 0x00010100 * (i+1) (distinct low 16 bits), remote index 0x200 + i.
 */
#ifndef TULLE_FUZZ_FAKE_DP_H
#define TULLE_FUZZ_FAKE_DP_H
#include "dataplane.h"
#include "wg.h"
#include "vnet.h"

#define FDP_PEERS 4

struct fdp_config {
  int encrypted;
  int sock6;     /* IPv6 (dual-stack) socket: IPv4 peers appear v4-mapped */
  int mtu;
  int offload;   /* the offload loops (else the plain ones) */
  int vnet;      /* TUN with a virtio-net header */
  int coalesce_tcp, coalesce_udp, gso, gro;
  int fresh_outbound; /* new outbound state (else kept from the last input when compatible) */
};

struct dataplane *fdp_new(const struct fdp_config *cfg);
void fdp_free(struct dataplane *dp);
void fdp_destroy(struct dataplane *dp);
/* Underlay address of peer i (or of an unknown host for i >= FDP_PEERS) as the socket reports it. */
socklen_t fdp_peer_addr(const struct dataplane *dp, int i, struct sockaddr_storage *out);
uint32_t fdp_local_index(int peer);
/* Our static public key (a test value): handshake messages need a mac1 made from it. */
const uint8_t *fdp_public_key(void);
/* Test keys: what peer i seals with (our receive key) and what it opens with (our send key). */
void fdp_key(int peer, int ours_send, uint8_t out[32]);
/* Peer whose subnet holds the inner address (family 4/6), or -1. */
int fdp_route(int family, const uint8_t *addr);

/* Queue 0's per-peer counter `slot` (dataplane.h PC_*) of a peer; 0 when it has no memory. */
uint64_t fdp_peer_counter(const struct dataplane *dp, uint32_t peer, int slot);
/* The global counter (counters.h TC_*) of the same name as per-peer counter `slot`, or -1. */
int fdp_global_of_peer_counter(int slot);
/* Per-peer drops, reason by reason: only peers hold them, and their sum is at most the global
 * counter of that reason, equal for the reasons in `exact` (bit PC_* set). */
void fdp_check_peer_drops(const struct dataplane *dp, uint32_t exact);

#endif
