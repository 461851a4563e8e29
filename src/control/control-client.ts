/**
 * `tulle status`'s end of the control socket: one request, one response, with a deadline.
 * Every way it can fail is a TulleError whose message says what to do.
 */
import net from 'node:net';
import { TulleError } from '../util/errors.js';
import { checkResponse, encodeFrame, FrameReader, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, type Op } from './protocol.js';

export const DEFAULT_TIMEOUT_MS = 10_000;

export function requestControl(file: string, op: Op, o: { timeoutMs?: number } = {}): Promise<unknown> {
  const id = 1;
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    const reader = new FrameReader(MAX_RESPONSE_BYTES);
    let settled = false;
    const finish = (e: Error | undefined, v?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      sock.destroy();
      if (e) reject(e);
      else resolve(v);
    };
    const t = setTimeout(
      () => finish(new TulleError('ERR_TULLE_CONTROL_TIMEOUT', `the daemon did not answer on ${file} within ${(o.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s`)),
      o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    );
    sock.once('connect', () => sock.write(encodeFrame({ v: PROTOCOL_VERSION, id, op })));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(connectError(file, e)));
    sock.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.kind === 'error') return finish(new TulleError('ERR_TULLE_CONTROL_PROTOCOL', `bad answer from the daemon: ${f.message}`));
        let r;
        try {
          r = checkResponse(f.message, id);
        } catch (e) {
          return finish(new TulleError('ERR_TULLE_CONTROL_PROTOCOL', (e as Error).message));
        }
        if (!r.ok) return finish(new TulleError(r.error.code, `the daemon refused the request: ${r.error.message}`));
        return finish(undefined, r.result);
      }
    });
    sock.once('close', () =>
      finish(new TulleError('ERR_TULLE_CONTROL_GONE', `the daemon closed ${file} before answering (did it exit or stop?)`)),
    );
  });
}

function connectError(file: string, e: NodeJS.ErrnoException): TulleError {
  switch (e.code) {
    case 'ENOENT':
      return new TulleError('ERR_TULLE_NO_DAEMON', `no tulle daemon is running: there is no control socket at ${file} (is \`tulle run\` running with this --state-dir?)`, { cause: e });
    case 'ECONNREFUSED':
      return new TulleError('ERR_TULLE_NO_DAEMON', `no tulle daemon is running: ${file} is left over from a daemon that has exited`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new TulleError('ERR_TULLE_NOT_ROOT', `permission denied on ${file}: the control socket is for root only; run \`tulle status\` as root (sudo)`, { cause: e });
    default:
      return new TulleError('ERR_TULLE_CONTROL', `cannot talk to the daemon on ${file}: ${e.message}`, { cause: e });
  }
}
