/*
 * Micro-benchmarks of the C hot path, for bench/micro/: each runs one stage `iterations` times
 * on a synthetic packet and reports nanoseconds per operation (CLOCK_MONOTONIC around the loop).
 *
 *   split     gso_split of a 64 KB TCP/IPv4 super-packet, MSS 1408 (47 segments)
 *   coalesce  gro_add of those 47 segments + gro_output (one super-packet back)
 *   single    gro_add + gro_output of one lone 1460-byte segment (nothing to merge with)
 *   coalesce-trusted, single-trusted: the same with the bytes vouched for (gro.h): no checksum sums
 *   csum      csum_add over 1408 bytes
 *   complete  gso_complete_csum of a 1448-byte TCP packet
 *   lookup    rt_lookup of random addresses in 1024 /24 routes
 *   seal      aead_seal (ChaCha20-Poly1305, encrypted mode) of a 1424-byte segment in place
 *   open      aead_open of the same
 *   seal-small, open-small: the same for a 96-byte message (a 64-byte UDP datagram, padded)
 */
#include "micro-bench.h"
#include "csum.h"
#include "gro.h"
#include "gso.h"
#include "route-table.h"
#include "aead.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUPER_PAYLOAD 65000
#define MSS 1408

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* IPv4 + TCP (20 + 32 bytes with a timestamp option) + payload; partial checksum. */
static size_t build_super(uint8_t *p, size_t payload, struct vnet_hdr *h) {
  size_t len = 52 + payload;
  memset(p, 0, 52);
  p[0] = 0x45, p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len, p[6] = 0x40, p[8] = 64, p[9] = 6;
  p[12] = 10, p[13] = 244, p[14] = 1, p[15] = 2, p[16] = 10, p[17] = 244, p[18] = 2, p[19] = 3;
  p[20] = 0x9c, p[21] = 0x40, p[22] = 0x1f, p[23] = 0x90, p[24] = 1, p[32] = 0x80, p[33] = 0x10, p[34] = 0x01;
  p[40] = 1, p[41] = 1, p[42] = 8, p[43] = 10;
  for (size_t i = 52; i < len; i++) p[i] = (uint8_t)(i * 7);
  csum_ip4_header(p, 20);
  csum_store(p + 36, csum_fold(csum_pseudo(4, p + 12, p + 16, 6, (uint32_t)(len - 20))));
  *h = (struct vnet_hdr){VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 52, MSS, 20, 16};
  return len;
}

double micro_bench(const char *name, long iterations, double *per_unit, const char **unit) {
  static uint8_t pkt[70000];
  static uint8_t hdrs[64 * 256], segbuf[64][1600];
  static struct gso_seg segs[64];
  struct vnet_hdr h;
  size_t len = build_super(pkt, SUPER_PAYLOAD, &h);
  volatile uint64_t sink = 0;
  double t0, t1;
  *per_unit = 0;
  *unit = "op";
  if (!strcmp(name, "split")) {
    int n = 0;
    t0 = now_ns();
    for (long i = 0; i < iterations; i++) n = gso_split(pkt, len, &h, hdrs, 256, segs, 64);
    t1 = now_ns();
    *per_unit = (t1 - t0) / (double)iterations / n;
    *unit = "segment";
  } else if (!strcmp(name, "single") || !strcmp(name, "single-trusted")) {
    int trusted = name[6] == '-';
    gso_split(pkt, len, &h, hdrs, 256, segs, 64);
    memcpy(segbuf[0], segs[0].hdr, segs[0].hdr_len);
    memcpy(segbuf[0] + segs[0].hdr_len, segs[0].data, segs[0].data_len);
    size_t sl = (size_t)segs[0].hdr_len + segs[0].data_len;
    static uint8_t keep[1600];
    memcpy(keep, segbuf[0], sl);
    struct gro_table *t = malloc(sizeof(*t));
    gro_init(t, 1, 1, 1);
    struct iovec iov[GRO_MAX_SEGS + 1];
    uint8_t vnet[VNET_HDR_LEN];
    t0 = now_ns();
    for (long it = 0; it < iterations; it++) {
      memcpy(segbuf[0], keep, 128); /* gro_output may patch the checksum field */
      gro_add(t, segbuf[0], sl, trusted);
      int segsn;
      sink += (uint64_t)gro_output(t, 0, vnet, iov, GRO_MAX_SEGS + 1, &segsn);
      gro_reset(t);
    }
    t1 = now_ns();
    free(t);
  } else if (!strcmp(name, "coalesce") || !strcmp(name, "coalesce-trusted")) {
    int trusted = name[8] == '-';
    int n = gso_split(pkt, len, &h, hdrs, 256, segs, 64);
    size_t sl[64];
    for (int i = 0; i < n; i++) {
      memcpy(segbuf[i], segs[i].hdr, segs[i].hdr_len);
      memcpy(segbuf[i] + segs[i].hdr_len, segs[i].data, segs[i].data_len);
      sl[i] = (size_t)segs[i].hdr_len + segs[i].data_len;
    }
    struct gro_table *t = malloc(sizeof(*t));
    static uint8_t keep[64][128];
    for (int i = 0; i < n; i++) memcpy(keep[i], segbuf[i], 128);
    gro_init(t, 1, 1, 1);
    struct iovec iov[GRO_MAX_SEGS + 1];
    uint8_t vnet[VNET_HDR_LEN];
    t0 = now_ns();
    for (long it = 0; it < iterations; it++) {
      memcpy(segbuf[0], keep[0], 128); /* the head's headers are patched by gro_output */
      for (int i = 0; i < n; i++) gro_add(t, segbuf[i], sl[i], trusted);
      int segsn;
      for (int i = 0; i < t->n_items; i++) sink += (uint64_t)gro_output(t, i, vnet, iov, GRO_MAX_SEGS + 1, &segsn);
      gro_reset(t);
    }
    t1 = now_ns();
    free(t);
    *per_unit = (t1 - t0) / (double)iterations / n;
    *unit = "segment";
  } else if (!strcmp(name, "csum")) {
    t0 = now_ns();
    for (long i = 0; i < iterations; i++) sink += csum_fold(csum_add(i, pkt + 52, MSS));
    t1 = now_ns();
    *per_unit = (t1 - t0) / (double)iterations / MSS;
    *unit = "byte";
  } else if (!strcmp(name, "complete")) {
    struct vnet_hdr one = {VNET_F_NEEDS_CSUM, VNET_GSO_NONE, 0, 0, 20, 16};
    t0 = now_ns();
    for (long i = 0; i < iterations; i++) sink += (uint64_t)gso_complete_csum(pkt, 52 + 1396, &one);
    t1 = now_ns();
  } else if (!strcmp(name, "lookup")) {
    struct route_table rt;
    rt_init(&rt);
    for (uint32_t i = 0; i < 1024; i++) {
      uint8_t a[4] = {10, (uint8_t)(i >> 8), (uint8_t)i, 0};
      rt_set(&rt, 4, a, 24, i);
    }
    uint32_t x = 12345;
    t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
      x = x * 1664525u + 1013904223u;
      uint8_t a[4] = {10, (uint8_t)((x >> 24) & 3), (uint8_t)(x >> 16), (uint8_t)x};
      sink += rt_lookup(&rt, 4, a);
    }
    t1 = now_ns();
    rt_free(&rt);
  } else if (!strcmp(name, "seal") || !strcmp(name, "open") || !strcmp(name, "seal-small") ||
             !strcmp(name, "open-small")) {
    struct aead *a = aead_new();
    if (!a) return -1;
    static uint8_t key[AEAD_KEY_BYTES] = {1, 2, 3};
    static uint8_t buf[1424 + AEAD_TAG_BYTES];
    size_t mlen = strchr(name, '-') ? 96 : 1424;
    memcpy(buf, pkt, mlen);
    int open = name[0] == 'o';
    if (open) aead_seal(a, 1, key, 7, buf, mlen); /* a real message to open */
    static uint8_t sealed[sizeof(buf)];
    memcpy(sealed, buf, mlen + AEAD_TAG_BYTES);
    t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
      if (open) {
        memcpy(buf, sealed, mlen + AEAD_TAG_BYTES); /* opening in place destroys the ciphertext */
        sink += (uint64_t)aead_open(a, 1, key, 7, buf, mlen);
      } else {
        sink += (uint64_t)aead_seal(a, 1, key, (uint64_t)i, buf, mlen);
      }
    }
    t1 = now_ns();
    aead_free(a);
    *per_unit = (t1 - t0) / (double)iterations / (double)mlen;
    *unit = "byte";
  } else {
    return -1;
  }
  (void)sink;
  return (t1 - t0) / (double)iterations;
}
