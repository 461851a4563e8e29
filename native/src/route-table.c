#include "route-table.h"
#include <stdlib.h>
#include <string.h>

static void mask_addr(uint8_t out[16], int family, const uint8_t *addr, int len) {
  int n = family == 4 ? 4 : 16;
  memset(out, 0, 16);
  memcpy(out, addr, n);
  for (int i = 0; i < n; i++) {
    int bits = len - i * 8;
    if (bits >= 8) continue;
    out[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
  }
}

static uint64_t hash_key(const uint8_t a[16], int family, int len) {
  uint64_t lo, hi;
  memcpy(&lo, a, 8);
  memcpy(&hi, a + 8, 8);
  uint64_t h = (lo ^ (hi * 0x9e3779b97f4a7c15ull)) + ((uint64_t)family << 8 | (uint64_t)len);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

static int key_eq(const struct rt_entry *e, const uint8_t a[16], int family, int len) {
  return e->family == family && e->len == len && memcmp(e->addr, a, 16) == 0;
}

int rt_init(struct route_table *t) {
  memset(t, 0, sizeof(*t));
  t->cap = 64;
  t->slots = calloc(t->cap, sizeof(struct rt_entry));
  return t->slots ? 0 : -1;
}

void rt_free(struct route_table *t) {
  free(t->slots);
  t->slots = NULL;
}

void rt_clear(struct route_table *t) {
  memset(t->slots, 0, t->cap * sizeof(struct rt_entry));
  t->used = 0;
  memset(t->len_count, 0, sizeof(t->len_count));
  memset(t->n_lens, 0, sizeof(t->n_lens));
}

static void rebuild_lens(struct route_table *t, int fi) {
  int n = 0;
  for (int l = 128; l >= 0; l--)
    if (t->len_count[fi][l]) t->lens[fi][n++] = (uint8_t)l;
  t->n_lens[fi] = (uint8_t)n;
}

static struct rt_entry *find_slot(const struct route_table *t, const uint8_t a[16], int family, int len) {
  size_t m = t->cap - 1, i = hash_key(a, family, len) & m;
  for (;;) {
    struct rt_entry *e = &t->slots[i];
    if (e->family == 0 || key_eq(e, a, family, len)) return e;
    i = (i + 1) & m;
  }
}

static int grow(struct route_table *t) {
  struct rt_entry *old = t->slots;
  size_t old_cap = t->cap;
  struct rt_entry *n = calloc(old_cap * 2, sizeof(struct rt_entry));
  if (!n) return -1;
  t->slots = n;
  t->cap = old_cap * 2;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].family) *find_slot(t, old[i].addr, old[i].family, old[i].len) = old[i];
  free(old);
  return 0;
}

int rt_set(struct route_table *t, int family, const uint8_t *addr, int len, uint32_t peer) {
  if ((family != 4 && family != 6) || len < 0 || len > (family == 4 ? 32 : 128)) return -1;
  uint8_t k[16];
  mask_addr(k, family, addr, len);
  struct rt_entry *e = find_slot(t, k, family, len);
  if (e->family == 0) {
    /* a new key: the bound, then room (growing moves the slots, so find ours again) */
    if (t->used >= RT_MAX_ROUTES) return -1;
    if ((t->used + 1) * 4 > t->cap * 3) {
      if (grow(t) != 0) return -1;
      e = find_slot(t, k, family, len);
    }
    memcpy(e->addr, k, 16);
    e->family = (uint8_t)family;
    e->len = (uint8_t)len;
    t->used++;
    int fi = family == 6;
    if (t->len_count[fi][len]++ == 0) rebuild_lens(t, fi);
  }
  e->peer = peer;
  return 0;
}

int rt_del(struct route_table *t, int family, const uint8_t *addr, int len) {
  if ((family != 4 && family != 6) || len < 0 || len > (family == 4 ? 32 : 128)) return -1;
  uint8_t k[16];
  mask_addr(k, family, addr, len);
  struct rt_entry *e = find_slot(t, k, family, len);
  if (e->family == 0) return 0;
  size_t m = t->cap - 1, hole = (size_t)(e - t->slots), i = hole;
  /* backward-shift deletion keeps every probe chain unbroken without tombstones */
  for (;;) {
    i = (i + 1) & m;
    struct rt_entry *n = &t->slots[i];
    if (n->family == 0) break;
    size_t home = hash_key(n->addr, n->family, n->len) & m;
    if (((i - home) & m) >= ((i - hole) & m)) {
      t->slots[hole] = *n;
      hole = i;
    }
  }
  memset(&t->slots[hole], 0, sizeof(struct rt_entry));
  t->used--;
  int fi = family == 6;
  if (--t->len_count[fi][len] == 0) rebuild_lens(t, fi);
  return 0;
}

uint32_t rt_lookup(const struct route_table *t, int family, const uint8_t *addr) {
  int fi = family == 6;
  uint8_t k[16];
  for (int i = 0; i < t->n_lens[fi]; i++) {
    int len = t->lens[fi][i];
    mask_addr(k, family, addr, len);
    const struct rt_entry *e = find_slot(t, k, family, len);
    if (e->family) return e->peer;
  }
  return RT_NONE;
}
