/*
 * Inbound flow steering across queues. With one peer the outer 4-tuple of every datagram is the
 * same (node:8285 -> node:8285), so SO_REUSEPORT's default hash sends all of a peer's traffic to
 * one socket, i.e. one queue. This classic BPF program picks the socket by the *inner* flow
 * instead: (inner source port ^ inner destination port) % queues, read from the UDP payload
 * (reuseport programs see the skb from the UDP payload on). A UDP_SEGMENT train carries one
 * inner flow (outbound-offload.c groups by flow), so its first packet speaks for all of it.
 *
 *   payload[0] == 0x45 (IPv4, no options), protocol TCP or UDP: ports at 20..23;
 *   0x6_ (IPv6), next header TCP or UDP: ports at 40..43;  anything else: socket 0.
 *
 * Only TCP and UDP have ports there: an ICMP echo's bytes 20..23 hold its type and checksum, which
 * changes with every packet, so one ping flow was spread over the queues (and its replies, with
 * the reply queue of offload.h, over the queues' inbound threads).
 */
#include "reuseport.h"
#include <errno.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <unistd.h>

int reuseport_steer_inner_flow(int fd, unsigned queues) {
  if (queues < 2) return 0;
  struct sock_filter code[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x45, 0, 9), /* IPv4 without options, else 11 */
      /* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 1, 0),
      /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 17), /* neither TCP nor UDP: 22 */
      /* 5 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),
      /* 6 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
      /* 7 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 22),
      /* 8 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      /* 9 */ BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, queues),
      /* 10 */ BPF_STMT(BPF_RET | BPF_A, 0),
      /* 11 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
      /* 12 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 9), /* not IPv6: 22 */
      /* 13 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
      /* 14 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 1, 0),
      /* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 6), /* neither TCP nor UDP: 22 */
      /* 16 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 40),
      /* 17 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
      /* 18 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 42),
      /* 19 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      /* 20 */ BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, queues),
      /* 21 */ BPF_STMT(BPF_RET | BPF_A, 0),
      /* 22 */ BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

int reuseport_exclusive_probe(const struct sockaddr *addr, socklen_t len) {
  int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int zero = 0, r = 0;
  if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd, addr, len) < 0) r = -errno;
  close(fd);
  return r;
}
