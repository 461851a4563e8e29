#include "loop.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

struct slot *alloc_slots(void) { return aligned_alloc(64, sizeof(struct slot) * DP_BATCH); }

int wait_readable(struct dataplane *dp, int fd) {
  struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = dp->stop_fd, .events = POLLIN}};
  for (;;) {
    if (atomic_load_explicit(&dp->stopping, memory_order_relaxed)) return 0;
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[1].revents & POLLIN)) return 0;
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) return 1;
  }
}
