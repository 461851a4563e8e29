/**
 * Tells systemd we are ready, as flanneld does (go-systemd's SdNotify "READY=1"), so a
 * `Type=notify` unit written for flanneld works unchanged. The datagram goes out from this
 * process through the addon (native/src/sd-notify.c): Node has no unix datagram sockets, and a
 * `systemd-notify` child would send from another PID, which systemd ignores under
 * NotifyAccess=main. No $NOTIFY_SOCKET (not under systemd): nothing to do.
 */
import { loadAddon } from '../dataplane/native.js';
import { constants } from 'node:os';

export type NotifyResult = { sent: true; socket: string } | { sent: false; socket: string | undefined; error?: string };

export function sdNotify(message: string, env: NodeJS.ProcessEnv = process.env, send = (p: string, m: string) => loadAddon().sdNotify(p, m)): NotifyResult {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return { sent: false, socket: undefined };
  const rc = send(socket, message);
  if (rc === 0) return { sent: true, socket };
  const name = Object.entries(constants.errno).find(([, v]) => v === -rc)?.[0] ?? `errno ${-rc}`;
  return { sent: false, socket, error: name };
}
