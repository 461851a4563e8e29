#ifndef TULLE_TUN_H
#define TULLE_TUN_H
/* Open (creating if needed) a TUN device, IFF_TUN|IFF_NO_PI, non-blocking. The kernel's chosen
 * name is written back into name (IFNAMSIZ bytes). Returns the fd, or -errno. */
int tun_open(char *name, int flags);
#endif
