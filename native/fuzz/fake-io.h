/*
 * The kernel side of a queue, faked at the syscall seam: the harness links the real packet loops
 * (inbound*.c, outbound*.c) with -Wl,--wrap for poll, read, write, writev, recvmmsg, sendmmsg,
 * sendmsg and sendto. Calls on the fake descriptors below are served from queues the harness
 * filled; every other descriptor goes to the real call (libFuzzer writes its own files).
 *
 *   FAKE_UDP   recvmmsg hands out the queued datagrams (source, UDP_GRO segment size, MSG_TRUNC
 *              when larger than the buffer), sends are recorded with their UDP_SEGMENT size
 *   FAKE_TUN   read hands out the queued TUN packets (virtio-net header included when the loop
 *              uses one), writes are recorded
 *   FAKE_STOP  never readable: packet threads live across inputs (fake_run)
 */
#ifndef TULLE_FUZZ_FAKE_IO_H
#define TULLE_FUZZ_FAKE_IO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FAKE_TUN 1000001
#define FAKE_UDP 1000002
#define FAKE_STOP 1000003

struct fake_msg {
  uint8_t *data;
  size_t len;
  struct sockaddr_storage addr; /* source (received) or destination (sent) */
  socklen_t addr_len;
  int seg; /* UDP_GRO (received) / UDP_SEGMENT (sent) segment size, 0 = none */
};

struct fake_queue {
  struct fake_msg *m;
  size_t n, cap, next; /* next = first not yet handed out (input queues) */
};

extern struct fake_queue fake_udp_in, fake_tun_in, fake_udp_out, fake_tun_out;
extern int fake_send_errno; /* non-zero: UDP_SEGMENT trains fail with it (the GSO fallback path) */

void fake_push(struct fake_queue *q, const uint8_t *data, size_t len, const struct sockaddr_storage *addr,
               socklen_t addr_len, int seg);
void fake_reset(void);

/* Runs the packet thread `key` (started on first use as fn(arg), kept for later inputs) until it
 * has taken all queued input and waits in poll again. Queues are the harness's again after. */
#define FAKE_MAX_THREADS 64
void fake_run(void *(*fn)(void *), void *arg, int key);

#endif
