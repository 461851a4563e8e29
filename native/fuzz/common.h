/*
 * Shared by the libFuzzer harnesses in native/fuzz/: a seeded PRNG, packet builders (valid
 * IPv4/IPv6 TCP/UDP with correct checksums), an independent RFC 1071 checksum, the record
 * format of the structure-aware inputs, and the seed-corpus hook.
 *
 * Structured inputs are a list of records, each [len u16 LE][body]; a mutator parses them,
 * changes fields of one record (or adds, duplicates, swaps, drops records) and writes them back.
 * A harness never trusts its input to parse: whatever bytes come, it builds what it can.
 */
#ifndef TULLE_FUZZ_COMMON_H
#define TULLE_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- libFuzzer ---- */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* Aborts with a message: an invariant does not hold (libFuzzer records the input). */
#define FUZZ_ASSERT(cond, ...)                                                                     \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "\nINVARIANT FAILED %s:%d: %s\n  ", __FILE__, __LINE__, #cond);            \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* ---- PRNG (splitmix64) ---- */
struct rng {
  uint64_t s;
};
static inline uint64_t rng_next(struct rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline uint32_t rng_below(struct rng *r, uint32_t n) { return n ? (uint32_t)(rng_next(r) % n) : 0; }
static inline int rng_chance(struct rng *r, uint32_t one_in) { return rng_below(r, one_in) == 0; }
/* An "interesting" value of a field of `bits` bits: 0, 1, max, max-1, a power of two, random. */
uint32_t rng_interesting(struct rng *r, int bits);

/* ---- byte helpers (network order unless _le) ---- */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v) { wr16(p, v >> 16), wr16(p + 2, v); }
static inline uint16_t rd16le(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void wr16le(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static inline void wr32le(uint8_t *p, uint32_t v) { wr16le(p, v), wr16le(p + 2, v >> 16); }

/* ---- independent checksum (byte at a time, big-endian words) ---- */
uint32_t ref_sum(const uint8_t *p, size_t len, uint32_t seed);
uint16_t ref_fold(uint32_t s);
/* 1 when the TCP/UDP checksum (pseudo-header included) verifies (what DATA_VALID vouches for;
 * the kernel checks an IPv4 header checksum itself). l4 = transport offset, proto 6/17. */
int ref_l4_csum_ok(const uint8_t *p, size_t len, size_t l4, int proto);

/* ---- packets ---- */
struct flow {
  int family; /* 4 or 6 */
  int proto;  /* 6 or 17 (anything else: raw payload after the IP header) */
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
  uint8_t opt_len; /* TCP options, multiple of 4, <= 40 */
  uint8_t ttl, tos;
  uint32_t seq, ack;
  uint16_t window, id;
};
void flow_random(struct rng *r, struct flow *f);
void fill_payload(uint32_t seed, uint8_t *out, size_t len);
/* Builds one packet of the flow with payload bytes `payload` (generated from pay_seed when
 * payload is NULL). csum: 0 none, 1 full (valid), 2 partial (pseudo-header sum, as a TUN with
 * TSO/CSUM hands it over). Returns the length. out needs l4 + 60 + plen bytes. */
size_t build_packet(const struct flow *f, const uint8_t *payload, size_t plen, uint32_t pay_seed, uint8_t tcp_flags,
                    int csum, uint8_t *out);
size_t flow_l4(const struct flow *f);
size_t flow_hlen(const struct flow *f);
/* Recomputes lengths and checksums of a packet built by build_packet after a field changed. */
void fix_packet(uint8_t *p, size_t len);

/* Offsets of the header fields a mutator likes to change, for a packet starting at p. */
size_t pick_field(struct rng *r, const uint8_t *p, size_t len, int *bits);
void set_field(uint8_t *p, size_t len, size_t at, int bits, uint32_t v);

/* ---- records ---- */
#define MAX_RECS 512
struct rec {
  const uint8_t *p;
  size_t len;
};
size_t recs_parse(const uint8_t *data, size_t size, size_t skip, struct rec *out, size_t max);
/* Writes head (skip bytes) + records into out (cap bytes); returns the size or 0 when it does not fit. */
size_t recs_write(uint8_t *out, size_t cap, const uint8_t *head, size_t skip, const struct rec *r, size_t n);
/* Generic structured mutation of a record list: duplicate / drop / swap / mutate one record's
 * bytes with libFuzzer's mutator / replace one with fresh(…). Returns the new size. */
typedef size_t (*rec_fresh_fn)(struct rng *r, uint8_t *out, size_t cap);
typedef size_t (*rec_tweak_fn)(struct rng *r, uint8_t *rec, size_t len, size_t cap);
size_t recs_mutate(uint8_t *data, size_t size, size_t max, size_t skip, unsigned seed, rec_fresh_fn fresh,
                   rec_tweak_fn tweak);

/* ---- seed corpus: TULLE_FUZZ_SEEDS=dir makes the harness write its seeds there and exit ---- */
typedef void (*seed_emit_fn)(const uint8_t *data, size_t len);
void seeds_hook(void (*gen)(seed_emit_fn emit));

#endif
