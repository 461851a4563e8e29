#include "aead.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct aead {
  EVP_CIPHER_CTX *enc, *dec;
  uint64_t enc_key_id, dec_key_id; /* 0 = none loaded */
  int broken; /* set up again after aead_forget failed: every call fails */
};

static int setup(EVP_CIPHER_CTX *c, int enc) {
  return EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1;
}

struct aead *aead_new(void) {
  struct aead *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->enc = EVP_CIPHER_CTX_new();
  a->dec = EVP_CIPHER_CTX_new();
  if (!a->enc || !a->dec || !setup(a->enc, 1) || !setup(a->dec, 0)) {
    aead_free(a);
    return NULL;
  }
  return a;
}

void aead_forget(struct aead *a, uint64_t key_id) {
  if (!a || !key_id) return;
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
  if (a->broken) return -1;
  nonce_of(counter, iv);
  const uint8_t *k = key_id != a->dec_key_id ? key : NULL;
  if (EVP_DecryptInit_ex(a->dec, NULL, NULL, k, iv) != 1) return -1;
  a->dec_key_id = key_id;
  if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_BYTES, buf + len) != 1) return -1;
  if (len && EVP_DecryptUpdate(a->dec, buf, &n, buf, (int)len) != 1) return -1;
  return EVP_DecryptFinal_ex(a->dec, buf + n, &fin) == 1 ? 0 : -1;
}
