#ifndef TULLE_REUSEPORT_H
#define TULLE_REUSEPORT_H
/* Attaches the inner-flow steering program (reuseport.c) to fd's SO_REUSEPORT group of `queues`
 * sockets, bound in queue order. Returns 0 or -errno (then the kernel's 4-tuple hash stays). */
int reuseport_steer_inner_flow(int fd, unsigned queues);
/* SO_REUSEPORT would let a second data plane join our port silently: before the first queue
 * binds, a plain socket binds the same address and lets go. Returns 0 or -errno (EADDRINUSE). */
#include <sys/socket.h>
int reuseport_exclusive_probe(const struct sockaddr *addr, socklen_t len);
#endif
