/*
 * Target `route`: the route table (route-table.c, open addressing with backward-shift deletion)
 * against a brute-force longest-prefix match over a plain list, through any sequence of sets,
 * deletes, clears and lookups, IPv4 and IPv6 mixed, many prefix lengths (more than one hash probe
 * per lookup) and enough entries to grow the table.
 *
 * Input: records of [op u8][family u8][len u8][peer u8][addr 16]: op 0-4 set, 5-7 delete, 8 clear,
 * 9 lookup. After every change a few lookups are compared (the op's address and its neighbours).
 */
#include "common.h"
#include "route-table.h"

#define REC 20
#define MAXR 4096

struct ref_route {
  int family, len;
  uint8_t a[16];
  uint32_t peer;
};
static struct ref_route ref[MAXR];
static size_t n_ref;

static void mask(uint8_t *out, int fam, const uint8_t *a, int len) {
  memset(out, 0, 16);
  for (int i = 0; i < (fam == 4 ? 4 : 16); i++) {
    int bits = len - i * 8;
    out[i] = bits >= 8 ? a[i] : bits <= 0 ? 0 : (uint8_t)(a[i] & (0xff << (8 - bits)));
  }
}

static uint32_t ref_lookup(int fam, const uint8_t *a) {
  int best = -1;
  uint32_t peer = RT_NONE;
  for (size_t i = 0; i < n_ref; i++) {
    uint8_t m[16];
    mask(m, fam, a, ref[i].len);
    if (ref[i].family == fam && ref[i].len > best && !memcmp(m, ref[i].a, 16)) best = ref[i].len, peer = ref[i].peer;
  }
  return peer;
}

static long ref_find(int fam, const uint8_t *k, int len) {
  for (size_t i = 0; i < n_ref; i++)
    if (ref[i].family == fam && ref[i].len == len && !memcmp(ref[i].a, k, 16)) return (long)i;
  return -1;
}

static void compare(const struct route_table *t, int fam, const uint8_t *a) {
  for (int flip = -1; flip < 3; flip++) {
    uint8_t q[16];
    memcpy(q, a, 16);
    if (flip >= 0) q[(flip * 5) % (fam == 4 ? 4 : 16)] ^= (uint8_t)(1u << (flip % 8));
    uint32_t got = rt_lookup(t, fam, q), want = ref_lookup(fam, q);
    FUZZ_ASSERT(got == want, "lookup (family %d) -> %u, brute force %u, %zu routes", fam, got, want, n_ref);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct route_table t;
  if (rt_init(&t) < 0) abort();
  n_ref = 0;
  for (size_t at = 0; at + REC <= size; at += REC) {
    const uint8_t *r = data + at;
    int op = r[0] % 10, fam = r[1] & 1 ? 6 : 4, len = r[2], max = fam == 4 ? 32 : 128;
    const uint8_t *a = r + 4;
    uint8_t k[16];
    if (op <= 4) {
      int rc = rt_set(&t, fam, a, len, r[3]);
      FUZZ_ASSERT((rc == 0) == (len <= max), "rt_set len %d -> %d", len, rc);
      if (rc == 0) {
        mask(k, fam, a, len);
        long i = ref_find(fam, k, len);
        if (i >= 0) ref[i].peer = r[3];
        else if (n_ref < MAXR) ref[n_ref++] = (struct ref_route){fam, len, {0}, r[3]}, memcpy(ref[n_ref - 1].a, k, 16);
      }
    } else if (op <= 7) {
      int rc = rt_del(&t, fam, a, len);
      FUZZ_ASSERT((rc == 0) == (len <= max), "rt_del len %d -> %d", len, rc);
      mask(k, fam, a, len);
      long i = len <= max ? ref_find(fam, k, len) : -1;
      if (i >= 0) ref[i] = ref[--n_ref];
    } else if (op == 8) {
      rt_clear(&t);
      n_ref = 0;
    }
    FUZZ_ASSERT(t.used == n_ref, "table holds %zu routes, brute force %zu", t.used, n_ref);
    compare(&t, fam, a);
  }
  for (size_t i = 0; i < n_ref; i++) compare(&t, ref[i].family, ref[i].a);
  rt_free(&t);
  return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  struct rng r = {seed};
  size = size / REC * REC;
  if (rng_chance(&r, 5)) return LLVMFuzzerMutate(data, size, max);
  size_t n = size / REC;
  if (size + REC <= max && (n == 0 || rng_chance(&r, 2))) { /* a new op, often near an existing prefix */
    size_t at = rng_below(&r, (uint32_t)n + 1) * REC;
    uint8_t rec[REC];
    if (n && rng_chance(&r, 2)) memcpy(rec, data + rng_below(&r, (uint32_t)n) * REC, REC);
    else for (int i = 0; i < REC; i++) rec[i] = (uint8_t)rng_next(&r);
    rec[0] = (uint8_t)(rng_chance(&r, 8) ? 8 + rng_below(&r, 2) : rng_below(&r, 8));
    int fam = rec[1] & 1 ? 6 : 4;
    rec[2] = (uint8_t)(rng_chance(&r, 3) ? (const uint8_t[]){0, 1, 8, 16, 24, 31, 32, 33, 64, 127, 128, 129}[rng_below(&r, 12)]
                                         : rng_below(&r, fam == 4 ? 33 : 129));
    if (rng_chance(&r, 2)) rec[4 + rng_below(&r, fam == 4 ? 4 : 16)] ^= (uint8_t)(1u << rng_below(&r, 8));
    memmove(data + at + REC, data + at, size - at);
    memcpy(data + at, rec, REC);
    return size + REC;
  }
  size_t at = rng_below(&r, (uint32_t)n) * REC;
  data[at + rng_below(&r, REC)] = (uint8_t)rng_next(&r);
  return size;
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[REC * 300];
  for (int s = 0; s < 20; s++) {
    struct rng r = {0x70u + (uint64_t)s};
    size_t n = 1 + rng_below(&r, 60);
    for (size_t i = 0; i < n; i++) {
      uint8_t *rec = buf + i * REC;
      rec[0] = (uint8_t)rng_below(&r, 8);
      rec[1] = (uint8_t)rng_below(&r, 2);
      rec[2] = rec[1] ? 64 : 24;
      rec[3] = (uint8_t)rng_next(&r);
      memset(rec + 4, 0, 16);
      rec[4] = rec[1] ? 0xfd : 10, rec[5] = rec[1] ? 0x10 : 244;
      rec[6] = (uint8_t)rng_below(&r, 256), rec[7] = (uint8_t)rng_below(&r, 4);
    }
    emit(buf, n * REC);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
