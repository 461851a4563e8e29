/*
 * Which offloads a data plane asks for, which it got, and the setup of each queue's fds.
 *
 *   csum      TUN_F_CSUM: the kernel hands over packets with partial checksums (we complete them)
 *   tso, uso  TUN_F_TSO4|6, TUN_F_USO4|6: TUN reads return TCP/UDP super-packets (we split)
 *   gso       UDP_SEGMENT: one sendmsg carries a train of equal-sized datagrams
 *   gro       UDP_GRO: one recvmsg returns such a train
 *   coalesce  userspace GRO: segments of a flow are written to the TUN as one super-packet
 *             (TCP; UDP too when the TUN accepted USO, the sign the kernel knows GSO_UDP_L4)
 *
 * Anything refused is turned off, never an error; the first queue decides, the others follow.
 */
#ifndef TULLE_OFFLOAD_H
#define TULLE_OFFLOAD_H

struct dp_offload {
  int enabled; /* 0: the plain loop of outbound.c/inbound.c, no virtio-net header at all */
  int csum, tso, uso, gso, gro, coalesce;
};

struct dp_offload_state {
  int vnet_len; /* bytes of virtio-net header on every TUN read/write, 0 without */
  int csum, tso, uso, gso, gro, coalesce_tcp, coalesce_udp;
  int reuseport_inner; /* not an offload: queues > 1 and inbound steered by inner flow */
};

struct dataplane;
struct dp_queue;
/* Extra TUNSETIFF flags for the queue about to be opened. */
int offload_tun_flags(const struct dataplane *dp);
/* After the queue's fds are open: offload ioctls and socket options, recording what took. */
void offload_setup_queue(struct dataplane *dp, struct dp_queue *q);

void *outbound_offload_thread(void *arg);
void *inbound_offload_thread(void *arg);

#endif
