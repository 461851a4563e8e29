#ifndef TULLE_REUSEPORT_H
#define TULLE_REUSEPORT_H
/* Attaches the inner-flow steering program (reuseport.c) to fd's SO_REUSEPORT group of `queues`
 * sockets, bound in queue order. Returns 0 or -errno (then the kernel's 4-tuple hash stays). */
int reuseport_steer_inner_flow(int fd, unsigned queues);
#endif
