/**
 * Serves WireGuard's userspace API (uapi.ts) for the TUN of an encrypted-mode node at
 * /var/run/wireguard/<tun>.sock (0600, root only), so `wg show <tun>` and `wg show <tun> dump`
 * work on a tulle node as on a wireguard-go one. `get` is answered from the running node; `set`
 * is refused (EPERM) with a log line: peers come from the leases in etcd.
 *
 * The directory is shared by every network namespace: if another live process holds the socket
 * (wireguard-go, or another tulle with the same TUN name in another namespace), tulle logs it and
 * serves none rather than take it over.
 */
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { closeUnix, listenUnix } from '../control/unix-socket.js';
import { ERRNO_EPERM, formatErrno, formatGet, UapiReader, type UapiDevice } from './uapi.js';

export const UAPI_SOCKET_DIR = '/var/run/wireguard';
const IDLE_MS = 30_000;
const MAX_CONNECTIONS = 16;

export interface UapiServer {
  readonly path: string;
  close(): Promise<void>;
}

export function uapiSocketPath(iface: string, dir = UAPI_SOCKET_DIR): string {
  return path.join(dir, `${iface}.sock`);
}

export async function serveUapi(file: string, device: () => UapiDevice | undefined, log: Logger): Promise<UapiServer> {
  const sockets = new Set<net.Socket>();
  const onConnection = (sock: net.Socket) => {
    if (sockets.size >= MAX_CONNECTIONS) return void sock.destroy();
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    const reader = new UapiReader();
    sock.on('data', (chunk: Buffer) => {
      for (const a of reader.push(chunk)) {
        if (a.kind === 'close') {
          log.warn({ reason: a.reason }, 'wireguard uapi: invalid request; closing the connection');
          sock.destroy();
          return;
        }
        if (a.kind === 'get') {
          const d = device();
          sock.write(d ? formatGet(d) : formatErrno(-5 /* EIO: no device yet */));
        } else if (a.kind === 'set') {
          // `wg set` is an operator's command, not a stream: one line each
          log.warn({ keys: a.keys }, 'wireguard uapi: set refused: peers come from the leases in etcd (change the leases, not the device)');
          sock.write(formatErrno(ERRNO_EPERM));
        } else {
          log.warn({ reason: a.reason }, 'wireguard uapi: bad get');
          sock.write(formatErrno(a.errno));
        }
      }
    });
  };
  const { server, ino } = await listenUnix(file, onConnection, { inUseCode: 'ERR_TULLE_UAPI_IN_USE', dirMode: 0o755 });
  return { path: file, close: () => closeUnix(server, file, ino, sockets) };
}
