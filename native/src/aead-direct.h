/*
 * ChaCha20-Poly1305 for WireGuard transport data on the ChaCha20 and Poly1305 primitives of the
 * OpenSSL inside node, without EVP (aead-direct.c says why and how). aead.c chooses it when
 * aead_direct_available() and its self-test against EVP pass; it keeps no key: nothing about a
 * session stays in a context between two calls.
 */
#ifndef TULLE_AEAD_DIRECT_H
#define TULLE_AEAD_DIRECT_H
#include <stddef.h>
#include <stdint.h>

struct aead_direct;

/* 1 when node's OpenSSL 3 exports the primitives (resolved once). */
int aead_direct_available(void);
/* NULL when not available or out of memory. */
struct aead_direct *aead_direct_new(void);
void aead_direct_free(struct aead_direct *d);
/* As aead_seal_parts (aead.h): three parts encrypted in place, the tag to `tag`. 0. */
int aead_direct_seal(struct aead_direct *d, const uint8_t *key, uint64_t counter, uint8_t *p1, size_t l1, uint8_t *p2,
                     size_t l2, uint8_t *p3, size_t l3, uint8_t *tag);
/* As aead_open: the tag at buf + len is checked first; buf is decrypted in place only if authentic. */
int aead_direct_open(struct aead_direct *d, const uint8_t *key, uint64_t counter, uint8_t *buf, size_t len);
/* 1 when the context holds no byte of keystream or Poly1305 state (between two calls it must). */
int aead_direct_is_clean(const struct aead_direct *d);

#endif
