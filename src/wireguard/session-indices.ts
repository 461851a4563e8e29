/**
 * Receiver indices. The native session table is indexed by the low 16 bits of our receiver
 * index (native/src/wg.h: WG_SESSION_BITS), so each live index owns one slot; the high 16 bits
 * are random, so indices stay unpredictable to peers (as WireGuard's are).
 */
import { randomInt } from 'node:crypto';
import { TulleError } from '../util/errors.js';

export const SESSION_SLOTS = 1 << 16;

export class SessionIndices {
  private used = new Set<number>();
  private nextSlot = randomInt(SESSION_SLOTS);

  allocate(): number {
    if (this.used.size >= SESSION_SLOTS) throw new TulleError('ERR_TULLE_WG_INDICES', 'all 65536 session slots are in use');
    while (this.used.has(this.nextSlot)) this.nextSlot = (this.nextSlot + 1) % SESSION_SLOTS;
    const slot = this.nextSlot;
    this.used.add(slot);
    this.nextSlot = (slot + 1) % SESSION_SLOTS;
    return ((randomInt(1 << 16) << 16) | slot) >>> 0;
  }

  free(index: number): void {
    this.used.delete(index & (SESSION_SLOTS - 1));
  }

  get size(): number {
    return this.used.size;
  }
}
