#include "replay.h"

int replay_accept(struct replay *r, uint64_t counter) {
  if (counter >= WG_REJECT_AFTER_MESSAGES) return 0;
  uint64_t block = counter >> 6;
  if (counter > r->last) {
    uint64_t current = r->last >> 6;
    uint64_t diff = block - current;
    if (diff > REPLAY_RING_BLOCKS) diff = REPLAY_RING_BLOCKS;
    for (uint64_t i = current + 1; i <= current + diff; i++) r->ring[i % REPLAY_RING_BLOCKS] = 0;
    r->last = counter;
  } else if (r->last - counter > REPLAY_WINDOW_BITS) {
    return 0;
  }
  uint64_t *w = &r->ring[block % REPLAY_RING_BLOCKS];
  uint64_t bit = 1ull << (counter & 63);
  if (*w & bit) return 0;
  *w |= bit;
  return 1;
}
