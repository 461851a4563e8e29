/*
 * N-API test face of the offload stages, for differential tests against the TypeScript
 * reference (src/dataplane/offload-reference.ts). Not on any packet path.
 *
 *   offloadSplit(vnetHdr: Uint8Array(10), packet: Uint8Array) -> Uint8Array[] | number (gso_error)
 *     GSO_NONE + NEEDS_CSUM: the one packet with its checksum completed
 *   offloadCoalesce(packets: Uint8Array[], tcp: boolean, udp: boolean, trusted = false)
 *     -> { vnet: Uint8Array(10), packet: Uint8Array, segments: number }[]
 *     trusted: the bytes are vouched for (gro.h), checksums are not summed
 *     each packet must be one well-formed IP packet (ip_parse), as on the packet path, where the
 *     inbound checks run before the coalescer; anything else throws ERR_TULLE_ARG
 *   microBench(name, iterations) -> { nsPerOp, nsPerUnit, unit }   (micro-bench.c)
 */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include "addon-offload.h"
#include "gro.h"
#include "gso.h"
#include "micro-bench.h"
#include "packet.h"

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, "ERR_TULLE_NAPI", "N-API call failed: " #call);                        \
      goto fail;                                                                                   \
    }                                                                                              \
  } while (0)

static int bytes_of(napi_env env, napi_value v, uint8_t **d, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_TULLE_ARG", "expected a Uint8Array");
    return -1;
  }
  *d = p;
  return 0;
}

static napi_value new_bytes(napi_env env, const struct iovec *iov, int n) {
  size_t len = 0;
  for (int i = 0; i < n; i++) len += iov[i].iov_len;
  void *data;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, len, &data, &ab) != napi_ok) return NULL;
  for (int i = 0, at = 0; i < n; at += (int)iov[i].iov_len, i++) memcpy((uint8_t *)data + at, iov[i].iov_base, iov[i].iov_len);
  if (napi_create_typedarray(env, napi_uint8_array, len, ab, 0, &arr) != napi_ok) return NULL;
  return arr;
}

static napi_value js_split(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res = NULL;
  uint8_t *hb, *pb, *copy = NULL, *hdrs = NULL;
  struct gso_seg *segs = NULL;
  size_t hl, pl;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || bytes_of(env, argv[0], &hb, &hl) < 0 || bytes_of(env, argv[1], &pb, &pl) < 0) return NULL;
  if (hl < VNET_HDR_LEN) {
    napi_throw_range_error(env, "ERR_TULLE_ARG", "virtio-net header too short");
    return NULL;
  }
  struct vnet_hdr h;
  vnet_decode(hb, &h);
  copy = malloc(pl ? pl : 1);
  hdrs = malloc(GSO_MAX_HDR * 1024);
  segs = malloc(sizeof(*segs) * 1024);
  if (!copy || !hdrs || !segs) goto fail;
  memcpy(copy, pb, pl);
  int n;
  if ((h.gso_type & ~VNET_GSO_ECN) == VNET_GSO_NONE) {
    n = (h.flags & VNET_F_NEEDS_CSUM) ? gso_complete_csum(copy, pl, &h) : 0;
    if (n == 0) {
      segs[0] = (struct gso_seg){.hdr = copy, .hdr_len = (uint16_t)pl, .data = copy + pl, .data_len = 0};
      n = 1;
    }
  } else {
    n = gso_split(copy, pl, &h, hdrs, GSO_MAX_HDR, segs, 1024);
  }
  if (n < 0) {
    CHECK(napi_create_int32(env, n, &res));
  } else {
    CHECK(napi_create_array_with_length(env, (size_t)n, &res));
    for (int i = 0; i < n; i++) {
      struct iovec iov[2] = {{segs[i].hdr, segs[i].hdr_len}, {(void *)segs[i].data, segs[i].data_len}};
      napi_value b = new_bytes(env, iov, 2);
      if (!b) goto fail;
      CHECK(napi_set_element(env, res, (uint32_t)i, b));
    }
  }
fail:
  free(copy);
  free(hdrs);
  free(segs);
  return res;
}

static napi_value js_coalesce(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], res = NULL;
  uint32_t count = 0;
  bool tcp = false, udp = false, trusted = false;
  struct gro_table *t = NULL;
  uint8_t **copies = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return NULL;
  CHECK(napi_get_array_length(env, argv[0], &count));
  CHECK(napi_get_value_bool(env, argv[1], &tcp));
  CHECK(napi_get_value_bool(env, argv[2], &udp));
  if (argc > 3) {
    napi_valuetype vt;
    CHECK(napi_typeof(env, argv[3], &vt));
    if (vt != napi_undefined) CHECK(napi_get_value_bool(env, argv[3], &trusted));
  }
  if (count > GRO_MAX_PACKETS) {
    napi_throw_range_error(env, "ERR_TULLE_ARG", "too many packets");
    return NULL;
  }
  t = malloc(sizeof(*t));
  copies = calloc(count ? count : 1, sizeof(*copies));
  if (!t || !copies) goto fail;
  gro_init(t, tcp, udp, 1);
  for (uint32_t i = 0; i < count; i++) {
    napi_value e;
    uint8_t *d;
    size_t len;
    CHECK(napi_get_element(env, argv[0], i, &e));
    if (bytes_of(env, e, &d, &len) < 0) goto fail;
    struct ip_view v;
    if (ip_parse(d, len, &v) != 0) {
      napi_throw_range_error(env, "ERR_TULLE_ARG", "not a well-formed IP packet");
      goto fail;
    }
    if (!(copies[i] = malloc(len))) goto fail;
    memcpy(copies[i], d, len);
    if (gro_add(t, copies[i], len, trusted) == GRO_FULL) { /* cannot happen: count <= GRO_MAX_PACKETS */
      napi_throw_range_error(env, "ERR_TULLE_ARG", "too many packets");
      goto fail;
    }
  }
  CHECK(napi_create_array_with_length(env, (size_t)t->n_items, &res));
  for (int i = 0; i < t->n_items; i++) {
    uint8_t vnet[VNET_HDR_LEN];
    struct iovec iov[GRO_MAX_SEGS + 1];
    int segs, n = gro_output(t, i, vnet, iov, GRO_MAX_SEGS + 1, &segs);
    if (n < 0) goto fail;
    struct iovec vi = {vnet, VNET_HDR_LEN};
    napi_value o, vb, pb, sv;
    CHECK(napi_create_object(env, &o));
    if (!(vb = new_bytes(env, &vi, 1)) || !(pb = new_bytes(env, iov, n))) goto fail;
    CHECK(napi_create_int32(env, segs, &sv));
    CHECK(napi_set_named_property(env, o, "vnet", vb));
    CHECK(napi_set_named_property(env, o, "packet", pb));
    CHECK(napi_set_named_property(env, o, "segments", sv));
    CHECK(napi_set_element(env, res, (uint32_t)i, o));
  }
fail:
  if (copies)
    for (uint32_t i = 0; i < count; i++) free(copies[i]);
  free(copies);
  free(t);
  return res;
}

/* The value under key and its type: 1 when present and not undefined, 0 when absent, -1 on error. */
static int get_present(napi_env env, napi_value obj, const char *key, napi_value *v, napi_valuetype *t) {
  bool has;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok) return -1;
  if (!has) return 0;
  if (napi_get_named_property(env, obj, key, v) != napi_ok || napi_typeof(env, *v, t) != napi_ok) return -1;
  return *t != napi_undefined;
}

static int get_flag(napi_env env, napi_value obj, const char *key, int *out) {
  napi_value v;
  napi_valuetype t;
  int p = get_present(env, obj, key, &v, &t);
  if (p <= 0) return p;
  if (t != napi_boolean) return -1;
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return -1;
  *out = b;
  return 0;
}

/* A whole number lo..hi under key, if there is one. */
static int get_count(napi_env env, napi_value obj, const char *key, int lo, int hi, int *out) {
  napi_value v;
  napi_valuetype t;
  int p = get_present(env, obj, key, &v, &t);
  if (p <= 0) return p;
  double d;
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d != (double)(int)d || d < lo || d > hi) return -1;
  *out = (int)d;
  return 0;
}

int offload_parse_option(napi_env env, napi_value options, struct dp_offload *out) {
  /* default: everything the kernel accepts; inlineReplies is opt-in */
  *out = (struct dp_offload){1, 1, 1, 1, 1, 1, 1, 0, DP_DEFAULT_SPIN_US, DP_DEFAULT_REPLY_QUEUE};
  bool has;
  napi_value v;
  napi_valuetype t;
  if (napi_has_named_property(env, options, "offload", &has) != napi_ok) return -1;
  if (!has) return 0;
  if (napi_get_named_property(env, options, "offload", &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) return 0;
  if (t == napi_boolean) {
    bool b;
    if (napi_get_value_bool(env, v, &b) != napi_ok) return -1;
    if (!b) *out = (struct dp_offload){0};
    return 0;
  }
  if (t != napi_object) return -1;
  if (get_flag(env, v, "csum", &out->csum) < 0 || get_flag(env, v, "tso", &out->tso) < 0 ||
      get_flag(env, v, "uso", &out->uso) < 0 || get_flag(env, v, "gso", &out->gso) < 0 ||
      get_flag(env, v, "gro", &out->gro) < 0 || get_flag(env, v, "coalesce", &out->coalesce) < 0 ||
      get_flag(env, v, "inlineReplies", &out->inline_replies) < 0 || get_count(env, v, "spinUs", 0, 1000, &out->spin_us) < 0 ||
      get_flag(env, v, "replyQueue", &out->reply_queue) < 0)
    return -1;
  return 0;
}

napi_value offload_state_value(napi_env env, const struct dp_offload *want, const struct dp_offload_state *s) {
  napi_value o = NULL, v;
  struct { const char *name; int val; } f[] = {
      {"vnetHeader", s->vnet_len > 0}, {"csum", s->csum}, {"tso", s->tso}, {"uso", s->uso}, {"gso", s->gso},
      {"gro", s->gro}, {"coalesceTcp", s->coalesce_tcp}, {"coalesceUdp", s->coalesce_udp}, {"enabled", want->enabled},
      {"reuseportInnerFlow", s->reuseport_inner}, {"inlineReplies", s->inline_replies}, {"replyQueue", s->reply_queue},
  };
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
    if (napi_get_boolean(env, f[i].val != 0, &v) != napi_ok || napi_set_named_property(env, o, f[i].name, v) != napi_ok) return NULL;
  if (napi_create_int32(env, s->spin_us, &v) != napi_ok || napi_set_named_property(env, o, "spinUs", v) != napi_ok) return NULL;
  return o;
}

static napi_value js_micro_bench(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res = NULL, v;
  char name[32];
  int64_t iterations;
  size_t nl;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &nl) != napi_ok ||
      napi_get_value_int64(env, argv[1], &iterations) != napi_ok || iterations < 1) {
    napi_throw_type_error(env, "ERR_TULLE_ARG", "microBench(name: string, iterations: number >= 1)");
    return NULL;
  }
  double per_unit;
  const char *unit;
  double ns = micro_bench(name, (long)iterations, &per_unit, &unit);
  if (ns < 0) {
    napi_throw_range_error(env, "ERR_TULLE_ARG", "unknown micro-benchmark");
    return NULL;
  }
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_double(env, ns, &v));
  CHECK(napi_set_named_property(env, res, "nsPerOp", v));
  CHECK(napi_create_double(env, per_unit, &v));
  CHECK(napi_set_named_property(env, res, "nsPerUnit", v));
  CHECK(napi_create_string_utf8(env, unit, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, res, "unit", v));
fail:
  return res;
}

int offload_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"microBench", NULL, js_micro_bench, NULL, NULL, NULL, napi_default, NULL},
      {"offloadSplit", NULL, js_split, NULL, NULL, NULL, napi_default, NULL},
      {"offloadCoalesce", NULL, js_coalesce, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok ? 0 : -1;
}
