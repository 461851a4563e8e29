/*
 * BLAKE2s (RFC 7693), one-shot, keyed or not, output 1..32 bytes: WireGuard's HASH (32 bytes,
 * no key) and MAC (16 bytes, keyed) for checking mac1 before a handshake message is queued.
 * No allocation; the TypeScript side uses @noble/hashes (the reference it is tested against).
 */
#ifndef TULLE_BLAKE2S_H
#define TULLE_BLAKE2S_H
#include <stddef.h>
#include <stdint.h>

/* out[0..outlen) = BLAKE2s-outlen(key[0..keylen), in[0..inlen)); outlen 1..32, keylen 0..32. */
void blake2s(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const uint8_t *in, size_t inlen);

#endif
