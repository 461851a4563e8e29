#include "csum.h"

/* 32-bit words into a 64-bit accumulator: no carry handling needed below 2^32 words. */
uint64_t csum_add(uint64_t sum, const void *data, size_t len) {
  const uint8_t *p = data;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  while (len >= 32) {
    uint32_t w[8];
    memcpy(w, p, 32);
    a += (uint64_t)w[0] + w[1];
    b += (uint64_t)w[2] + w[3];
    c += (uint64_t)w[4] + w[5];
    d += (uint64_t)w[6] + w[7];
    p += 32;
    len -= 32;
  }
  sum += a + b + c + d;
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len) { /* the last odd byte is the high-order byte of a zero-padded network word */
    uint8_t pad[2] = {p[0], 0};
    uint16_t w;
    memcpy(&w, pad, 2);
    sum += w;
  }
  return sum;
}
