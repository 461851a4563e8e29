#include "csum.h"

/* 64-bit words with end-around carry (the carry of each add is added back in), four
 * independent accumulators; folding to 16 bits happens in csum_fold. */
static inline uint64_t add_carry(uint64_t a, uint64_t b) {
  uint64_t r;
  int carry = __builtin_add_overflow(a, b, &r);
  return r + (uint64_t)carry; /* cannot overflow again: r <= 2^64 - 2 after a carry */
}

uint64_t csum_add(uint64_t sum, const void *data, size_t len) {
  const uint8_t *p = data;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  while (len >= 32) {
    uint64_t w[4];
    memcpy(w, p, 32);
    a = add_carry(a, w[0]);
    b = add_carry(b, w[1]);
    c = add_carry(c, w[2]);
    d = add_carry(d, w[3]);
    p += 32;
    len -= 32;
  }
  a = add_carry(a, b);
  c = add_carry(c, d);
  a = add_carry(a, c);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    a = add_carry(a, w);
    p += 8;
    len -= 8;
  }
  uint64_t tail = 0;
  memcpy(&tail, p, len); /* zero-padded: an odd last byte is the high byte of its network word */
  a = add_carry(a, tail);
  /* into the caller's running sum, which may hold 32-bit-style partial sums */
  uint32_t lo = (uint32_t)a, hi = (uint32_t)(a >> 32);
  return sum + lo + hi;
}
