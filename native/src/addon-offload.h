#ifndef TULLE_ADDON_OFFLOAD_H
#define TULLE_ADDON_OFFLOAD_H
#include <node_api.h>
/* Registers the offload test and micro-benchmark exports (addon-offload.c, micro-bench.c). */
int offload_register(napi_env env, napi_value exports);
#endif
