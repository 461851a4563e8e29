/*
 * RFC 6479 anti-replay window, sized as WireGuard's: 128 blocks of 64 bits in a ring, of which
 * 8128 bits are usable behind the newest counter. Reference model: src/wireguard/replay-window.ts.
 * Not thread-safe: the caller holds the session's replay lock.
 */
#ifndef TULLE_REPLAY_H
#define TULLE_REPLAY_H
#include <stdint.h>

#define REPLAY_RING_BLOCKS 128
#define REPLAY_WINDOW_BITS ((REPLAY_RING_BLOCKS - 1) * 64)
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (1ull << 13)) /* 2^64 - 2^13 - 1 */

struct replay {
  uint64_t last;
  uint64_t ring[REPLAY_RING_BLOCKS];
};

/* 1 if counter is fresh (and now recorded), 0 if replayed, too old or out of range. */
int replay_accept(struct replay *r, uint64_t counter);

#endif
