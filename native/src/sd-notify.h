/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (see sd-notify.c). */
#ifndef TULLE_SD_NOTIFY_H
#define TULLE_SD_NOTIFY_H
#include <node_api.h>

/* Adds sdNotify(socketPath, message) → 0 or -errno to the addon's exports. */
int sd_notify_register(napi_env env, napi_value exports);

#endif
