/**
 * READY=1 reaches a real unix datagram socket (a python3 listener, as systemd listens), at a
 * path and in the abstract namespace; no NOTIFY_SOCKET is no-op; a dead socket is an error.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sdNotify } from '../../src/node/sd-notify.js';

const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = sys.argv[1]
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print('bound', flush=True)
s.settimeout(20)
msg, anc, flags, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
pid = None
for level, typ, data in anc:
    if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
        pid = int.from_bytes(data[0:4], 'little')
print(msg.decode(), pid, flush=True)
`;

function listen(addr: string): Promise<{ received: Promise<string> }> {
  const p = spawn('timeout', ['30', 'python3', '-c', LISTENER, addr], { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => void p.kill());
  let out = '';
  return new Promise((resolve, reject) => {
    p.stderr.on('data', (c: Buffer) => reject(new Error(c.toString())));
    const received = new Promise<string>((res) => p.on('exit', () => res(out.split('\n')[1] ?? '')));
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.startsWith('bound\n')) resolve({ received });
    });
  });
}

describe('sd_notify', () => {
  it('sends READY=1 from this process to a socket path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tulle-notify-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const sock = path.join(dir, 'notify');
    const l = await listen(sock);
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: sock })).toEqual({ sent: true, socket: sock });
    // the kernel's credentials carry our own PID: what systemd checks under NotifyAccess=main
    expect(await l.received).toBe(`READY=1 ${process.pid}`);
  });

  it('sends to an abstract socket (@name)', async () => {
    const name = `@tulle-test-notify-${process.pid}-${Date.now()}`;
    const l = await listen(name);
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: name }).sent).toBe(true);
    expect(await l.received).toBe(`READY=1 ${process.pid}`);
  });

  it('does nothing without NOTIFY_SOCKET; says why when the socket is not there', () => {
    expect(sdNotify('READY=1', {})).toEqual({ sent: false, socket: undefined });
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: '/nonexistent/notify' })).toEqual({ sent: false, socket: '/nonexistent/notify', error: 'ENOENT' });
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: `/${'x'.repeat(200)}` })).toMatchObject({ sent: false, error: 'EINVAL' });
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: 'relative' })).toMatchObject({ sent: false, error: 'EINVAL' });
  });
});
