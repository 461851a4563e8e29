/*
 * N-API face of encrypted mode. Nothing here runs per data packet.
 *
 *   start({ encrypted: true, publicKey?: Uint8Array(32), rekeyAfterMs?, rejectAfterMs?, onEvents?: () => void })
 *     publicKey: our static public key; handshake initiations/responses are queued for
 *     TypeScript only when their mac1 verifies against it (none without it)
 *   drainEvents(handle) -> Uint8Array | null     up to 256 records of 176 bytes (wg.c)
 *   sendRaw(handle, address, port, bytes)        a handshake message from the data plane's socket
 *   peerActivity(handle, Uint32Array ids) -> Float64Array, 5 per id: last data sent, last data
 *                                                received, last authenticated received, last sent (ms),
 *                                                endpoint moves (roaming) so far
 *   peerEndpoint(handle, id) -> [address, port] | null   where the data plane sends to a peer now
 *   monotonicMs() -> number                      the clock of peerActivity
 *   aeadSeal(key, counter: bigint, plaintext) / aeadOpen(key, counter, ciphertext) -> Uint8Array|null
 *   aeadSealParts(key, counter, p1, p2, p3) -> sealed p1||p2||p3 (three in-place pieces) + tag
 *   replayCheck(counters: BigUint64Array) -> Uint8Array of 0/1    (differential tests)
 */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "addon.h"
#include "wg.h"
#include "blake2s.h"

#define DRAIN_MAX 256

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  if (!env || !js_cb) return;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, js_cb, 0, NULL, NULL);
}

static void notify(void *ctx) {
  napi_call_threadsafe_function((napi_threadsafe_function)ctx, NULL, napi_tsfn_nonblocking);
}

int wg_addon_options(napi_env env, napi_value o, struct dp_options *opt, struct handle *h) {
  bool has = false, enc = false;
  napi_value v;
  int rekey = 0, reject = 0;
  if (napi_has_named_property(env, o, "encrypted", &has) == napi_ok && has &&
      napi_get_named_property(env, o, "encrypted", &v) == napi_ok)
    napi_get_value_bool(env, v, &enc);
  opt->encrypted = enc;
  if (get_int(env, o, "rekeyAfterMs", &rekey) < 0 || rekey < 0 || get_int(env, o, "rejectAfterMs", &reject) < 0 ||
      reject < 0) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "rekeyAfterMs/rejectAfterMs must be non-negative integers");
    return -1;
  }
  opt->rekey_after_ms = (uint64_t)rekey;
  opt->reject_after_ms = (uint64_t)reject;
  if (!enc) return 0;
  if (napi_has_named_property(env, o, "publicKey", &has) == napi_ok && has) {
    uint8_t *pk;
    size_t pl;
    napi_valuetype pt;
    if (napi_get_named_property(env, o, "publicKey", &v) != napi_ok || napi_typeof(env, v, &pt) != napi_ok) return -1;
    if (pt != napi_undefined) {
      napi_typedarray_type type;
      napi_value ab;
      size_t off;
      if (napi_get_typedarray_info(env, v, &type, &pl, (void **)&pk, &ab, &off) != napi_ok || type != napi_uint8_array || pl != 32) {
        napi_throw_type_error(env, "ERR_TULLE_OPTION", "publicKey must be a Uint8Array of 32 bytes");
        return -1;
      }
      memcpy(opt->public_key, pk, 32);
      opt->has_public_key = 1;
    }
  }
  if (napi_has_named_property(env, o, "onEvents", &has) != napi_ok || !has) return 0;
  napi_valuetype t;
  if (napi_get_named_property(env, o, "onEvents", &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok ||
      t != napi_function) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "onEvents must be a function");
    return -1;
  }
  napi_value name;
  napi_create_string_utf8(env, "tulle-wg-events", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, v, NULL, name, 0, 1, NULL, NULL, NULL, call_js, &h->events) != napi_ok) {
    napi_throw_error(env, "ERR_TULLE_NAPI", "cannot create the event callback");
    return -1;
  }
  napi_unref_threadsafe_function(env, h->events); /* a running data plane does not keep Node alive */
  opt->notify = notify;
  opt->notify_ctx = h->events;
  return 0;
}

void wg_addon_release(struct handle *h) {
  if (h->events) napi_release_threadsafe_function(h->events, napi_tsfn_abort);
  h->events = NULL;
}

static struct dataplane *running(napi_env env, napi_value v) {
  struct handle *h = get_handle(env, v);
  if (!h) return NULL;
  if (!h->dp || !h->dp->wg) {
    napi_throw_error(env, "ERR_TULLE_STOPPED", "no running encrypted-mode data plane");
    return NULL;
  }
  return h->dp;
}

static napi_value js_drain_events(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab, arr, nul;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct dataplane *dp = running(env, argv[0]);
  if (!dp) return NULL;
  static uint8_t buf[DRAIN_MAX * WG_EVENT_RECORD]; /* JS thread only */
  uint32_t n = wg_drain_events(dp->wg, buf, DRAIN_MAX);
  if (!n) {
    CHECK(napi_get_null(env, &nul));
    return nul;
  }
  void *out;
  CHECK(napi_create_arraybuffer(env, (size_t)n * WG_EVENT_RECORD, &out, &ab));
  memcpy(out, buf, (size_t)n * WG_EVENT_RECORD);
  CHECK(napi_create_typedarray(env, napi_uint8_array, (size_t)n * WG_EVENT_RECORD, ab, 0, &arr));
  return arr;
}

static napi_value js_send_raw(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], res;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct dataplane *dp = running(env, argv[0]);
  if (!dp) return NULL;
  char addr[INET6_ADDRSTRLEN + 1];
  size_t al;
  int32_t port;
  uint8_t *data;
  size_t len;
  if (napi_get_value_string_utf8(env, argv[1], addr, sizeof(addr), &al) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 1 || port > 65535) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "sendRaw(handle, address, port, bytes)");
    return NULL;
  }
  if (get_bytes(env, argv[3], &data, &len) < 0) return NULL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t sl;
  uint8_t a4[4];
  if (dp->sock_family == AF_INET && inet_pton(AF_INET, addr, a4) == 1) {
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    memcpy(&s->sin_addr, a4, 4);
    sl = sizeof(*s);
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, a4) == 1) {
      s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
      memcpy(s->sin6_addr.s6_addr + 12, a4, 4);
    } else if ((dp->sock_family != AF_INET6 && !dp->split) || inet_pton(AF_INET6, addr, &s->sin6_addr) != 1) {
      napi_throw_type_error(env, "ERR_TULLE_OPTION", "sendRaw: address of the wrong family or invalid");
      return NULL;
    }
    sl = sizeof(*s);
  }
  ssize_t r = sendto(dp_send_fd(&dp->q[0], ss.ss_family), data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
  CHECK(napi_get_boolean(env, r == (ssize_t)len, &res));
  return res;
}

static napi_value js_peer_activity(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ab, arr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct dataplane *dp = running(env, argv[0]);
  if (!dp) return NULL;
  napi_typedarray_type type;
  size_t n, off;
  void *ids;
  napi_value ib;
  if (napi_get_typedarray_info(env, argv[1], &type, &n, &ids, &ib, &off) != napi_ok || type != napi_uint32_array) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "peerActivity(handle, Uint32Array)");
    return NULL;
  }
  double *out;
  CHECK(napi_create_arraybuffer(env, n * 5 * sizeof(double), (void **)&out, &ab));
  pthread_rwlock_rdlock(&dp->lock);
  for (size_t i = 0; i < n; i++) {
    struct wg_peer *wp = wg_peer_get(dp->wg, ((uint32_t *)ids)[i]);
    out[i * 5 + 0] = wp ? (double)atomic_load(&wp->last_tx_data_ms) : 0;
    out[i * 5 + 1] = wp ? (double)atomic_load(&wp->last_rx_data_ms) : 0;
    out[i * 5 + 2] = wp ? (double)atomic_load(&wp->last_rx_any_ms) : 0;
    out[i * 5 + 3] = wp ? (double)atomic_load(&wp->last_tx_any_ms) : 0;
    out[i * 5 + 4] = wp ? (double)(atomic_load(&wp->ep_seq) / 2) : 0;
  }
  pthread_rwlock_unlock(&dp->lock);
  CHECK(napi_create_typedarray(env, napi_float64_array, n * 5, ab, 0, &arr));
  return arr;
}

static napi_value js_peer_endpoint(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res, va, vp, nul;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct dataplane *dp = running(env, argv[0]);
  if (!dp) return NULL;
  uint32_t id;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "peerEndpoint(handle, id)");
    return NULL;
  }
  struct sockaddr_storage ep;
  pthread_rwlock_rdlock(&dp->lock);
  socklen_t l = wg_peer_endpoint(dp, id, &ep);
  pthread_rwlock_unlock(&dp->lock);
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (l && ep.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ep)->sin_addr, text, sizeof(text));
    port = ntohs(((struct sockaddr_in *)&ep)->sin_port);
  } else if (l) {
    const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ep)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) inet_ntop(AF_INET, a6->s6_addr + 12, text, sizeof(text));
    else inet_ntop(AF_INET6, a6, text, sizeof(text));
    port = ntohs(((struct sockaddr_in6 *)&ep)->sin6_port);
  }
  if (!text[0]) {
    CHECK(napi_get_null(env, &nul));
    return nul;
  }
  CHECK(napi_create_array_with_length(env, 2, &res));
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &va));
  CHECK(napi_create_uint32(env, (uint32_t)port, &vp));
  CHECK(napi_set_element(env, res, 0, va));
  CHECK(napi_set_element(env, res, 1, vp));
  return res;
}

static napi_value js_monotonic_ms(napi_env env, napi_callback_info info) {
  napi_value res;
  CHECK(napi_create_double(env, (double)wg_now_ms(), &res));
  return res;
}

/* ---- test hooks: the native AEAD and replay window against the TypeScript references ---- */

static napi_value aead_test(napi_env env, napi_callback_info info, int seal) {
  size_t argc = 3;
  napi_value argv[3], ab, arr, nul;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key, *in;
  size_t klen, len;
  uint64_t counter;
  bool lossless;
  if (get_bytes(env, argv[0], &key, &klen) < 0 || get_bytes(env, argv[2], &in, &len) < 0) return NULL;
  if (klen != 32 || napi_get_value_bigint_uint64(env, argv[1], &counter, &lossless) != napi_ok || !lossless ||
      (!seal && len < AEAD_TAG_BYTES)) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "aead(key[32], counter: bigint, bytes)");
    return NULL;
  }
  size_t out_len = seal ? len + AEAD_TAG_BYTES : len - AEAD_TAG_BYTES;
  uint8_t *buf = malloc(len + AEAD_TAG_BYTES);
  struct aead *a = aead_new();
  if (!buf || !a) {
    free(buf);
    aead_free(a);
    napi_throw_error(env, "ERR_TULLE_NOMEM", "out of memory");
    return NULL;
  }
  if (len) memcpy(buf, in, len); /* an empty Uint8Array may have no data pointer at all */
  int rc = seal ? aead_seal(a, 1, key, counter, buf, len) : aead_open(a, 1, key, counter, buf, out_len);
  aead_free(a);
  if (rc != 0) {
    free(buf);
    CHECK(napi_get_null(env, &nul));
    return nul;
  }
  void *out;
  if (napi_create_arraybuffer(env, out_len, &out, &ab) != napi_ok) {
    free(buf);
    return NULL;
  }
  if (out_len) memcpy(out, buf, out_len); /* an empty ArrayBuffer may have no data pointer */
  free(buf);
  CHECK(napi_create_typedarray(env, napi_uint8_array, out_len, ab, 0, &arr));
  return arr;
}
static napi_value js_aead_seal(napi_env env, napi_callback_info info) { return aead_test(env, info, 1); }

/* aeadSealParts(key, counter, p1, p2, p3) -> ciphertext of p1 || p2 || p3, then the tag */
static napi_value js_aead_seal_parts(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], ab, arr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key, *p[3];
  size_t klen, l[3];
  uint64_t counter;
  bool lossless;
  if (argc < 5 || get_bytes(env, argv[0], &key, &klen) < 0 || get_bytes(env, argv[2], &p[0], &l[0]) < 0 ||
      get_bytes(env, argv[3], &p[1], &l[1]) < 0 || get_bytes(env, argv[4], &p[2], &l[2]) < 0)
    return NULL;
  if (klen != 32 || napi_get_value_bigint_uint64(env, argv[1], &counter, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "aeadSealParts(key[32], counter: bigint, p1, p2, p3)");
    return NULL;
  }
  size_t total = l[0] + l[1] + l[2];
  uint8_t *out;
  CHECK(napi_create_arraybuffer(env, total + AEAD_TAG_BYTES, (void **)&out, &ab));
  /* copy each part to its own place in the output, then seal the three pieces in place */
  if (l[0]) memcpy(out, p[0], l[0]); /* empty parts may have no data pointer */
  if (l[1]) memcpy(out + l[0], p[1], l[1]);
  if (l[2]) memcpy(out + l[0] + l[1], p[2], l[2]);
  struct aead *a = aead_new();
  int rc = a ? aead_seal_parts(a, 1, key, counter, out, l[0], out + l[0], l[1], out + l[0] + l[1], l[2], out + total) : -1;
  aead_free(a);
  if (rc != 0) {
    napi_throw_error(env, "ERR_TULLE_AEAD", "aead_seal_parts failed");
    return NULL;
  }
  CHECK(napi_create_typedarray(env, napi_uint8_array, total + AEAD_TAG_BYTES, ab, 0, &arr));
  return arr;
}
static napi_value js_aead_open(napi_env env, napi_callback_info info) { return aead_test(env, info, 0); }

/* blake2s(key, data, outLen) -> Uint8Array: the native BLAKE2s (mac1 checks) against @noble/hashes */
static napi_value js_blake2s(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], ab, arr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key, *data, *out;
  size_t kl, dl;
  int32_t outlen;
  if (argc < 3 || get_bytes(env, argv[0], &key, &kl) < 0 || get_bytes(env, argv[1], &data, &dl) < 0) return NULL;
  if (napi_get_value_int32(env, argv[2], &outlen) != napi_ok || outlen < 1 || outlen > 32 || kl > 32) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "blake2s(key[0..32], data, outLen 1..32)");
    return NULL;
  }
  CHECK(napi_create_arraybuffer(env, (size_t)outlen, (void **)&out, &ab));
  blake2s(out, (size_t)outlen, key, kl, data, dl);
  CHECK(napi_create_typedarray(env, napi_uint8_array, (size_t)outlen, ab, 0, &arr));
  return arr;
}

static napi_value js_replay_check(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab, arr, ib;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  size_t n, off;
  void *in;
  if (napi_get_typedarray_info(env, argv[0], &type, &n, &in, &ib, &off) != napi_ok || type != napi_biguint64_array) {
    napi_throw_type_error(env, "ERR_TULLE_OPTION", "replayCheck(BigUint64Array)");
    return NULL;
  }
  struct replay *r = calloc(1, sizeof(*r));
  uint8_t *out;
  if (!r || napi_create_arraybuffer(env, n, (void **)&out, &ab) != napi_ok) {
    free(r);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) out[i] = (uint8_t)replay_accept(r, ((uint64_t *)in)[i]);
  free(r);
  CHECK(napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &arr));
  return arr;
}

/* aeadPath(set?: 'evp' | 'direct') -> the path new AEAD contexts use (aead.h); setting 'direct'
 * where it is not available throws */
static napi_value js_aead_path(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  char want[16] = "";
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) {
    napi_valuetype t;
    size_t n;
    CHECK(napi_typeof(env, argv[0], &t));
    if (t != napi_undefined) {
      if (t != napi_string || napi_get_value_string_utf8(env, argv[0], want, sizeof(want), &n) != napi_ok ||
          (strcmp(want, "evp") && strcmp(want, "direct"))) {
        napi_throw_type_error(env, "ERR_TULLE_OPTION", "aeadPath(path?: 'evp' | 'direct')");
        return NULL;
      }
      if (aead_set_path(want[0] == 'd' ? AEAD_PATH_DIRECT : AEAD_PATH_EVP) != 0) {
        napi_throw_error(env, "ERR_TULLE_AEAD", "the direct AEAD path is not available in this node (its OpenSSL primitives are missing or failed the self-test)");
        return NULL;
      }
    }
  }
  const char *p = aead_path() == AEAD_PATH_DIRECT ? "direct" : "evp";
  CHECK(napi_create_string_utf8(env, p, NAPI_AUTO_LENGTH, &res));
  return res;
}

int wg_addon_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"drainEvents", NULL, js_drain_events, NULL, NULL, NULL, napi_default, NULL},
      {"sendRaw", NULL, js_send_raw, NULL, NULL, NULL, napi_default, NULL},
      {"peerActivity", NULL, js_peer_activity, NULL, NULL, NULL, napi_default, NULL},
      {"peerEndpoint", NULL, js_peer_endpoint, NULL, NULL, NULL, napi_default, NULL},
      {"monotonicMs", NULL, js_monotonic_ms, NULL, NULL, NULL, napi_default, NULL},
      {"aeadSeal", NULL, js_aead_seal, NULL, NULL, NULL, napi_default, NULL},
      {"aeadOpen", NULL, js_aead_open, NULL, NULL, NULL, napi_default, NULL},
      {"aeadSealParts", NULL, js_aead_seal_parts, NULL, NULL, NULL, napi_default, NULL},
      {"aeadPath", NULL, js_aead_path, NULL, NULL, NULL, napi_default, NULL},
      {"replayCheck", NULL, js_replay_check, NULL, NULL, NULL, napi_default, NULL},
      {"blake2s", NULL, js_blake2s, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok ? 0 : -1;
}
