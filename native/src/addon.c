/*
 * N-API face of the data plane. Nothing here runs per packet: JavaScript creates a data plane,
 * applies command batches, reads counters through shared memory and stops it.
 *
 *   start(options) -> { handle, tunName, port, counters: ArrayBuffer }
 *   apply(handle, Uint8Array)        throws on an invalid record (nothing applied)
 *   cpuNs(handle) -> number          CPU time of the packet threads
 *   stop(handle)                     idempotent
 *   counterNames() -> string[]; counterSlots -> number (per queue)
 *   peerCounterBlock(handle, b) -> ArrayBuffer | null   per-peer counters of ids b * peerBlockPeers ..
 *                                    (dataplane.h: [queue][id % peerBlockPeers][peerCounterNames()]);
 *                                    null until a peer in the block was set; the same buffer each time
 *   peerCounterNames() -> string[]; peerBlockPeers, maxPeers -> number
 *   routeLookup(commands, queries)   the native route table alone, for differential tests
 * Encrypted mode's exports (events, raw sends, AEAD/replay test hooks) are in addon-wg.c.
 */
#include <node_api.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "dataplane.h"
#include "addon-offload.h"
#include "addon.h"
#include "sd-notify.h"

/*
 * The counters memory is written by the packet threads and read by JavaScript through an
 * external ArrayBuffer. Two owners hold it: the handle (until its threads are joined) and the
 * ArrayBuffer. When JavaScript drops a running data plane, the garbage collector finalizes the
 * two in no particular order, so the memory is freed by whichever lets go last: never while a
 * thread may still write to it.
 */
struct counters_ref {
  atomic_int refs;
  uint64_t *mem;
  struct dp_peer_counters *peers; /* per-peer counters: one reference per block exposed, too */
};

static void counters_unref(struct counters_ref *r) {
  if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
    free(r->mem);
    dp_pc_free(r->peers);
    free(r);
  }
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  struct handle *h = data;
  if (h->dp) dp_stop(h->dp); /* joins the threads: nothing writes the counters after this */
  wg_addon_release(h);
  for (uint32_t i = 0; i < DP_PC_BLOCKS; i++)
    if (h->peer_blocks[i]) napi_delete_reference(env, h->peer_blocks[i]);
  counters_unref(h->counters);
  free(h);
}

static void counters_finalize(napi_env env, void *data, void *hint) { counters_unref(hint); }

int get_string(napi_env env, napi_value obj, const char *key, char *out, size_t cap) {
  bool has;
  napi_value v;
  napi_valuetype t;
  out[0] = 0;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_string) return -1;
  size_t n;
  if (napi_get_value_string_utf8(env, v, out, cap, &n) != napi_ok || n >= cap - 1) return -1;
  return 1;
}

int get_int(napi_env env, napi_value obj, const char *key, int *out) {
  bool has;
  napi_value v;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) return 0;
  if (t != napi_number) return -1;
  return napi_get_value_int32(env, v, out) == napi_ok ? 1 : -1;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_TULLE_OPTION", msg);
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "start(options): options missing");
  napi_value o = argv[0];
  struct dp_options opt;
  memset(&opt, 0, sizeof(opt));
  char bind[INET6_ADDRSTRLEN + 1];
  int port = 8285, port6 = -1, mtu = 1472, queues = 1;
  if (get_string(env, o, "tunName", opt.tun_name, sizeof(opt.tun_name)) < 0)
    return throw_type(env, "tunName must be a string of at most 15 bytes");
  if (get_string(env, o, "netns", opt.netns, sizeof(opt.netns)) < 0) return throw_type(env, "netns must be a path");
  if (get_string(env, o, "bindAddress", bind, sizeof(bind)) < 0) return throw_type(env, "bindAddress must be a string");
  if (get_int(env, o, "port", &port) < 0 || port < 0 || port > 65535) return throw_type(env, "port must be 0..65535");
  int has_port6 = get_int(env, o, "ipv6Port", &port6);
  if (has_port6 < 0 || (has_port6 && (port6 < 0 || port6 > 65535))) return throw_type(env, "ipv6Port must be 0..65535");
  if (get_int(env, o, "mtu", &mtu) < 0 || mtu < 576 || mtu > 65535) return throw_type(env, "mtu must be 576..65535");
  if (get_int(env, o, "queues", &queues) < 0 || queues < 1 || queues > DP_MAX_QUEUES)
    return throw_type(env, "queues must be 1..16");
  if (has_port6 && queues > DP_MAX_QUEUES / 2) return throw_type(env, "queues must be 1..8 with ipv6Port (two socket sets)");
  opt.mtu = mtu;
  opt.queues = queues;
  if (offload_parse_option(env, o, &opt.offload) < 0)
    return throw_type(env, "offload must be a boolean or { csum, tso, uso, gso, gro, coalesce, inlineReplies, replyQueue } of booleans and spinUs, a whole number of microseconds 0..1000");
  struct handle *h = calloc(1, sizeof(*h));
  if (!h) {
    napi_throw_error(env, "ERR_TULLE_NOMEM", "out of memory");
    return NULL;
  }
  if (wg_addon_options(env, o, &opt, h) < 0) {
    wg_addon_release(h);
    free(h);
    return NULL;
  }
  if (!bind[0]) strcpy(bind, "0.0.0.0");
  struct sockaddr_in *b4 = (struct sockaddr_in *)&opt.bind;
  struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&opt.bind;
  if (inet_pton(AF_INET, bind, &b4->sin_addr) == 1) {
    b4->sin_family = AF_INET;
    b4->sin_port = htons((uint16_t)port);
    opt.bind_len = sizeof(*b4);
  } else if (inet_pton(AF_INET6, bind, &b6->sin6_addr) == 1) {
    b6->sin6_family = AF_INET6;
    b6->sin6_port = htons((uint16_t)port);
    opt.bind_len = sizeof(*b6);
  } else {
    return throw_type(env, "bindAddress is not an IPv4 or IPv6 address");
  }

  if (has_port6) { /* Mode "separate": IPv6-only sockets of their own on [::]:ipv6Port (dataplane.h) */
    if (b4->sin_family != AF_INET) {
      wg_addon_release(h);
      free(h);
      return throw_type(env, "ipv6Port needs an IPv4 bindAddress (its sockets then carry IPv4 only)");
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&opt.bind6;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_any;
    s6->sin6_port = htons((uint16_t)port6);
    opt.bind6_len = sizeof(*s6);
  }
  /* the global counters, exposed as an ArrayBuffer; the per-peer ones grow by blocks (dataplane.h) */
  int total = dp_total_queues(queues, has_port6);
  size_t cbytes = sizeof(uint64_t) * TULLE_COUNTER_SLOTS * (size_t)total;
  uint64_t *counters = calloc(1, cbytes);
  opt.peer_counters = dp_pc_new(total);
  struct counters_ref *cref = malloc(sizeof(*cref));
  if (!counters || !opt.peer_counters || !cref) {
    free(counters);
    dp_pc_free(opt.peer_counters);
    free(cref);
    wg_addon_release(h);
    free(h);
    napi_throw_error(env, "ERR_TULLE_NOMEM", "out of memory");
    return NULL;
  }
  atomic_init(&cref->refs, 1); /* the handle's; the ArrayBuffer takes the second below */
  cref->mem = counters;
  cref->peers = opt.peer_counters;
  char err[512] = "";
  h->dp = dp_start(&opt, counters, err, sizeof(err));
  if (!h->dp) {
    counters_unref(cref);
    wg_addon_release(h);
    free(h);
    napi_throw_error(env, "ERR_TULLE_DATAPLANE_START", err);
    return NULL;
  }
  h->counters = cref;
  napi_value res, vh, vname, vport, vbuf;
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_external(env, h, handle_finalize, NULL, &vh));
  CHECK(napi_create_string_utf8(env, h->dp->tun_name, NAPI_AUTO_LENGTH, &vname));
  CHECK(napi_create_uint32(env, h->dp->bound_port, &vport));
  atomic_fetch_add(&cref->refs, 1);
  if (napi_create_external_arraybuffer(env, counters, cbytes, counters_finalize, cref, &vbuf) != napi_ok) {
    counters_unref(cref); /* not created: its reference goes back (the handle's stays) */
    napi_throw_error(env, "ERR_TULLE_NAPI", "cannot expose the counters");
    return NULL;
  }
  CHECK(napi_set_named_property(env, res, "handle", vh));
  CHECK(napi_set_named_property(env, res, "tunName", vname));
  CHECK(napi_set_named_property(env, res, "port", vport));
  if (h->dp->split) {
    napi_value vport6;
    CHECK(napi_create_uint32(env, h->dp->bound_port6, &vport6));
    CHECK(napi_set_named_property(env, res, "ipv6Port", vport6));
  }
  CHECK(napi_set_named_property(env, res, "counters", vbuf));
  CHECK(napi_set_named_property(env, res, "offload", offload_state_value(env, &h->dp->opt.offload, &h->dp->offload)));
  return res;
}

struct handle *get_handle(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "ERR_TULLE_HANDLE", "not a data plane handle");
    return NULL;
  }
  return p;
}

int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  void *d;
  if (napi_get_typedarray_info(env, v, &type, len, &d, &ab, &off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_TULLE_COMMANDS", "commands must be a Uint8Array");
    return -1;
  }
  *data = d;
  return 0;
}

static napi_value throw_bad_command(napi_env env, long at) {
  char msg[96];
  snprintf(msg, sizeof(msg), "invalid data plane command at byte %ld (nothing applied)", at);
  napi_throw_range_error(env, "ERR_TULLE_COMMAND", msg);
  return NULL;
}

static napi_value js_apply(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  if (!h->dp) {
    napi_throw_error(env, "ERR_TULLE_STOPPED", "the data plane is stopped");
    return NULL;
  }
  uint8_t *d;
  size_t len;
  if (get_bytes(env, argv[1], &d, &len) < 0) return NULL;
  long bad = dp_apply(h->dp, d, len);
  if (bad >= 0) return throw_bad_command(env, bad);
  return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  if (h->dp) dp_stop(h->dp);
  h->dp = NULL;
  wg_addon_release(h);
  return NULL;
}

static napi_value js_cpu_ns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  CHECK(napi_create_double(env, h->dp ? (double)dp_cpu_ns(h->dp) : 0, &res));
  return res;
}

/* One ArrayBuffer per block, made once and kept by the handle: JavaScript reads a peer's
 * counters with no call; it asks again only for a block it has not seen yet (the peer table grew). */
static napi_value js_peer_counter_block(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = argc == 2 ? get_handle(env, argv[0]) : NULL;
  if (!h) return NULL;
  uint32_t b;
  if (napi_get_value_uint32(env, argv[1], &b) != napi_ok || b >= DP_PC_BLOCKS) {
    napi_throw_range_error(env, "ERR_TULLE_OPTION", "peerCounterBlock(handle, block): block must be 0..maxPeers / peerBlockPeers - 1");
    return NULL;
  }
  if (h->peer_blocks[b]) {
    CHECK(napi_get_reference_value(env, h->peer_blocks[b], &res));
    return res;
  }
  struct counters_ref *cref = h->counters;
  uint64_t *mem = __atomic_load_n(&cref->peers->block[b], __ATOMIC_ACQUIRE);
  if (!mem) {
    CHECK(napi_get_null(env, &res));
    return res;
  }
  atomic_fetch_add(&cref->refs, 1);
  if (napi_create_external_arraybuffer(env, mem, dp_pc_block_bytes(cref->peers), counters_finalize, cref, &res) != napi_ok) {
    counters_unref(cref);
    napi_throw_error(env, "ERR_TULLE_NAPI", "cannot expose the peer counters");
    return NULL;
  }
  CHECK(napi_create_reference(env, res, 1, &h->peer_blocks[b]));
  return res;
}

/* A JS array of the given C strings (counter names, in their enum order). */
static napi_value string_array(napi_env env, const char *const *names, uint32_t n) {
  napi_value arr, s;
  CHECK(napi_create_array_with_length(env, n, &arr));
  for (uint32_t i = 0; i < n; i++) {
    CHECK(napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s));
    CHECK(napi_set_element(env, arr, i, s));
  }
  return arr;
}

static napi_value js_peer_counter_names(napi_env env, napi_callback_info info) {
  static const char *const names[] = {
#define X(id, name) name,
      DP_PEER_COUNTERS(X)
#undef X
  };
  return string_array(env, names, PC_COUNT);
}

static napi_value js_counter_names(napi_env env, napi_callback_info info) {
  static const char *const names[] = {
#define X(id, name) name,
      TULLE_COUNTERS(X)
#undef X
  };
  return string_array(env, names, TC_COUNT);
}

/* routeLookup(commands: Uint8Array, queries: Uint8Array of 17-byte records [family, addr16])
 * -> Uint32Array of peer ids (0xffffffff = none). Only SET_ROUTE/DEL_ROUTE records are used. */
static napi_value js_route_lookup(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *cmd, *qs;
  size_t clen, qlen;
  if (get_bytes(env, argv[0], &cmd, &clen) < 0 || get_bytes(env, argv[1], &qs, &qlen) < 0) return NULL;
  long bad = dp_validate(cmd, clen);
  if (bad >= 0) return throw_bad_command(env, bad);
  struct route_table t;
  if (rt_init(&t) < 0) return NULL;
  for (size_t at = 0; at < clen;) {
    const uint8_t *r = cmd + at;
    uint32_t id = (uint32_t)r[4] | (uint32_t)r[5] << 8 | (uint32_t)r[6] << 16 | (uint32_t)r[7] << 24;
    if (r[0] == DP_OP_SET_ROUTE) rt_set(&t, r[8], r + 12, r[9], id);
    if (r[0] == DP_OP_DEL_ROUTE) rt_del(&t, r[8], r + 12, r[9]);
    at += (size_t)(r[2] | r[3] << 8);
  }
  size_t n = qlen / 17;
  void *out;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, n * 4, &out, &ab) != napi_ok) {
    rt_free(&t);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) ((uint32_t *)out)[i] = rt_lookup(&t, qs[i * 17], qs + i * 17 + 1);
  rt_free(&t);
  CHECK(napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &arr));
  return arr;
}

#define STR2(x) #x
#define STR(x) STR2(x)
#if defined(__SANITIZE_ADDRESS__)
#define BUILD_SANITIZE ", ASan/UBSan"
#else
#define BUILD_SANITIZE ""
#endif
#if defined(__OPTIMIZE__)
#define BUILD_OPT "optimized"
#else
#define BUILD_OPT "unoptimized"
#endif
#define BUILD_INFO "N-API " STR(NAPI_VERSION) ", " BUILD_OPT BUILD_SANITIZE ", cc " __VERSION__ ", built " __DATE__ " " __TIME__

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"apply", NULL, js_apply, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"cpuNs", NULL, js_cpu_ns, NULL, NULL, NULL, napi_default, NULL},
      {"counterNames", NULL, js_counter_names, NULL, NULL, NULL, napi_default, NULL},
      {"peerCounterNames", NULL, js_peer_counter_names, NULL, NULL, NULL, napi_default, NULL},
      {"peerCounterBlock", NULL, js_peer_counter_block, NULL, NULL, NULL, napi_default, NULL},
      {"routeLookup", NULL, js_route_lookup, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  if (wg_addon_init(env, exports) < 0) return NULL;
  napi_value slots, build, pblock, pmax;
  CHECK(napi_create_uint32(env, TULLE_COUNTER_SLOTS, &slots));
  CHECK(napi_set_named_property(env, exports, "counterSlots", slots));
  CHECK(napi_create_uint32(env, DP_PC_BLOCK_PEERS, &pblock));
  CHECK(napi_set_named_property(env, exports, "peerBlockPeers", pblock));
  CHECK(napi_create_uint32(env, DP_MAX_PEERS, &pmax));
  CHECK(napi_set_named_property(env, exports, "maxPeers", pmax));
  /* `tulle --version`: which build of the addon this is */
  CHECK(napi_create_string_utf8(env, BUILD_INFO, NAPI_AUTO_LENGTH, &build));
  CHECK(napi_set_named_property(env, exports, "buildInfo", build));
  if (offload_register(env, exports) < 0) return NULL;
  if (sd_notify_register(env, exports) < 0) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
