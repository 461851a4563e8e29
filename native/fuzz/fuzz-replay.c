/*
 * Target `replay`: the RFC 6479 window of replay.c against the simplest possible model, a set of
 * every counter accepted so far: a counter is fresh iff below REJECT_AFTER_MESSAGES, not more
 * than 8128 behind the newest, and never accepted before. (The ring's 128 blocks keep exactly
 * those: a block is reused only once all its counters are too old.)
 *
 * Input: records of [kind u8][value u64 LE]: kind picks how the counter relates to the newest
 * (absolute, ahead, behind, at the window's edge, near the end of the counter space, a repeat).
 */
#include "common.h"
#include "replay.h"

#define WINDOW 8128u

static uint64_t *seen;
static size_t n_seen, cap_seen;

static int was_seen(uint64_t c) {
  for (size_t i = 0; i < n_seen; i++)
    if (seen[i] == c) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct replay *r = calloc(1, sizeof(*r));
  if (!r) abort();
  n_seen = 0;
  uint64_t last = 0;
  for (size_t at = 0; at + 9 <= size; at += 9) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)data[at + 1 + i] << (8 * i);
    uint64_t c;
    switch (data[at] % 6) {
    case 0: c = v; break;
    case 1: c = last + (v & 0xffff); break;
    case 2: c = last - (v & 0x3fff); break;
    case 3: c = last - WINDOW - 8 + (v & 15); break;
    case 4: c = WG_REJECT_AFTER_MESSAGES - 8 + (v & 15); break;
    default: c = n_seen ? seen[v % n_seen] : v; break;
    }
    int want = c < WG_REJECT_AFTER_MESSAGES && (c > last || last - c <= WINDOW) && !was_seen(c);
    int got = replay_accept(r, c);
    FUZZ_ASSERT(got == want, "counter %llu (newest %llu): native %d, model %d", (unsigned long long)c, (unsigned long long)last, got, want);
    if (got) {
      if (n_seen == cap_seen) {
        cap_seen = cap_seen ? cap_seen * 2 : 256;
        if (!(seen = realloc(seen, cap_seen * sizeof(*seen)))) abort();
      }
      seen[n_seen++] = c;
      if (c > last) last = c;
    }
  }
  free(r);
  return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  struct rng r = {seed};
  size = size / 9 * 9;
  if (rng_chance(&r, 4)) return LLVMFuzzerMutate(data, size, max);
  if (size + 9 <= max && (size == 0 || rng_chance(&r, 2))) { /* insert a record */
    size_t at = rng_below(&r, (uint32_t)(size / 9 + 1)) * 9;
    memmove(data + at + 9, data + at, size - at);
    data[at] = (uint8_t)rng_below(&r, 6);
    uint64_t v = rng_chance(&r, 2) ? rng_below(&r, 20000) : rng_next(&r);
    for (int i = 0; i < 8; i++) data[at + 1 + i] = (uint8_t)(v >> (8 * i));
    return size + 9;
  }
  size_t at = rng_below(&r, (uint32_t)(size / 9)) * 9;
  if (rng_chance(&r, 2)) data[at] = (uint8_t)rng_below(&r, 6);
  else data[at + 1 + rng_below(&r, 8)] = (uint8_t)rng_next(&r);
  return size;
}

static void seeds(seed_emit_fn emit) {
  uint8_t buf[9 * 64];
  for (int s = 0; s < 20; s++) {
    struct rng r = {0x4e0u + (uint64_t)s};
    size_t n = 1 + rng_below(&r, 64);
    for (size_t i = 0; i < n; i++) {
      buf[i * 9] = (uint8_t)rng_below(&r, 6);
      uint64_t v = rng_below(&r, 9000);
      for (int k = 0; k < 8; k++) buf[i * 9 + 1 + k] = (uint8_t)(v >> (8 * k));
    }
    emit(buf, n * 9);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
