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
