/**
 * TAI64N timestamps as WireGuard sends them in initiations (12 bytes, big-endian):
 *
 *   0               8               12
 *   +---------------+---------------+
 *   | 2^62 + 10 + s |  nanoseconds  |
 *   +---------------+---------------+
 *
 * Only monotonicity per peer matters to the responder (a replayed initiation carries an old
 * timestamp). The nanoseconds are rounded down to a multiple of 2^24 ns (~16.8 ms), as
 * wireguard-go does, so the timestamp does not leak a fine-grained clock.
 */
import { TAI64N_BYTES } from './protocol-constants.js';

const TAI64_BASE = 0x400000000000000an;
const WHITEN_MASK = 0xffffffff - 0xffffff; // clear the low 24 bits of the nanoseconds

export function tai64n(nowMs: number): Uint8Array {
  const out = new Uint8Array(TAI64N_BYTES);
  const v = new DataView(out.buffer);
  const secs = Math.floor(nowMs / 1000);
  const nanos = Math.floor((nowMs - secs * 1000) * 1e6);
  v.setBigUint64(0, TAI64_BASE + BigInt(secs));
  v.setUint32(8, (nanos & WHITEN_MASK) >>> 0);
  return out;
}

/** Byte-wise comparison: a > b. */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < TAI64N_BYTES; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}
