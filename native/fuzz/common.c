#include "common.h"
#include <errno.h>
#include <sys/stat.h>

uint32_t rng_interesting(struct rng *r, int bits) {
  uint32_t max = bits >= 32 ? UINT32_MAX : (1u << bits) - 1;
  switch (rng_below(r, 7)) {
  case 0: return 0;
  case 1: return 1;
  case 2: return max;
  case 3: return max - 1;
  case 4: return (1u << rng_below(r, (uint32_t)bits)) & max;
  case 5: return ((1u << rng_below(r, (uint32_t)bits)) - 1) & max;
  default: return (uint32_t)rng_next(r) & max;
  }
}

uint32_t ref_sum(const uint8_t *p, size_t len, uint32_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < len; i += 2) s += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
  while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
  return (uint32_t)s;
}

uint16_t ref_fold(uint32_t s) {
  uint64_t x = s;
  while (x >> 16) x = (x & 0xffff) + (x >> 16);
  return (uint16_t)x;
}

static uint32_t pseudo(const uint8_t *p, int proto, size_t l4len) {
  int v4 = p[0] >> 4 == 4;
  uint32_t s = ref_sum(p + (v4 ? 12 : 8), v4 ? 8 : 32, 0);
  return s + (uint32_t)proto + (uint32_t)(l4len & 0xffff) + (uint32_t)(l4len >> 16);
}

int ref_l4_csum_ok(const uint8_t *p, size_t len, size_t l4, int proto) {
  return ref_fold(ref_sum(p + l4, len - l4, pseudo(p, proto, len - l4))) == 0xffff;
}

void fill_payload(uint32_t seed, uint8_t *out, size_t len) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) x = x * 1103515245u + 12345u, out[i] = (uint8_t)(x >> 16);
}

void flow_random(struct rng *r, struct flow *f) {
  memset(f, 0, sizeof(*f));
  f->family = rng_chance(r, 2) ? 4 : 6;
  f->proto = rng_below(r, 10) < 7 ? 6 : 17;
  for (int i = 0; i < 16; i++) f->src[i] = (uint8_t)rng_next(r), f->dst[i] = (uint8_t)rng_next(r);
  if (f->family == 4) {
    const uint8_t s[4] = {10, 244, 1, 1}, d[4] = {10, 244, 2, 1};
    memcpy(f->src, s, 4), memcpy(f->dst, d, 4);
    f->src[3] = (uint8_t)(1 + rng_below(r, 250)), f->dst[3] = (uint8_t)(1 + rng_below(r, 250));
  }
  f->sport = (uint16_t)(1 + rng_below(r, 65535));
  f->dport = (uint16_t)(1 + rng_below(r, 65535));
  f->opt_len = f->proto == 6 && rng_chance(r, 2) ? (uint8_t)(4 * rng_below(r, 11)) : 0;
  f->ttl = (uint8_t)(1 + rng_below(r, 255));
  f->tos = (uint8_t)(rng_next(r) & 0xfc);
  f->seq = (uint32_t)rng_next(r);
  f->ack = (uint32_t)rng_next(r);
  f->window = (uint16_t)rng_next(r);
  f->id = (uint16_t)rng_next(r);
}

size_t flow_l4(const struct flow *f) { return f->family == 4 ? 20 : 40; }
size_t flow_hlen(const struct flow *f) { return flow_l4(f) + (f->proto == 6 ? 20u + f->opt_len : f->proto == 17 ? 8u : 0u); }

static void fill_csums(uint8_t *p, size_t len, size_t l4, int proto, int csum) {
  if (p[0] >> 4 == 4) {
    p[10] = p[11] = 0;
    wr16(p + 10, (uint16_t)~ref_fold(ref_sum(p, l4, 0)));
  }
  if (proto != 6 && proto != 17) return;
  size_t at = l4 + (proto == 6 ? 16 : 6);
  if (at + 2 > len) return;
  p[at] = p[at + 1] = 0;
  if (csum == 1) {
    uint16_t c = (uint16_t)~ref_fold(ref_sum(p + l4, len - l4, pseudo(p, proto, len - l4)));
    if (proto == 17 && c == 0) c = 0xffff;
    wr16(p + at, c);
  } else if (csum == 2) {
    wr16(p + at, ref_fold(pseudo(p, proto, len - l4)));
  }
}

size_t build_packet(const struct flow *f, const uint8_t *payload, size_t plen, uint32_t pay_seed, uint8_t tcp_flags,
                    int csum, uint8_t *p) {
  size_t l4 = flow_l4(f), hlen = flow_hlen(f), len = hlen + plen;
  memset(p, 0, hlen);
  if (f->family == 4) {
    p[0] = 0x45;
    p[1] = f->tos;
    wr16(p + 2, (uint32_t)(len > 0xffff ? 0xffff : len));
    wr16(p + 4, f->id);
    p[6] = 0x40;
    p[8] = f->ttl;
    p[9] = (uint8_t)f->proto;
    memcpy(p + 12, f->src, 4);
    memcpy(p + 16, f->dst, 4);
  } else {
    p[0] = (uint8_t)(0x60 | f->tos >> 4);
    p[1] = (uint8_t)(f->tos << 4);
    wr16(p + 4, (uint32_t)(len - 40 > 0xffff ? 0xffff : len - 40));
    p[6] = (uint8_t)f->proto;
    p[7] = f->ttl;
    memcpy(p + 8, f->src, 16);
    memcpy(p + 24, f->dst, 16);
  }
  uint8_t *t = p + l4;
  if (f->proto == 6) {
    wr16(t, f->sport), wr16(t + 2, f->dport);
    wr32(t + 4, f->seq), wr32(t + 8, f->ack);
    t[12] = (uint8_t)((20 + f->opt_len) / 4 << 4);
    t[13] = tcp_flags;
    wr16(t + 14, f->window);
    for (size_t i = 0; i < f->opt_len; i++) t[20 + i] = i % 4 == 0 ? 1 : (uint8_t)(f->seq >> (i % 4 * 8));
  } else if (f->proto == 17) {
    wr16(t, f->sport), wr16(t + 2, f->dport);
    wr16(t + 4, (uint32_t)(8 + plen));
  }
  if (payload) memcpy(p + hlen, payload, plen);
  else fill_payload(pay_seed, p + hlen, plen);
  fill_csums(p, len, l4, f->proto, csum);
  return len;
}

void fix_packet(uint8_t *p, size_t len) {
  if (len < 1) return;
  int v4 = p[0] >> 4 == 4;
  if (v4 && len >= 20) {
    size_t ihl = (size_t)(p[0] & 15) * 4;
    wr16(p + 2, (uint32_t)len);
    if (ihl < 20 || ihl > len) return;
    int proto = p[9];
    if (proto == 17 && len >= ihl + 8) wr16(p + ihl + 4, (uint32_t)(len - ihl));
    fill_csums(p, len, ihl, (proto == 6 && len >= ihl + 20) || (proto == 17 && len >= ihl + 8) ? proto : 0, 1);
  } else if (!v4 && len >= 40) {
    wr16(p + 4, (uint32_t)(len - 40));
    int proto = p[6];
    if (proto == 17 && len >= 48) wr16(p + 44, (uint32_t)(len - 40));
    if ((proto == 6 && len >= 60) || (proto == 17 && len >= 48)) fill_csums(p, len, 40, proto, 1);
  }
}

/* IP and TCP/UDP header fields, by offset from the packet start (v4 assumes ihl 5). */
size_t pick_field(struct rng *r, const uint8_t *p, size_t len, int *bits) {
  static const struct { uint8_t at, bits; } v4[] = {{0, 8}, {1, 8}, {2, 16}, {4, 16}, {6, 16}, {8, 8}, {9, 8}, {12, 32}, {16, 32}};
  static const struct { uint8_t at, bits; } v6[] = {{0, 8}, {4, 16}, {6, 8}, {7, 8}, {8, 32}, {20, 32}, {24, 32}, {36, 32}};
  static const struct { uint8_t at, bits; } tcp[] = {{0, 16}, {2, 16}, {4, 32}, {8, 32}, {12, 8}, {13, 8}, {14, 16}, {16, 16}, {20, 8}};
  static const struct { uint8_t at, bits; } udp[] = {{0, 16}, {2, 16}, {4, 16}, {6, 16}};
  int is4 = len > 0 && p[0] >> 4 == 4;
  size_t l4 = is4 ? 20 : 40;
  int proto = len > 9 ? (is4 ? p[9] : p[6]) : 0;
  if (rng_chance(r, 2) || len < l4 + 8) {
    if (is4) {
      size_t i = rng_below(r, sizeof(v4) / sizeof(v4[0]));
      *bits = v4[i].bits;
      return v4[i].at;
    }
    size_t i = rng_below(r, sizeof(v6) / sizeof(v6[0]));
    *bits = v6[i].bits;
    return v6[i].at;
  }
  if (proto == 6) {
    size_t i = rng_below(r, sizeof(tcp) / sizeof(tcp[0]));
    *bits = tcp[i].bits;
    return l4 + tcp[i].at;
  }
  size_t i = rng_below(r, sizeof(udp) / sizeof(udp[0]));
  *bits = udp[i].bits;
  return l4 + udp[i].at;
}

void set_field(uint8_t *p, size_t len, size_t at, int bits, uint32_t v) {
  for (int b = bits / 8 - 1, i = 0; b >= 0; b--, i++)
    if (at + (size_t)i < len) p[at + (size_t)i] = (uint8_t)(v >> (8 * b));
}

size_t recs_parse(const uint8_t *data, size_t size, size_t skip, struct rec *out, size_t max) {
  size_t n = 0, at = skip;
  while (at + 2 <= size && n < max) {
    size_t l = rd16le(data + at);
    at += 2;
    if (l > size - at) l = size - at;
    out[n++] = (struct rec){data + at, l};
    at += l;
  }
  return n;
}

size_t recs_write(uint8_t *out, size_t cap, const uint8_t *head, size_t skip, const struct rec *r, size_t n) {
  size_t total = skip;
  for (size_t i = 0; i < n; i++) total += 2 + r[i].len;
  if (total > cap) return 0;
  uint8_t *tmp = malloc(total ? total : 1);
  if (!tmp) return 0;
  memcpy(tmp, head, skip);
  size_t at = skip;
  for (size_t i = 0; i < n; i++) {
    wr16le(tmp + at, (uint32_t)r[i].len);
    memcpy(tmp + at + 2, r[i].p, r[i].len);
    at += 2 + r[i].len;
  }
  memcpy(out, tmp, total);
  free(tmp);
  return total;
}

size_t recs_mutate(uint8_t *data, size_t size, size_t max, size_t skip, unsigned seed, rec_fresh_fn fresh,
                   rec_tweak_fn tweak) {
  struct rng r = {seed};
  static struct rec recs[MAX_RECS];
  static uint8_t scratch[1 << 16], head[64];
  if (size < skip) {
    if (max < skip) return size;
    for (size_t i = size; i < skip; i++) data[i] = (uint8_t)rng_next(&r);
    size = skip;
  }
  if (skip > sizeof(head)) return size;
  memcpy(head, data, skip);
  size_t n = recs_parse(data, size, skip, recs, MAX_RECS);
  uint32_t op = rng_below(&r, 10);
  if (op == 0 && skip) { /* a header byte */
    head[rng_below(&r, (uint32_t)skip)] = (uint8_t)rng_next(&r);
  } else if ((op <= 2 || n == 0) && n < MAX_RECS) { /* a fresh valid record somewhere */
    size_t l = fresh(&r, scratch, sizeof(scratch) < max ? sizeof(scratch) : max);
    size_t at = rng_below(&r, (uint32_t)n + 1);
    memmove(recs + at + 1, recs + at, (n - at) * sizeof(*recs));
    recs[at] = (struct rec){scratch, l};
    n++;
  } else if (op == 3 && n < MAX_RECS) { /* duplicate one (a retransmission, a replay) */
    size_t i = rng_below(&r, (uint32_t)n), at = rng_below(&r, (uint32_t)n + 1);
    struct rec x = recs[i];
    memmove(recs + at + 1, recs + at, (n - at) * sizeof(*recs));
    recs[at] = x;
    n++;
  } else if (op == 4) { /* drop one (a loss) */
    size_t i = rng_below(&r, (uint32_t)n);
    memmove(recs + i, recs + i + 1, (n - i - 1) * sizeof(*recs));
    n--;
  } else if (op == 5 && n > 1) { /* swap two (reordering) */
    size_t i = rng_below(&r, (uint32_t)n), j = rng_below(&r, (uint32_t)n);
    struct rec x = recs[i];
    recs[i] = recs[j], recs[j] = x;
  } else { /* change fields of one record */
    size_t i = rng_below(&r, (uint32_t)n);
    size_t l = recs[i].len < sizeof(scratch) ? recs[i].len : sizeof(scratch) - 1;
    memcpy(scratch, recs[i].p, l);
    size_t cap = sizeof(scratch) < max ? sizeof(scratch) : max;
    l = op <= 7 && tweak ? tweak(&r, scratch, l, cap) : LLVMFuzzerMutate(scratch, l, cap);
    recs[i] = (struct rec){scratch, l};
  }
  size_t out = recs_write(data, max, head, skip, recs, n);
  return out ? out : LLVMFuzzerMutate(data, size, max);
}

static const char *seed_dir;
static int seed_count;

static void emit_file(const uint8_t *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/seed-%04d", seed_dir, seed_count++);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

void seeds_hook(void (*gen)(seed_emit_fn emit)) {
  seed_dir = getenv("TULLE_FUZZ_SEEDS");
  if (!seed_dir || !*seed_dir) return;
  mkdir(seed_dir, 0755);
  gen(emit_file);
  fprintf(stderr, "wrote %d seeds to %s\n", seed_count, seed_dir);
  exit(0);
}
