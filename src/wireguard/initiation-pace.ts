/**
 * The device-wide pace of handshake initiations (one token bucket), and what waits for it:
 * initiations that traffic, timers or an unknown index asked for (`waiting`, first), then the
 * ones to every peer added just after start (`onStart`). The device sends what `pump` hands it.
 */
import { RateLimiter } from './rate-limiter.js';
import { INITIATION_BURST, INITIATIONS_PER_SECOND } from './tuning.js';
import type { PeerState } from './device-peer.js';

export class InitiationPace {
  private readonly bucket = new RateLimiter(INITIATIONS_PER_SECOND, INITIATION_BURST);
  /** peer id → when queued */
  private readonly waiting = new Map<number, number>();
  private readonly onStart = new Set<number>();

  /**
   * An initiation to peer `id` is wanted: 'now' when the pace allows it at once (send it),
   * 'queued' when it must wait for pump(), 'already' when one is waiting.
   */
  request(id: number, now: number): 'now' | 'queued' | 'already' {
    this.onStart.delete(id);
    if (this.waiting.has(id)) return 'already';
    if (this.bucket.allow('device', now)) return 'now';
    this.waiting.set(id, now);
    return 'queued';
  }

  /** A peer added just after start: an initiation to it once the pace allows (after `waiting`). */
  addOnStart(id: number): void {
    this.onStart.add(id);
  }

  /** The peer is gone: nothing waits for it any more. */
  forget(id: number): void {
    this.waiting.delete(id);
    this.onStart.delete(id);
  }

  /**
   * Hands `send` what the pace allows now: waiting initiations first (unless a session came
   * meanwhile), then the start-up ones (unless the peer has a session, a handshake in flight,
   * or its timers say no). `send`'s second argument says which.
   */
  pump(now: number, peer: (id: number) => PeerState | undefined, send: (p: PeerState, onStart: boolean) => void): void {
    for (const [id, queuedAt] of this.waiting) {
      const p = peer(id);
      if (!p || p.sessionAt > queuedAt) {
        this.waiting.delete(id); // a session came meanwhile (the peer initiated)
        continue;
      }
      if (!this.bucket.allow('device', now)) return;
      this.waiting.delete(id);
      send(p, false);
    }
    for (const id of this.onStart) {
      const p = peer(id);
      if (!p || p.sessions.length || p.pending) {
        this.onStart.delete(id);
        continue;
      }
      if (!this.bucket.allow('device', now)) return;
      this.onStart.delete(id);
      if (!p.timers.wantHandshake(now)) continue;
      send(p, true);
    }
  }
}
