#include "aead.h"
#include "aead-direct.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct aead {
  struct aead_direct *direct; /* the direct path (aead-direct.c); else EVP below */
  EVP_CIPHER_CTX *enc, *dec;
  uint64_t enc_key_id, dec_key_id; /* 0 = none loaded */
  int broken; /* set up again after aead_forget failed: every call fails */
};

static int setup(EVP_CIPHER_CTX *c, int enc) {
  return EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1;
}

static int self_test(void);
static _Atomic int chosen = AEAD_PATH_EVP; /* set by choose(), and by aead_set_path from tests */

/* The direct path when node's OpenSSL has the primitives and they agree with EVP here; the
 * environment variable TULLE_AEAD=evp keeps EVP (for A/B measurements). */
static void choose(void) {
  const char *env = getenv("TULLE_AEAD");
  if (env && !strcmp(env, "evp")) return;
  if (aead_direct_available() && self_test()) chosen = AEAD_PATH_DIRECT;
}

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

enum aead_path aead_path(void) {
  pthread_once(&choose_once, choose);
  return (enum aead_path)atomic_load(&chosen);
}

int aead_set_path(enum aead_path p) {
  pthread_once(&choose_once, choose);
  if (p == AEAD_PATH_DIRECT && !(aead_direct_available() && self_test())) return -1;
  atomic_store(&chosen, (int)p);
  return 0;
}

struct aead *aead_new(void) {
  struct aead *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  if (aead_path() == AEAD_PATH_DIRECT) {
    if (!(a->direct = aead_direct_new())) {
      free(a);
      return NULL;
    }
    return a;
  }
  a->enc = EVP_CIPHER_CTX_new();
  a->dec = EVP_CIPHER_CTX_new();
  if (!a->enc || !a->dec || !setup(a->enc, 1) || !setup(a->dec, 0)) {
    aead_free(a);
    return NULL;
  }
  return a;
}

void aead_forget(struct aead *a, uint64_t key_id) {
  if (!a || !key_id || a->direct) return; /* the direct path holds no key between calls */
  if (a->enc_key_id == key_id) {
    EVP_CIPHER_CTX_reset(a->enc); /* the provider context, key included, is cleansed and freed */
    a->broken |= !setup(a->enc, 1);
    a->enc_key_id = 0;
  }
  if (a->dec_key_id == key_id) {
    EVP_CIPHER_CTX_reset(a->dec);
    a->broken |= !setup(a->dec, 0);
    a->dec_key_id = 0;
  }
}

void aead_free(struct aead *a) {
  if (!a) return;
  aead_direct_free(a->direct);
  EVP_CIPHER_CTX_free(a->enc);
  EVP_CIPHER_CTX_free(a->dec);
  free(a);
}

static void nonce_of(uint64_t counter, uint8_t iv[12]) {
  memset(iv, 0, 4);
  for (int i = 0; i < 8; i++) iv[4 + i] = (uint8_t)(counter >> (8 * i));
}

int aead_seal_parts(struct aead *a, uint64_t key_id, const uint8_t *key, uint64_t counter, uint8_t *p1, size_t l1,
                    uint8_t *p2, size_t l2, uint8_t *p3, size_t l3, uint8_t *tag) {
  uint8_t iv[12];
  int n = 0, fin = 0;
  if (a->direct) return aead_direct_seal(a->direct, key, counter, p1, l1, p2, l2, p3, l3, tag);
  if (a->broken) return -1;
  nonce_of(counter, iv);
  const uint8_t *k = key_id != a->enc_key_id ? key : NULL;
  if (EVP_EncryptInit_ex(a->enc, NULL, NULL, k, iv) != 1) return -1;
  a->enc_key_id = key_id;
  uint8_t *parts[3] = {p1, p2, p3};
  size_t lens[3] = {l1, l2, l3};
  for (int i = 0; i < 3; i++) /* ChaCha20 is a stream: parts of any length chain */
    if (lens[i] && EVP_EncryptUpdate(a->enc, parts[i], &n, parts[i], (int)lens[i]) != 1) return -1;
  if (EVP_EncryptFinal_ex(a->enc, tag, &fin) != 1) return -1;
  return EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_BYTES, tag) == 1 ? 0 : -1;
}

int aead_seal(struct aead *a, uint64_t key_id, const uint8_t *key, uint64_t counter, uint8_t *buf, size_t len) {
  return aead_seal_parts(a, key_id, key, counter, buf, len, NULL, 0, NULL, 0, buf + len);
}

int aead_open(struct aead *a, uint64_t key_id, const uint8_t *key, uint64_t counter, uint8_t *buf, size_t len) {
  uint8_t iv[12];
  int n = 0, fin = 0;
  if (a->direct) return aead_direct_open(a->direct, key, counter, buf, len);
  if (a->broken) return -1;
  nonce_of(counter, iv);
  const uint8_t *k = key_id != a->dec_key_id ? key : NULL;
  if (EVP_DecryptInit_ex(a->dec, NULL, NULL, k, iv) != 1) return -1;
  a->dec_key_id = key_id;
  if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_BYTES, buf + len) != 1) return -1;
  if (len && EVP_DecryptUpdate(a->dec, buf, &n, buf, (int)len) != 1) return -1;
  return EVP_DecryptFinal_ex(a->dec, buf + n, &fin) == 1 ? 0 : -1;
}

/* The direct path against EVP on messages that take each of its branches (empty, short, one
 * keystream call, several; three parts), sealed and opened both ways, and a forgery refused;
 * after each call the direct context must hold nothing (no keystream, no Poly1305 state: it
 * keeps no secret, so aead_forget has nothing to do for it). 1 when all of that holds. */
static int self_test(void) {
  static int result = -1;
  if (result >= 0) return result;
  static const size_t lens[] = {0, 15, 64, 1424, 4032, 4033, 9000};
  uint8_t key[AEAD_KEY_BYTES], *x = malloc(9000 + AEAD_TAG_BYTES), *y = malloc(9000 + AEAD_TAG_BYTES);
  struct aead_direct *d = aead_direct_new();
  struct aead evp = {0};
  int ok = x && y && d && (evp.enc = EVP_CIPHER_CTX_new()) && (evp.dec = EVP_CIPHER_CTX_new()) && setup(evp.enc, 1) &&
           setup(evp.dec, 0);
  for (int i = 0; i < AEAD_KEY_BYTES; i++) key[i] = (uint8_t)(i * 29 + 7);
  for (size_t t = 0; ok && t < sizeof(lens) / sizeof(lens[0]); t++) {
    size_t n = lens[t], a1 = n / 3, a2 = n / 2;
    uint64_t ctr = 0x0102030405060708ull * (t + 1);
    for (size_t i = 0; i < n; i++) x[i] = y[i] = (uint8_t)(i * 131 + t);
    ok = aead_seal(&evp, 1, key, ctr, x, n) == 0 &&
         aead_direct_seal(d, key, ctr, y, a1, y + a1, a2 - a1, y + a2, n - a2, y + n) == 0 && aead_direct_is_clean(d) &&
         memcmp(x, y, n + AEAD_TAG_BYTES) == 0 && aead_direct_open(d, key, ctr, y, n) == 0 && aead_direct_is_clean(d) &&
         aead_open(&evp, 1, key, ctr, x, n) == 0 && memcmp(x, y, n) == 0;
    if (ok && n) { /* a forgery is refused */
      aead_seal(&evp, 1, key, ctr, x, n);
      x[n / 2] ^= 1;
      ok = aead_direct_open(d, key, ctr, x, n) != 0 && aead_direct_is_clean(d);
    }
  }
  EVP_CIPHER_CTX_free(evp.enc);
  EVP_CIPHER_CTX_free(evp.dec);
  aead_direct_free(d);
  free(x);
  free(y);
  return result = ok;
}
