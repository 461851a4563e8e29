/*
 * ChaCha20-Poly1305 (RFC 8439, no additional data) straight on the primitives of the OpenSSL
 * inside the node binary, without EVP: node exports every OpenSSL symbol, among them
 * ChaCha20_ctr32 (which dispatches to its AVX-512/AVX2/SSSE3 assembly) and Poly1305_* (the same
 * for Poly1305). They are internal to OpenSSL, so they are looked up at run time (dlsym), only
 * in OpenSSL 3, and used only after a self-test against EVP on the same machine; anywhere else
 * (libcrypto.so does not export them: the fuzzers' and tools' builds) aead.c keeps EVP.
 *
 * Why: through EVP a 1424-byte message costs two extra one-block ChaCha20 calls (the Poly1305
 * key, then the partial last block: OpenSSL's short-input AVX-512 code, together dearer than the
 * bulk in the profile),
 * plus EVP's per-call parameter handling. Here one ChaCha20 call makes the keystream of block 0
 * (the Poly1305 key) and of the whole message into a scratch buffer; the message is XORed with
 * it in place. Opening checks the tag before it decrypts anything.
 *
 *   keystream  [ block 0: r,s | blocks 1.. : XOR with the message ]   (KS_BYTES per call)
 *   Poly1305   ciphertext || zeros to 16 || le64(0) || le64(length)
 */
#include "aead-direct.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef void (*chacha_fn)(unsigned char *out, const unsigned char *in, size_t len, const unsigned int key[8],
                          const unsigned int counter[4]);
typedef size_t (*poly_size_fn)(void);
typedef void (*poly_init_fn)(void *ctx, const unsigned char key[32]);
typedef void (*poly_update_fn)(void *ctx, const unsigned char *in, size_t len);
typedef void (*poly_final_fn)(void *ctx, unsigned char mac[16]);
typedef unsigned int (*version_fn)(void);

static struct {
  chacha_fn chacha;
  poly_init_fn init;
  poly_update_fn update;
  poly_final_fn final;
  size_t poly_size;
} prim;

#define KS_BYTES 4096 /* keystream per ChaCha20 call: block 0 and 63 message blocks */
static const uint8_t zero[KS_BYTES];

struct aead_direct {
  uint8_t ks[KS_BYTES] __attribute__((aligned(64)));
  uint8_t poly[] __attribute__((aligned(64))); /* Poly1305_ctx_size() bytes */
};

struct aead_direct *aead_direct_new(void) {
  if (!prim.chacha) return NULL;
  size_t size = (sizeof(struct aead_direct) + prim.poly_size + 63) & ~(size_t)63;
  struct aead_direct *d = aligned_alloc(64, size);
  if (d) memset(d, 0, size);
  return d;
}

void aead_direct_free(struct aead_direct *d) {
  if (!d) return;
  explicit_bzero(d, sizeof(*d) + prim.poly_size);
  free(d);
}

/* Message bytes whose keystream one call makes (at most KS_BYTES - 64: block 0 comes first). */
static size_t first_bytes(size_t n) { return n < KS_BYTES - 64 ? n : KS_BYTES - 64; }

static void counter_block(unsigned int ctr[4], uint32_t block, uint64_t counter) {
  ctr[0] = block, ctr[1] = 0, ctr[2] = (unsigned int)counter, ctr[3] = (unsigned int)(counter >> 32);
}

/* Keystream for message bytes [from, from + n) into d->ks + 64 (block 0 too when from == 0:
 * the Poly1305 key at d->ks). n <= KS_BYTES - 64. */
static void keystream(struct aead_direct *d, const uint8_t *key, uint64_t counter, size_t from, size_t n) {
  unsigned int ctr[4];
  size_t bytes = (n + 63) & ~(size_t)63;
  if (from == 0) {
    counter_block(ctr, 0, counter);
    prim.chacha(d->ks, zero, 64 + bytes, (const unsigned int *)key, ctr);
  } else {
    counter_block(ctr, (uint32_t)(1 + from / 64), counter);
    prim.chacha(d->ks + 64, zero, bytes, (const unsigned int *)key, ctr);
  }
}

typedef uint8_t v64 __attribute__((vector_size(64)));

/* One pass in L1 over what ChaCha20 made: 64 bytes a step, in the widest registers the CPU has
 * (one clone per target, picked at load time). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void xor_into(uint8_t *p, const uint8_t *ks,
                                                                                   size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    v64 a, b;
    memcpy(&a, p + i, 64);
    memcpy(&b, ks + i, 64);
    a ^= b;
    memcpy(p + i, &a, 64);
  }
  for (; i < n; i++) p[i] ^= ks[i];
}

/* Poly1305 over the ciphertext [parts] || pad || lengths, keyed by d->ks[0..32). */
static void tag_of(struct aead_direct *d, uint8_t *const parts[3], const size_t lens[3], uint8_t tag[16]) {
  size_t total = 0;
  prim.init(d->poly, d->ks);
  for (int i = 0; i < 3; i++)
    if (lens[i]) prim.update(d->poly, parts[i], lens[i]), total += lens[i];
  uint8_t tail[32] = {0}; /* zeros to a multiple of 16, then le64(aad = 0) || le64(total) */
  size_t pad = (16 - total % 16) % 16;
  for (int i = 0; i < 8; i++) tail[pad + 8 + i] = (uint8_t)((uint64_t)total >> (8 * i));
  prim.update(d->poly, tail, pad + 16);
  prim.final(d->poly, tag); /* OpenSSL cleanses the Poly1305 state here */
}

/* XORs the keystream of message bytes into the parts; the first KS_BYTES - 64 are in d->ks
 * already (keystream(..., 0, ...)), the rest come one ChaCha20 call per KS_BYTES - 64. */
static void crypt_parts(struct aead_direct *d, const uint8_t *key, uint64_t counter, uint8_t *const parts[3],
                        const size_t lens[3], size_t total) {
  size_t done = 0, avail = first_bytes(total), used = 0; /* keystream at d->ks + 64 */
  for (int i = 0; i < 3; i++) {
    size_t off = 0;
    while (off < lens[i]) {
      if (used == avail) {
        avail = first_bytes(total - done);
        keystream(d, key, counter, done, avail);
        used = 0;
      }
      size_t n = lens[i] - off < avail - used ? lens[i] - off : avail - used;
      xor_into(parts[i] + off, d->ks + 64 + used, n);
      off += n, used += n, done += n;
    }
  }
}

/* Keystream and Poly1305 key out of the scratch buffer once a message is done. */
static void wipe(struct aead_direct *d, size_t total) {
  explicit_bzero(d->ks, 64 + (first_bytes(total) + 63) / 64 * 64);
}

int aead_direct_seal(struct aead_direct *d, const uint8_t *key, uint64_t counter, uint8_t *p1, size_t l1, uint8_t *p2,
                     size_t l2, uint8_t *p3, size_t l3, uint8_t *tag) {
  uint8_t *parts[3] = {p1, p2, p3};
  size_t lens[3] = {l1, l2, l3}, total = l1 + l2 + l3;
  keystream(d, key, counter, 0, first_bytes(total));
  crypt_parts(d, key, counter, parts, lens, total); /* block 0 stays: later calls write at ks + 64 */
  tag_of(d, parts, lens, tag);
  wipe(d, total);
  return 0;
}

int aead_direct_open(struct aead_direct *d, const uint8_t *key, uint64_t counter, uint8_t *buf, size_t len) {
  uint8_t *parts[3] = {buf, NULL, NULL};
  size_t lens[3] = {len, 0, 0};
  uint8_t want[16], diff = 0;
  keystream(d, key, counter, 0, first_bytes(len));
  tag_of(d, parts, lens, want);
  for (int i = 0; i < 16; i++) diff |= (uint8_t)(want[i] ^ buf[len + i]);
  if (!diff) crypt_parts(d, key, counter, parts, lens, len); /* nothing is decrypted unless authentic */
  wipe(d, len);
  return diff ? -1 : 0;
}

int aead_direct_is_clean(const struct aead_direct *d) {
  const uint8_t *b = (const uint8_t *)d;
  uint8_t any = 0;
  for (size_t i = 0; i < sizeof(*d) + prim.poly_size; i++) any |= b[i];
  return any == 0;
}

static void resolve(void) {
  version_fn major = (version_fn)dlsym(RTLD_DEFAULT, "OPENSSL_version_major");
  poly_size_fn size = (poly_size_fn)dlsym(RTLD_DEFAULT, "Poly1305_ctx_size");
  chacha_fn chacha = (chacha_fn)dlsym(RTLD_DEFAULT, "ChaCha20_ctr32");
  poly_init_fn init = (poly_init_fn)dlsym(RTLD_DEFAULT, "Poly1305_Init");
  poly_update_fn update = (poly_update_fn)dlsym(RTLD_DEFAULT, "Poly1305_Update");
  poly_final_fn final = (poly_final_fn)dlsym(RTLD_DEFAULT, "Poly1305_Final");
  if (!major || major() != 3 || !size || !chacha || !init || !update || !final) return;
  prim.poly_size = size();
  if (prim.poly_size == 0 || prim.poly_size > 4096) return;
  prim.init = init, prim.update = update, prim.final = final;
  prim.chacha = chacha; /* aead.c's self-test decides whether it is used */
}

int aead_direct_available(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, resolve);
  return prim.chacha != NULL;
}
