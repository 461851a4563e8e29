/*
 * LD_PRELOAD allocator shim for native lifecycle tests (built by test/bed/alloc-shim.ts):
 *
 *   TULLE_SHIM_FAIL_ALIGNED_ALLOC=N   aligned_alloc of exactly N bytes fails (ENOMEM): the packet
 *                                     threads' buffers (64 slots x 65600 bytes) are the only
 *                                     allocation of that size
 *   TULLE_SHIM_QUARANTINE=MIN,MAX     freed chunks whose usable size is in [MIN, MAX] are filled
 *                                     with 0xa5 and never reused; at exit each is checked, and a
 *                                     chunk written after it was freed is reported on stderr as
 *                                     "tulle-shim: written after free" (a use-after-free)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

#define QUARANTINE 65536
static size_t fail_aligned, q_min, q_max;
static void *q_ptr[QUARANTINE];
static size_t q_len[QUARANTINE];
static atomic_int q_n;

__attribute__((constructor)) static void shim_init(void) {
  const char *f = getenv("TULLE_SHIM_FAIL_ALIGNED_ALLOC"), *q = getenv("TULLE_SHIM_QUARANTINE");
  if (f) fail_aligned = strtoul(f, NULL, 10);
  if (q && sscanf(q, "%zu,%zu", &q_min, &q_max) != 2) q_min = q_max = 0;
}

void *aligned_alloc(size_t align, size_t size) {
  if (fail_aligned && size == fail_aligned) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_memalign(align, size);
}

void free(void *p) {
  if (p && q_max) {
    size_t n = malloc_usable_size(p);
    if (n >= q_min && n <= q_max) {
      int i = atomic_fetch_add(&q_n, 1);
      if (i < QUARANTINE) {
        memset(p, 0xa5, n);
        q_ptr[i] = p;
        q_len[i] = n;
        return;
      }
    }
  }
  __libc_free(p);
}

__attribute__((destructor)) static void shim_check(void) {
  int n = atomic_load(&q_n);
  if (n > QUARANTINE) n = QUARANTINE;
  for (int i = 0; i < n; i++) {
    const unsigned char *b = q_ptr[i];
    for (size_t k = 0; k < q_len[i]; k++)
      if (b[k] != 0xa5) {
        char msg[128];
        int l = snprintf(msg, sizeof(msg), "tulle-shim: written after free: chunk of %zu bytes, byte %zu\n", q_len[i], k);
        (void)!write(2, msg, (size_t)l);
        break;
      }
  }
}
