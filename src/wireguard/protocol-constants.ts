/**
 * Constants fixed by the WireGuard specification (whitepaper §5 and §6). Changing any of these
 * breaks interoperability; implementation choices live in tuning.ts.
 */

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const INITIATION_BYTES = 148;
export const RESPONSE_BYTES = 92;
export const COOKIE_REPLY_BYTES = 64;
export const TRANSPORT_HEADER_BYTES = 16;
export const AEAD_TAG_BYTES = 16;
export const KEY_BYTES = 32;
export const MAC_BYTES = 16;
export const TAI64N_BYTES = 12;
/** Transport plaintext is zero-padded to a multiple of this. */
export const PADDING_MULTIPLE = 16;

export const REKEY_AFTER_MESSAGES = 2n ** 60n;
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const REKEY_AFTER_TIME_MS = 120_000;
export const REJECT_AFTER_TIME_MS = 180_000;
export const REKEY_ATTEMPT_TIME_MS = 90_000;
export const REKEY_TIMEOUT_MS = 5_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
export const COOKIE_REFRESH_TIME_MS = 120_000;
/** Keys are zeroed when no new handshake happened within 3 × RejectAfterTime. */
export const ZERO_KEYS_AFTER_MS = 3 * REJECT_AFTER_TIME_MS;

/** RFC 6479 sliding window as WireGuard sizes it: 8192 bits minus one word. */
export const REPLAY_WINDOW_BITS = 8192 - 64;
