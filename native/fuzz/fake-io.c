#include "fake-io.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sys/uio.h>

struct fake_queue fake_udp_in, fake_tun_in, fake_udp_out, fake_tun_out;
int fake_send_errno;

static int is_fake(int fd) { return fd == FAKE_TUN || fd == FAKE_UDP || fd == FAKE_STOP; }

void fake_push(struct fake_queue *q, const uint8_t *data, size_t len, const struct sockaddr_storage *addr,
               socklen_t addr_len, int seg) {
  if (q->n == q->cap) {
    q->cap = q->cap ? q->cap * 2 : 64;
    q->m = realloc(q->m, q->cap * sizeof(*q->m));
    if (!q->m) abort();
  }
  struct fake_msg *m = &q->m[q->n++];
  memset(m, 0, sizeof(*m));
  m->data = malloc(len ? len : 1);
  if (!m->data) abort();
  memcpy(m->data, data, len);
  m->len = len;
  if (addr && addr_len) memcpy(&m->addr, addr, addr_len < sizeof(m->addr) ? addr_len : sizeof(m->addr));
  m->addr_len = addr_len;
  m->seg = seg;
}

static void clear(struct fake_queue *q) {
  for (size_t i = 0; i < q->n; i++) free(q->m[i].data);
  q->n = q->next = 0;
}

void fake_reset(void) {
  clear(&fake_udp_in), clear(&fake_tun_in), clear(&fake_udp_out), clear(&fake_tun_out);
  fake_send_errno = 0;
}

static size_t gather(const struct iovec *iov, size_t n, uint8_t **out) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += iov[i].iov_len;
  uint8_t *b = malloc(len ? len : 1);
  if (!b) abort();
  for (size_t i = 0, at = 0; i < n; at += iov[i].iov_len, i++) memcpy(b + at, iov[i].iov_base, iov[i].iov_len);
  *out = b;
  return len;
}

static void record(struct fake_queue *q, const struct iovec *iov, size_t n, const void *addr, socklen_t al, int seg) {
  uint8_t *b;
  size_t len = gather(iov, n, &b);
  fake_push(q, b, len, addr, al, seg);
  free(b);
}

/* Packet threads live across inputs (a loop allocates megabytes when it starts). Only the active
 * one may take input; it reports idle when it polls with nothing left for it. */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cond = PTHREAD_COND_INITIALIZER;
static int active = -1;
static uint64_t gen, idle_gen;
static __thread int me = -1;

struct thread_arg {
  void *(*fn)(void *);
  void *arg;
  int key;
};

static void *thread_main(void *p) {
  struct thread_arg a = *(struct thread_arg *)p;
  free(p);
  me = a.key;
  return a.fn(a.arg);
}

void fake_run(void *(*fn)(void *), void *arg, int key) {
  static pthread_t threads[FAKE_MAX_THREADS];
  static int started[FAKE_MAX_THREADS];
  if (key < 0 || key >= FAKE_MAX_THREADS) abort();
  pthread_mutex_lock(&run_lock);
  active = key;
  gen++;
  pthread_cond_broadcast(&run_cond);
  pthread_mutex_unlock(&run_lock);
  if (!started[key]) {
    struct thread_arg *a = malloc(sizeof(*a));
    if (!a) abort();
    *a = (struct thread_arg){fn, arg, key};
    if (pthread_create(&threads[key], NULL, thread_main, a) != 0) abort();
    started[key] = 1;
  }
  pthread_mutex_lock(&run_lock);
  while (idle_gen != gen) pthread_cond_wait(&run_cond, &run_lock);
  active = -1; /* the harness may fill the queues again */
  pthread_mutex_unlock(&run_lock);
}

int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout) {
  int fake = 0;
  for (nfds_t i = 0; i < n; i++) fake |= is_fake(fds[i].fd);
  if (!fake) return __real_poll(fds, n, timeout);
  int fd = fds[0].fd;
  struct fake_queue *q = fd == FAKE_UDP ? &fake_udp_in : &fake_tun_in;
  pthread_mutex_lock(&run_lock);
  while (!(active == me && q->next < q->n)) {
    if (active == me && idle_gen != gen) {
      idle_gen = gen;
      pthread_cond_broadcast(&run_cond);
    }
    pthread_cond_wait(&run_cond, &run_lock);
  }
  pthread_mutex_unlock(&run_lock);
  for (nfds_t i = 0; i < n; i++) fds[i].revents = fds[i].fd == fd ? POLLIN : 0;
  return 1;
}

ssize_t __real_read(int fd, void *buf, size_t count);
ssize_t __wrap_read(int fd, void *buf, size_t count) {
  if (fd != FAKE_TUN) return __real_read(fd, buf, count);
  if (fake_tun_in.next == fake_tun_in.n) {
    errno = EAGAIN;
    return -1;
  }
  struct fake_msg *m = &fake_tun_in.m[fake_tun_in.next++];
  size_t l = m->len < count ? m->len : count; /* a TUN read truncates */
  memcpy(buf, m->data, l);
  return (ssize_t)l;
}

ssize_t __real_write(int fd, const void *buf, size_t count);
ssize_t __wrap_write(int fd, const void *buf, size_t count) {
  if (fd != FAKE_TUN) return __real_write(fd, buf, count);
  struct iovec iov = {(void *)buf, count};
  record(&fake_tun_out, &iov, 1, NULL, 0, 0);
  return (ssize_t)count;
}

ssize_t __real_writev(int fd, const struct iovec *iov, int n);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int n) {
  if (fd != FAKE_TUN) return __real_writev(fd, iov, n);
  record(&fake_tun_out, iov, (size_t)n, NULL, 0, 0);
  return (ssize_t)fake_tun_out.m[fake_tun_out.n - 1].len;
}

int __real_recvmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags, struct timespec *t);
int __wrap_recvmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags, struct timespec *t) {
  if (fd != FAKE_UDP) return __real_recvmmsg(fd, msgs, vlen, flags, t);
  unsigned k = 0;
  for (; k < vlen && fake_udp_in.next < fake_udp_in.n; k++) {
    struct fake_msg *m = &fake_udp_in.m[fake_udp_in.next++];
    struct msghdr *h = &msgs[k].msg_hdr;
    size_t at = 0;
    for (size_t i = 0; i < h->msg_iovlen && at < m->len; i++) {
      size_t l = m->len - at < h->msg_iov[i].iov_len ? m->len - at : h->msg_iov[i].iov_len;
      memcpy(h->msg_iov[i].iov_base, m->data + at, l);
      at += l;
    }
    h->msg_flags = at < m->len ? MSG_TRUNC : 0;
    msgs[k].msg_len = (unsigned)at;
    if (h->msg_name) {
      socklen_t l = h->msg_namelen < m->addr_len ? h->msg_namelen : m->addr_len;
      memcpy(h->msg_name, &m->addr, l);
      h->msg_namelen = m->addr_len;
    }
    if (m->seg > 0 && h->msg_control && h->msg_controllen >= CMSG_SPACE(sizeof(int))) {
      struct cmsghdr *cm = (struct cmsghdr *)h->msg_control;
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_GRO;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(cm), &m->seg, sizeof(int));
      h->msg_controllen = CMSG_SPACE(sizeof(int));
    } else {
      if (m->seg > 0 && h->msg_control) h->msg_flags |= MSG_CTRUNC;
      h->msg_controllen = 0;
    }
  }
  if (k == 0) {
    errno = EAGAIN;
    return -1;
  }
  return (int)k;
}

static int segment_of(const struct msghdr *h) {
  if (!h->msg_control || h->msg_controllen < sizeof(struct cmsghdr)) return 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR((struct msghdr *)h, cm))
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_SEGMENT) {
      uint16_t v;
      memcpy(&v, CMSG_DATA(cm), sizeof(v));
      return v;
    }
  return 0;
}

ssize_t __real_sendmsg(int fd, const struct msghdr *h, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *h, int flags) {
  if (fd != FAKE_UDP) return __real_sendmsg(fd, h, flags);
  int seg = segment_of(h);
  if (seg && fake_send_errno) {
    errno = fake_send_errno;
    return -1;
  }
  record(&fake_udp_out, h->msg_iov, h->msg_iovlen, h->msg_name, h->msg_namelen, seg);
  return (ssize_t)fake_udp_out.m[fake_udp_out.n - 1].len;
}

int __real_sendmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags);
int __wrap_sendmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags) {
  if (fd != FAKE_UDP) return __real_sendmmsg(fd, msgs, vlen, flags);
  unsigned k = 0;
  for (; k < vlen; k++) {
    ssize_t r = __wrap_sendmsg(fd, &msgs[k].msg_hdr, flags);
    if (r < 0) return k ? (int)k : -1;
    msgs[k].msg_len = (unsigned)r;
  }
  return (int)k;
}

ssize_t __real_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tl);
ssize_t __wrap_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tl) {
  if (fd != FAKE_UDP) return __real_sendto(fd, buf, len, flags, to, tl);
  struct iovec iov = {(void *)buf, len};
  record(&fake_udp_out, &iov, 1, to, tl, 0);
  return (ssize_t)len;
}
