/**
 * The RFC 6479 anti-replay window as WireGuard sizes it (8128 usable bits): the reference model
 * the native window (native/src/replay.c) is tested against. A counter is accepted once, if it
 * is newer than the greatest seen minus the window. Blocks of 64 bits in a ring; moving the
 * window forward clears whole blocks.
 */
import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW_BITS } from './protocol-constants.js';

const BLOCK_BITS = 64n;
const RING_BLOCKS = BigInt((REPLAY_WINDOW_BITS + 64) / 64); // 128 blocks = 8192 bits

export class ReplayWindow {
  private last = 0n;
  private ring = new Array<bigint>(Number(RING_BLOCKS)).fill(0n);

  /** Accepts (and records) counter, or returns false for a replay / too old / out of range. */
  accept(counter: bigint): boolean {
    if (counter >= REJECT_AFTER_MESSAGES) return false;
    const index = counter / BLOCK_BITS;
    if (counter > this.last) {
      const current = this.last / BLOCK_BITS;
      let diff = index - current;
      if (diff > RING_BLOCKS) diff = RING_BLOCKS;
      for (let i = 1n; i <= diff; i++) this.ring[Number((current + i) % RING_BLOCKS)] = 0n;
      this.last = counter;
    } else if (this.last - counter > BigInt(REPLAY_WINDOW_BITS)) {
      return false;
    }
    const slot = Number(index % RING_BLOCKS);
    const bit = 1n << (counter % BLOCK_BITS);
    if ((this.ring[slot]! & bit) !== 0n) return false;
    this.ring[slot] = this.ring[slot]! | bit;
    return true;
  }
}
