/*
 * Which offloads a data plane asks for, which it got, and the setup of each queue's fds.
 *
 *   csum      TUN_F_CSUM: the kernel hands over packets with partial checksums (we complete them)
 *   tso, uso  TUN_F_TSO4|6, TUN_F_USO4|6: TUN reads return TCP/UDP super-packets (we split)
 *   gso       UDP_SEGMENT: one sendmsg carries a train of equal-sized datagrams
 *   gro       UDP_GRO: one recvmsg returns such a train
 *   coalesce  userspace GRO: segments of a flow are written to the TUN as one super-packet
 *             (TCP; UDP too when the TUN accepted USO, the sign the kernel knows GSO_UDP_L4)
 *   inline_replies  (opt-in, see offload_queue) not a kernel offload
 *   spin_us   not a kernel offload: after a small outbound batch, wait this long for the answer
 *             awake (see offload_queue) before sleeping; 0 = never
 *   reply_queue  not a kernel offload: the inbound thread writes through a TUN queue of its own
 *             and forwards what the kernel queues there (see offload_queue)
 *
 * Anything refused is turned off, never an error; the first queue decides, the others follow.
 */
#ifndef TULLE_OFFLOAD_H
#define TULLE_OFFLOAD_H
#include <pthread.h>

struct dp_offload {
  int enabled; /* 0: the plain loop of outbound.c/inbound.c, no virtio-net header at all */
  int csum, tso, uso, gso, gro, coalesce;
  int inline_replies; /* see offload_queue */
  int spin_us;        /* see offload_queue */
  int reply_queue;    /* see offload_queue */
};

struct dp_offload_state {
  int vnet_len; /* bytes of virtio-net header on every TUN read/write, 0 without */
  int csum, tso, uso, gso, gro, coalesce_tcp, coalesce_udp;
  int inline_replies;
  int spin_us;
  int reply_queue; /* every queue has its reply_fd (dataplane.h) */
  int reuseport_inner; /* not an offload: queues > 1 and inbound steered by inner flow */
};

struct dataplane;
struct dp_queue;
struct outbound;

/*
 * What a queue's two threads share. The outbound state (buffers, pending trains) is used by
 * whoever holds out_lock, so packets read from the TUN are sent in the order they were read.
 * With inline_replies the inbound thread, right after its TUN writes, takes the lock if it is
 * free and forwards what the kernel queued in the meantime (ACKs, echo replies, data the ACKs
 * released): one thread wake-up less per round trip.
 *
 * The inbound state likewise, under in_lock. With spin_us the outbound thread, after a batch of
 * at most SPIN_MAX_READS TUN reads (a request, not a bulk transfer), polls both its fds without
 * sleeping for up to spin_us: the answer (or the next request) is then handled by a thread that
 * is awake, the inbound thread's work under in_lock if it is free, instead of waking a sleeping
 * one. The spin ends at the first event, when in_lock is taken, or after spin_us; with no
 * traffic nothing spins.
 *
 * With reply_queue each queue opens a second TUN queue (IFF_MULTI_QUEUE, even for one queue),
 * reply_fd, which only its inbound thread reads. The TUN driver steers a flow's packets to the
 * queue that last wrote a packet of that flow (tun_get_user -> tun_flow_update records the
 * writer's queue by the symmetric flow hash; tun_automq_select_queue looks it up on transmit;
 * entries age out after 3 s idle). The inbound thread writes what it received through reply_fd,
 * so the host's answers (echo replies, ACKs, a server's response) are queued on reply_fd: the
 * inbound thread reads them right after its writes (what the kernel answered at once) and polls
 * reply_fd beside its socket (what an application answers later), and the outbound thread is
 * neither woken nor needed for them. Those reads go through the same outbound stages with a
 * second outbound state (inbound.reply) owned by the inbound thread, used under in_lock like
 * the rest of its state. A flow that starts on this host and gets no packet back (one-way UDP)
 * stays with the hash's pick of all 2n queues. The kernel updates the flow table only after it
 * delivered the written packet, so the very first answer of a new flow can still go elsewhere.
 */
#define SPIN_MAX_READS 4
#ifndef DP_DEFAULT_SPIN_US
#define DP_DEFAULT_SPIN_US 0
#endif
#ifndef DP_DEFAULT_REPLY_QUEUE
#define DP_DEFAULT_REPLY_QUEUE 1
#endif
struct offload_queue {
  pthread_mutex_t out_lock;
  struct outbound *out;
  pthread_mutex_t in_lock;
  struct inbound *in; /* the inbound thread's state, NULL when it is not running */
};

/* An outbound state reading the TUN queue tun_fd (the queue's tun_fd, or its reply_fd). */
struct outbound *outbound_new(const struct dataplane *dp, int tun_fd);
void outbound_free(struct outbound *o);
/* Reads, splits, routes and sends up to max_batches batches from o's TUN queue; caller holds the
 * lock of o (out_lock, or in_lock for the inbound thread's reply state).
 * Returns the number of TUN reads that returned a packet. */
long outbound_drain(struct dp_queue *q, struct outbound *o, int max_batches);
/* Receives, checks, coalesces and writes up to max_batches batches from the UDP socket; caller
 * holds in_lock. Returns the number of datagrams received. */
long inbound_drain(struct dp_queue *q, struct inbound *in, int max_batches);
void offload_free_queue(struct dp_queue *q);
/* Extra TUNSETIFF flags for the queue about to be opened. */
int offload_tun_flags(const struct dataplane *dp);
/* After the queue's fds are open: offload ioctls and socket options, recording what took. */
void offload_setup_queue(struct dataplane *dp, struct dp_queue *q);

void *outbound_offload_thread(void *arg);
void *inbound_offload_thread(void *arg);

#endif
