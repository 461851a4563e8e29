/*
 * ChaCha20-Poly1305 for WireGuard transport data, through the OpenSSL inside the node binary.
 * One context per thread; through EVP the key is loaded again only when the session changes
 * (key_id); the direct path takes the key on every call and keeps none.
 * Nonce = 4 zero bytes || counter (u64 little-endian); no additional data.
 * Both directions work in place: buf holds the plaintext/ciphertext, the tag follows it.
 */
#ifndef TULLE_AEAD_H
#define TULLE_AEAD_H
#include <stddef.h>
#include <stdint.h>

#define AEAD_KEY_BYTES 32
#define AEAD_TAG_BYTES 16

struct aead;

/* How a context computes (chosen once per process, for contexts made afterwards): the
 * primitives of node's OpenSSL directly (aead-direct.c) where they exist and pass a self-test
 * against EVP, else EVP. TULLE_AEAD=evp in the environment keeps EVP. */
enum aead_path { AEAD_PATH_EVP = 0, AEAD_PATH_DIRECT = 1 };
enum aead_path aead_path(void);
/* For tests and A/B runs: contexts made from now on use p. -1 if the direct path is not here. */
int aead_set_path(enum aead_path p);

struct aead *aead_new(void);
void aead_free(struct aead *a);
/* Encrypts a plaintext given in up to three parts, each in place (a part may be NULL/0), and
 * writes the tag to `tag`: for segments whose headers and payload live apart. 0 on success. */
int aead_seal_parts(struct aead *a, uint64_t key_id, const uint8_t *key, uint64_t counter, uint8_t *p1, size_t l1,
                    uint8_t *p2, size_t l2, uint8_t *p3, size_t l3, uint8_t *tag);
/* Forgets key_id if this context holds it: the cipher state is cleansed (OpenSSL frees it with
 * OPENSSL_clear_free) and set up again without a key. For a retired session's keys: none may
 * stay in a thread's context. Not on the packet path (it may allocate); the caller makes sure
 * no one uses the context meanwhile. */
void aead_forget(struct aead *a, uint64_t key_id);
/* Encrypts buf[0..len) in place and writes the tag at buf + len. 0 on success. */
int aead_seal(struct aead *a, uint64_t key_id, const uint8_t *key, uint64_t counter, uint8_t *buf, size_t len);
/* Decrypts buf[0..len) in place and checks the tag at buf + len. 0 when authentic. */
int aead_open(struct aead *a, uint64_t key_id, const uint8_t *key, uint64_t counter, uint8_t *buf, size_t len);

#endif
