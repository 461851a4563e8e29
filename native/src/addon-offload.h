#ifndef TULLE_ADDON_OFFLOAD_H
#define TULLE_ADDON_OFFLOAD_H
#include <node_api.h>
#include "offload.h"
/* Registers the offload test and micro-benchmark exports (addon-offload.c, micro-bench.c). */
int offload_register(napi_env env, napi_value exports);
/* options.offload: undefined/true = all, false = none, or { csum, tso, uso, gso, gro, coalesce }
 * with each flag defaulting to true. Returns -1 on a wrong type (a JS exception may be pending). */
int offload_parse_option(napi_env env, napi_value options, struct dp_offload *out);
/* { enabled, vnetHeader, csum, tso, uso, gso, gro, coalesceTcp, coalesceUdp, reuseportInnerFlow }: what took. */
napi_value offload_state_value(napi_env env, const struct dp_offload *want, const struct dp_offload_state *s);
#endif
