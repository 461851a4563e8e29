/**
 * Implementation choices (not fixed by the spec): rate limits, queue bounds, jitter. Values
 * follow wireguard-go where it has one.
 */

/** Random extra delay on each handshake retry, up to this many ms. */
export const REKEY_TIMEOUT_JITTER_MAX_MS = 334;
/** Initiations accepted from one peer at most this often (replayed/flooded ones are dropped). */
export const HANDSHAKE_INITIATION_RATE_MS = 20;
/** Per source address, once under load: handshake messages per second and burst. */
export const HANDSHAKES_PER_SECOND = 20;
export const HANDSHAKE_BURST = 5;
/** Handshake messages pending in one drain above which we are "under load" (mac2 required). */
export const UNDER_LOAD_PENDING = 64;
/** How long "under load" lasts after the last time the threshold was crossed. */
export const UNDER_LOAD_HOLD_MS = 1_000;
/** Rotation period of the secret behind cookies. */
export const COOKIE_SECRET_MAX_AGE_MS = 120_000;
/** A cookie received is used for this long (spec: 120 s minus a margin for latency). */
export const COOKIE_VALID_MS = 120_000 - 5_000;
/**
 * Handshake initiations this device sends, all peers together: a token bucket (per second,
 * burst). A node that restarts with hundreds of peers initiates to them paced, not at once;
 * initiations that traffic waits for go before the start-up ones.
 */
export const INITIATIONS_PER_SECOND = 50;
export const INITIATION_BURST = 10;
/** Peers added this soon after the device starts get an initiation (paced): a node that starts
 * has no sessions, while its peers may still hold one with its previous run. */
export const START_HANDSHAKE_WINDOW_MS = 10_000;
/**
 * Data still being sent this long after the first send that got nothing back, to a peer that
 * sent us data within the last KEEPALIVE_TIMEOUT: initiate (once per silence) rather than wait
 * KEEPALIVE_TIMEOUT + REKEY_TIMEOUT. A restarted peer answers with a new session; a live one
 * costs one handshake.
 */
export const UNANSWERED_PROBE_MS = 1_000;
