/**
 * The daemon's end of the control socket (protocol.ts): a Unix stream socket, mode 0600 in a
 * 0700 directory, so only root talks to it. Read-only ops; each connection is bounded (request
 * size, idle time) and the number of connections is capped.
 *
 * A socket file left by a daemon that died is replaced; one that still answers belongs to a
 * running daemon and is an error (two daemons must not share a state dir). On close the file
 * is removed only if it is still the one we created.
 */
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { TulleError } from '../util/errors.js';
import { closeUnix, listenUnix } from './unix-socket.js';
import { checkRequest, encodeFrame, ERR, FrameReader, MAX_REQUEST_BYTES, PROTOCOL_VERSION, type Op, type Response } from './protocol.js';

export const CONTROL_SOCKET_NAME = 'tulle.sock';
const IDLE_MS = 30_000;
const MAX_CONNECTIONS = 32;

export type ControlHandlers = Record<Op, () => unknown>;

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, CONTROL_SOCKET_NAME);
}

export async function serveControl(file: string, handlers: ControlHandlers, log: Logger): Promise<ControlServer> {
  const sockets = new Set<net.Socket>();
  const onConnection = (sock: net.Socket) => {
    if (sockets.size >= MAX_CONNECTIONS) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    const reader = new FrameReader(MAX_REQUEST_BYTES);
    // responses go out in request order even when a handler is async
    let chain = Promise.resolve();
    const send = (r: Response) => {
      if (!sock.destroyed) sock.write(encodeFrame(r));
    };
    sock.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.kind === 'error') {
          log.warn({ code: f.code, err: f.message }, 'control socket: bad request; closing the connection');
          chain = chain.then(() => {
            send({ v: PROTOCOL_VERSION, id: 0, ok: false, error: { code: f.code, message: f.message } });
            sock.end();
          });
          return;
        }
        const c = checkRequest(f.message);
        chain = chain.then(async () => {
          if (!c.ok) return send({ v: PROTOCOL_VERSION, id: c.id, ok: false, error: c.error });
          try {
            const result = await handlers[c.request.op]();
            send({ v: PROTOCOL_VERSION, id: c.request.id, ok: true, result });
          } catch (e) {
            log.error({ err: (e as Error).message, op: c.request.op }, 'control socket: request failed');
            send({ v: PROTOCOL_VERSION, id: c.request.id, ok: false, error: { code: ERR.internal, message: (e as Error).message } });
          }
        });
      }
    });
  };
  const { server, ino } = await listenUnix(file, onConnection, { inUseCode: 'ERR_TULLE_CONTROL_IN_USE', dirMode: 0o700 }).catch((e: Error & { code?: string }) => {
    if (e instanceof TulleError) throw new TulleError(e.code, `control socket: ${e.message} (another tulle daemon with the same --state-dir?)`);
    throw new TulleError('ERR_TULLE_CONTROL', `cannot create the control socket ${file}: ${e.message}`, { cause: e });
  });
  return { path: file, close: () => closeUnix(server, file, ino, sockets) };
}
