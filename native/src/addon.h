/* Shared between addon.c (the data plane's N-API face) and addon-wg.c (encrypted mode's). */
#ifndef TULLE_ADDON_H
#define TULLE_ADDON_H
#include <node_api.h>
#include "dataplane.h"

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, "ERR_TULLE_NAPI", "N-API call failed: " #call);                        \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

struct counters_ref;

struct handle {
  struct dataplane *dp;            /* NULL once stopped */
  struct counters_ref *counters;   /* one of the counters' two owners (addon.c) */
  napi_threadsafe_function events; /* encrypted mode: wakes JS when events wait, else NULL */
  napi_ref peer_blocks[DP_PC_BLOCKS]; /* per-peer counter blocks exposed so far (addon.c) */
};

int get_string(napi_env env, napi_value obj, const char *key, char *out, size_t cap);
int get_int(napi_env env, napi_value obj, const char *key, int *out);
struct handle *get_handle(napi_env env, napi_value v);
int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);

/* Reads encrypted-mode options (encrypted, rekeyAfterMs, rejectAfterMs, onEvents) into opt. */
int wg_addon_options(napi_env env, napi_value o, struct dp_options *opt, struct handle *h);
/* Releases the event callback (after the data plane stopped). Idempotent. */
void wg_addon_release(struct handle *h);
int wg_addon_init(napi_env env, napi_value exports);

#endif
