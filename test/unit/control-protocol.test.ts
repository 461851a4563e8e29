/**
 * The control socket's protocol (src/control/protocol.ts) and its two ends over real Unix
 * sockets in a temp dir: requests answered in order, bad requests (not CBOR, oversize frames,
 * unknown version or op) answered with a stable code, a daemon that goes away, no daemon, a
 * stale socket file, one left by a live daemon.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encode } from 'cbor-x';
import pino from 'pino';
import { checkRequest, encodeFrame, ERR, FrameReader, MAX_REQUEST_BYTES, PROTOCOL_VERSION } from '../../src/control/protocol.js';
import { serveControl, type ControlServer } from '../../src/control/control-server.js';
import { requestControl } from '../../src/control/control-client.js';

const log = pino({ level: 'silent' });

/** A socket file whose server died without removing it (a process killed while listening). */
function leaveStaleSocket(file: string): void {
  try {
    execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
  } catch {
    /* killed, as intended */
  }
}
let dir: string;
let servers: ControlServer[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tulle-ctl-'));
  servers = [];
});
afterEach(async () => {
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(handlers: Partial<Record<'status' | 'ping', () => unknown>> = {}, file = path.join(dir, 'state', 'tulle.sock')) {
  const s = await serveControl(file, { status: () => ({ hello: 'world' }), ping: () => 'pong', ...handlers }, log);
  servers.push(s);
  return s;
}

/** Writes raw bytes, collects frames until the server closes (or `frames` arrive). */
function raw(file: string, bytes: Buffer, frames = Infinity): Promise<{ messages: unknown[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    const reader = new FrameReader(1 << 20);
    const messages: unknown[] = [];
    const t = setTimeout(() => {
      sock.destroy();
      resolve({ messages, closed: false });
    }, 5000);
    sock.once('connect', () => sock.write(bytes));
    sock.on('error', reject);
    sock.on('data', (c: Buffer) => {
      for (const f of reader.push(c)) if (f.kind === 'message') messages.push(f.message);
      if (messages.length >= frames) {
        clearTimeout(t);
        sock.destroy();
        resolve({ messages, closed: false });
      }
    });
    sock.on('close', () => {
      clearTimeout(t);
      resolve({ messages, closed: true });
    });
  });
}

describe('frames', () => {
  it('reassembles frames split anywhere and several in one chunk', () => {
    const a = encodeFrame({ v: 1, id: 1, op: 'status' });
    const b = encodeFrame({ v: 1, id: 2, op: 'ping' });
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const r = new FrameReader(MAX_REQUEST_BYTES);
      const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))];
      expect(got).toEqual([
        { kind: 'message', message: { v: 1, id: 1, op: 'status' } },
        { kind: 'message', message: { v: 1, id: 2, op: 'ping' } },
      ]);
      expect(r.pending).toBe(0);
    }
  });

  it('reads a large frame arriving in many chunks, and the frame behind it in the same last chunk', () => {
    const big = { v: 1, id: 9, ok: true, result: { peers: Array.from({ length: 20_000 }, (_, i) => ({ id: i, endpoint: `198.18.${i >> 8}.${i & 255}:8285` })) } };
    const all = Buffer.concat([encodeFrame(big), encodeFrame({ v: 1, id: 10, op: 'ping' })]);
    const r = new FrameReader(16 << 20);
    const got = [];
    for (let at = 0; at < all.length; at += 65536) got.push(...r.push(all.subarray(at, at + 65536)));
    expect(got).toEqual([{ kind: 'message', message: big }, { kind: 'message', message: { v: 1, id: 10, op: 'ping' } }]);
    expect(r.pending).toBe(0);
  });

  it('refuses an oversize frame from its header alone, and then reads nothing more', () => {
    const r = new FrameReader(100);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(101);
    expect(r.push(h)).toEqual([{ kind: 'error', code: ERR.tooLarge, message: expect.stringMatching(/101 bytes.*100/) }]);
    expect(r.push(encodeFrame({ v: 1, id: 1, op: 'ping' }))).toEqual([]);
    expect(r.pending).toBe(4); // the body was never buffered
  });

  it('says a body that is not CBOR is one, and an empty frame too', () => {
    const bad = Buffer.from([0, 0, 0, 2, 0xff, 0xff]);
    expect(new FrameReader(100).push(bad)[0]).toMatchObject({ kind: 'error', code: ERR.badFrame });
    expect(new FrameReader(100).push(Buffer.alloc(4))[0]).toMatchObject({ kind: 'error', code: ERR.badFrame });
  });

  it('checks version and op, echoing the id', () => {
    expect(checkRequest({ v: 1, id: 7, op: 'status' })).toEqual({ ok: true, request: { v: 1, id: 7, op: 'status' } });
    expect(checkRequest({ v: 2, id: 7, op: 'status' })).toMatchObject({ ok: false, id: 7, error: { code: ERR.version } });
    expect(checkRequest({ v: 1, id: 8, op: 'set' })).toMatchObject({ ok: false, id: 8, error: { code: ERR.unknownOp, message: expect.stringMatching(/"set"/) } });
    expect(checkRequest([1, 2])).toMatchObject({ ok: false, id: 0, error: { code: ERR.version } });
    expect(checkRequest({ v: 1, id: -1, op: 'ping' })).toEqual({ ok: true, request: { v: 1, id: 0, op: 'ping' } });
  });
});

describe('control socket', () => {
  it('answers status, makes the socket 0600 and removes it on close', async () => {
    const s = await serve();
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
    expect(statSync(s.path).isSocket()).toBe(true);
    expect(await requestControl(s.path, 'status')).toEqual({ hello: 'world' });
    expect(await requestControl(s.path, 'ping')).toBe('pong');
    await s.close();
    servers = [];
    expect(existsSync(s.path)).toBe(false);
  });

  it('answers several requests on one connection in order, even when the first is slow', async () => {
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const s = await serve({ status: async () => (await slow, 'slow'), ping: () => 'fast' });
    const got = raw(s.path, Buffer.concat([encodeFrame({ v: 1, id: 1, op: 'status' }), encodeFrame({ v: 1, id: 2, op: 'ping' })]), 2);
    setTimeout(release, 100);
    expect((await got).messages).toEqual([
      { v: 1, id: 1, ok: true, result: 'slow' },
      { v: 1, id: 2, ok: true, result: 'fast' },
    ]);
  });

  it('answers malformed CBOR with ERR_TULLE_CONTROL_BAD_FRAME and closes', async () => {
    const s = await serve();
    const r = await raw(s.path, Buffer.from([0, 0, 0, 3, 0xff, 0xfe, 0xfd]));
    expect(r.closed).toBe(true);
    expect(r.messages).toEqual([{ v: PROTOCOL_VERSION, id: 0, ok: false, error: { code: ERR.badFrame, message: expect.any(String) } }]);
    expect(await requestControl(s.path, 'ping')).toBe('pong'); // the server itself is fine
  });

  it('answers an oversize frame with ERR_TULLE_CONTROL_TOO_LARGE and closes without reading it', async () => {
    const s = await serve();
    const h = Buffer.alloc(4);
    h.writeUInt32BE(0x7fffffff);
    const r = await raw(s.path, Buffer.concat([h, Buffer.alloc(1000, 0x41)]));
    expect(r.closed).toBe(true);
    expect(r.messages).toEqual([{ v: 1, id: 0, ok: false, error: { code: ERR.tooLarge, message: expect.stringMatching(/2147483647/) } }]);
  });

  it('answers an unknown version or op with an error and keeps the connection', async () => {
    const s = await serve();
    const frame = (m: unknown) => {
      const b = encode(m) as Buffer;
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length);
      return Buffer.concat([h, b]);
    };
    const r = await raw(s.path, Buffer.concat([frame({ v: 9, id: 3, op: 'status' }), frame({ v: 1, id: 4, op: 'set' }), frame('hello'), frame({ v: 1, id: 5, op: 'ping' })]), 4);
    expect(r.messages).toEqual([
      { v: 1, id: 3, ok: false, error: { code: ERR.version, message: expect.stringMatching(/version 9/) } },
      { v: 1, id: 4, ok: false, error: { code: ERR.unknownOp, message: expect.any(String) } },
      { v: 1, id: 0, ok: false, error: { code: ERR.version, message: expect.any(String) } },
      { v: 1, id: 5, ok: true, result: 'pong' },
    ]);
  });

  it('a client sees a refused request as an error with the daemon’s code', async () => {
    const s = await serve({ status: () => { throw new Error('boom'); } });
    await expect(requestControl(s.path, 'status')).rejects.toMatchObject({ code: ERR.internal, message: expect.stringMatching(/boom/) });
  });

  it('a daemon that goes away mid-request: ERR_TULLE_CONTROL_GONE, and then no daemon', async () => {
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const s = await serve({ status: () => (entered(), new Promise(() => undefined)) });
    const pending = requestControl(s.path, 'status');
    await inside;
    await s.close();
    servers = [];
    await expect(pending).rejects.toMatchObject({ code: 'ERR_TULLE_CONTROL_GONE' });
    await expect(requestControl(s.path, 'status')).rejects.toMatchObject({ code: 'ERR_TULLE_NO_DAEMON', message: expect.stringMatching(/no tulle daemon is running/) });
  });

  it('a silent daemon: ERR_TULLE_CONTROL_TIMEOUT', async () => {
    const file = path.join(dir, 'silent.sock');
    const srv = net.createServer(() => undefined);
    await new Promise<void>((r) => srv.listen(file, r));
    try {
      await expect(requestControl(file, 'status', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'ERR_TULLE_CONTROL_TIMEOUT' });
    } finally {
      srv.close();
    }
  });

  it('no daemon, a stale socket file, a garbage answer', async () => {
    await expect(requestControl(path.join(dir, 'none.sock'), 'status')).rejects.toMatchObject({ code: 'ERR_TULLE_NO_DAEMON', message: expect.stringMatching(/no control socket/) });
    // a socket file whose server died without removing it
    const stale = path.join(dir, 'stale.sock');
    leaveStaleSocket(stale);
    expect(statSync(stale).isSocket()).toBe(true);
    await expect(requestControl(stale, 'status')).rejects.toMatchObject({ code: 'ERR_TULLE_NO_DAEMON', message: expect.stringMatching(/left over/) });
    // a server that answers garbage
    const junk = path.join(dir, 'junk.sock');
    const j = net.createServer((c) => c.end(Buffer.from([0, 0, 0, 1, 0xff])));
    await new Promise<void>((r) => j.listen(junk, r));
    try {
      await expect(requestControl(junk, 'status')).rejects.toMatchObject({ code: 'ERR_TULLE_CONTROL_PROTOCOL' });
    } finally {
      j.close();
    }
  });

  it('replaces a stale socket file, refuses one a live daemon holds, and leaves a replaced file alone', async () => {
    const file = path.join(dir, 'state', 'tulle.sock');
    mkdirSync(path.dirname(file));
    leaveStaleSocket(file);
    expect(statSync(file).isSocket()).toBe(true);
    const s = await serve({}, file);
    expect(await requestControl(file, 'ping')).toBe('pong');
    await expect(serveControl(file, { status: () => 1, ping: () => 1 }, log)).rejects.toMatchObject({ code: 'ERR_TULLE_CONTROL_IN_USE' });
    // someone replaced the file: close() does not remove theirs
    unlinkSync(file);
    writeFileSync(file, 'not ours');
    await s.close();
    servers = [];
    expect(existsSync(file)).toBe(true);
  });
});
