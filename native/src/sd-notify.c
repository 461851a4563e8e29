/*
 * sd_notify(3) for a Type=notify unit, without libsystemd: send the message ("READY=1") as one
 * datagram on an AF_UNIX SOCK_DGRAM socket to the path in $NOTIFY_SOCKET. A path starting with
 * '@' is in the abstract namespace (leading NUL). Node has no unix datagram sockets, and a
 * helper process (systemd-notify) sends from another PID, which systemd drops under
 * NotifyAccess=main; this sends from the daemon's own PID, so the kernel's credentials match.
 *
 * Both strings come from the environment/JS: their lengths are bounded here, where they enter.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "sd-notify.h"

#define SD_NOTIFY_MAX_MESSAGE 4096

static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  static char msg[SD_NOTIFY_MAX_MESSAGE + 1];
  size_t path_len = 0, msg_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &msg_len) != napi_ok) {
    napi_throw_type_error(env, "ERR_TULLE_NAPI", "sdNotify(socketPath: string, message: string)");
    return NULL;
  }
  int rc = 0;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  /* a string that filled the buffer was truncated: refuse rather than send to another path */
  if (path_len < 2 || path_len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@') ||
      msg_len >= SD_NOTIFY_MAX_MESSAGE) {
    rc = -EINVAL;
  } else {
    memcpy(sa.sun_path, path, path_len);
    if (path[0] == '@') sa.sun_path[0] = '\0';
    socklen_t sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '@' ? 0 : 1));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = -errno;
    } else {
      ssize_t n = sendto(fd, msg, msg_len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sa_len);
      if (n < 0) rc = -errno;
      else if ((size_t)n != msg_len) rc = -EMSGSIZE;
      close(fd);
    }
  }
  if (napi_create_int32(env, rc, &out) != napi_ok) return NULL;
  return out;
}

int sd_notify_register(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "sdNotify", NAPI_AUTO_LENGTH, js_sd_notify, NULL, &fn) != napi_ok) return -1;
  if (napi_set_named_property(env, exports, "sdNotify", fn) != napi_ok) return -1;
  return 0;
}
