/**
 * WireGuard's per-peer timers (whitepaper §6) as a pure state machine: events with the time
 * in, due actions out. The driver calls the on* methods as things happen and due(now) at
 * nextDeadline(); nothing here reads a clock or schedules anything.
 *
 *   deferred     a handshake wanted within REKEY_TIMEOUT of the last initiation → at that time
 *   retransmit   initiation sent, no response after REKEY_TIMEOUT + jitter → send again;
 *                after REKEY_ATTEMPT_TIME since the first attempt → give up (drop staged)
 *   keepalive    data received and nothing sent for KEEPALIVE_TIMEOUT → send a keepalive
 *   newHandshake data sent and nothing received for KEEPALIVE + REKEY_TIMEOUT → initiate
 *   probe        data still being sent UNANSWERED_PROBE after the first send that got nothing
 *                back, though the peer sent us data within KEEPALIVE_TIMEOUT (a two-way flow went
 *                silent) → initiate, once per silence (not in the spec: a restarted peer has lost
 *                the session; tuning.ts). A last reply after the peer stopped is not a silence:
 *                it takes sends spanning UNANSWERED_PROBE.
 *   zeroKeys     no new session for 3 × REJECT_AFTER_TIME → zero all key material
 *   persistent   PersistentKeepaliveInterval without any authenticated traffic → keepalive
 *
 * Rekey by age or message count is decided per packet, so the native data plane does it (it
 * asks for a handshake: initiator, sending on a session ≥ 120 s old or ≥ 2^60 messages, or
 * receiving on one ≥ 165 s old) and refuses sessions past 180 s; wantHandshake() paces it.
 */
import {
  KEEPALIVE_TIMEOUT_MS,
  REKEY_AFTER_TIME_MS,
  REKEY_ATTEMPT_TIME_MS,
  REKEY_TIMEOUT_MS,
  REJECT_AFTER_TIME_MS,
  ZERO_KEYS_AFTER_MS,
} from './protocol-constants.js';
import { REKEY_TIMEOUT_JITTER_MAX_MS, UNANSWERED_PROBE_MS } from './tuning.js';

export type TimerAction = 'send-initiation' | 'probe-initiation' | 'send-keepalive' | 'give-up' | 'zero-keys';

/** All the durations; tests shorten them (a rekey in a test must not take 120 s). */
export interface Timing {
  rekeyAfterTimeMs: number;
  rejectAfterTimeMs: number;
  rekeyAttemptTimeMs: number;
  rekeyTimeoutMs: number;
  keepaliveTimeoutMs: number;
  zeroKeysAfterMs: number;
  jitterMaxMs: number;
  /** 0 = off */
  persistentKeepaliveMs: number;
  /** 0 = off */
  unansweredProbeMs: number;
}

export const DEFAULT_TIMING: Readonly<Timing> = Object.freeze({
  rekeyAfterTimeMs: REKEY_AFTER_TIME_MS,
  rejectAfterTimeMs: REJECT_AFTER_TIME_MS,
  rekeyAttemptTimeMs: REKEY_ATTEMPT_TIME_MS,
  rekeyTimeoutMs: REKEY_TIMEOUT_MS,
  keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
  zeroKeysAfterMs: ZERO_KEYS_AFTER_MS,
  jitterMaxMs: REKEY_TIMEOUT_JITTER_MAX_MS,
  persistentKeepaliveMs: 0,
  unansweredProbeMs: UNANSWERED_PROBE_MS,
});

export class PeerTimers {
  private retransmitAt: number | undefined;
  private keepaliveAt: number | undefined;
  private newHandshakeAt: number | undefined;
  private zeroKeysAt: number | undefined;
  private persistentAt: number | undefined;
  private probeAt: number | undefined;
  /** the first data sent since anything was received, on a two-way flow */
  private unansweredSince: number | undefined;
  /** the probe of this silence went out: none again until something is received */
  private probeSpent = false;
  private lastDataReceivedAt = -Infinity;
  private attemptStartedAt: number | undefined;
  private lastInitiationAt = -Infinity;
  /** a handshake was wanted too soon after the last initiation: send one when allowed */
  private deferredAt: number | undefined;

  constructor(
    readonly timing: Timing = DEFAULT_TIMING,
    private readonly random: () => number = Math.random,
  ) {}

  private jitter(): number {
    return Math.floor(this.random() * this.timing.jitterMaxMs);
  }

  /**
   * A handshake is wanted (staged packet, rekey). True if an initiation should go out now;
   * within REKEY_TIMEOUT of the last one it is deferred until then (due() says when).
   */
  wantHandshake(now: number): boolean {
    if (this.retransmitAt !== undefined) return false; // one already in flight
    const allowedAt = this.lastInitiationAt + this.timing.rekeyTimeoutMs;
    if (now >= allowedAt) return true;
    this.deferredAt ??= allowedAt;
    return false;
  }

  initiationSent(now: number): void {
    this.deferredAt = undefined;
    this.lastInitiationAt = now;
    this.attemptStartedAt ??= now;
    this.retransmitAt = now + this.timing.rekeyTimeoutMs + this.jitter();
  }

  /** A session was derived (either role): stop retrying, restart the zero-keys clock. */
  sessionDerived(now: number): void {
    this.retransmitAt = undefined;
    this.attemptStartedAt = undefined;
    this.deferredAt = undefined;
    this.zeroKeysAt = now + this.timing.zeroKeysAfterMs;
  }

  dataSent(now: number): void {
    this.newHandshakeAt ??= now + this.timing.keepaliveTimeoutMs + this.timing.rekeyTimeoutMs + this.jitter();
    const twoWay = now - this.lastDataReceivedAt <= this.timing.keepaliveTimeoutMs;
    if (this.timing.unansweredProbeMs <= 0 || !twoWay || this.probeSpent) return;
    this.unansweredSince ??= now;
    if (now - this.unansweredSince >= this.timing.unansweredProbeMs) this.probeAt ??= now;
  }

  dataReceived(now: number): void {
    this.keepaliveAt ??= now + this.timing.keepaliveTimeoutMs;
    this.lastDataReceivedAt = Math.max(this.lastDataReceivedAt, now);
  }

  anyAuthenticatedSent(now: number): void {
    this.keepaliveAt = undefined;
    this.touchPersistent(now);
  }

  anyAuthenticatedReceived(now: number): void {
    this.newHandshakeAt = undefined;
    this.probeAt = undefined;
    this.unansweredSince = undefined;
    this.probeSpent = false;
    this.touchPersistent(now);
  }

  private touchPersistent(now: number): void {
    if (this.timing.persistentKeepaliveMs > 0) this.persistentAt = now + this.timing.persistentKeepaliveMs;
  }

  nextDeadline(): number | undefined {
    const all = [this.retransmitAt, this.deferredAt, this.keepaliveAt, this.newHandshakeAt, this.probeAt, this.zeroKeysAt, this.persistentAt].filter(
      (x): x is number => x !== undefined,
    );
    return all.length ? Math.min(...all) : undefined;
  }

  due(now: number): TimerAction[] {
    const out: TimerAction[] = [];
    if (this.retransmitAt !== undefined && now >= this.retransmitAt) {
      this.retransmitAt = undefined;
      if (this.attemptStartedAt !== undefined && now - this.attemptStartedAt >= this.timing.rekeyAttemptTimeMs) {
        this.attemptStartedAt = undefined;
        out.push('give-up');
      } else {
        out.push('send-initiation');
      }
    }
    if (this.deferredAt !== undefined && now >= this.deferredAt) {
      this.deferredAt = undefined;
      if (!out.includes('send-initiation') && this.wantHandshake(now)) out.push('send-initiation');
    }
    if (this.newHandshakeAt !== undefined && now >= this.newHandshakeAt) {
      this.newHandshakeAt = undefined;
      if (!out.includes('send-initiation') && this.wantHandshake(now)) out.push('send-initiation');
    }
    if (this.probeAt !== undefined && now >= this.probeAt) {
      this.probeAt = undefined;
      this.probeSpent = true;
      if (!out.includes('send-initiation') && this.wantHandshake(now)) out.push('probe-initiation');
    }
    if (this.keepaliveAt !== undefined && now >= this.keepaliveAt) {
      this.keepaliveAt = undefined;
      out.push('send-keepalive');
    }
    if (this.persistentAt !== undefined && now >= this.persistentAt) {
      this.persistentAt = now + this.timing.persistentKeepaliveMs;
      if (!out.includes('send-keepalive')) out.push('send-keepalive');
    }
    if (this.zeroKeysAt !== undefined && now >= this.zeroKeysAt) {
      this.zeroKeysAt = undefined;
      out.push('zero-keys');
    }
    return out;
  }
}
