/**
 * A Unix stream socket that only root reaches (mode 0600), for the control socket and the
 * WireGuard UAPI socket. A file left by a process that died is replaced; one that still answers
 * is someone else's and an error. On close our file is removed, and only ours (by inode).
 */
import net from 'node:net';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { TulleError } from '../util/errors.js';

/** Connects to `file`: true if something answers (a live server), false if refused or absent. */
export function socketAnswers(file: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    const done = (v: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(true), timeoutMs); // accepted but silent: someone holds it
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Listens on a Unix socket at `file` (0600), replacing a stale one; returns the server and the file's inode. */
export async function listenUnix(file: string, onConnection: (s: net.Socket) => void, o: { inUseCode: string; dirMode: number }): Promise<{ server: net.Server; ino: number }> {
  mkdirSync(path.dirname(file), { recursive: true, mode: o.dirMode });
  let exists = true;
  try {
    statSync(file);
  } catch {
    exists = false;
  }
  if (exists) {
    if (await socketAnswers(file)) throw new TulleError(o.inUseCode, `${file} is in use by another running process`);
    unlinkSync(file);
  }
  // bound under a temporary name, made 0600, then renamed into place: nobody can connect before
  // the mode is set, and libuv's unlink on close hits the temporary name, never a file at
  // `file` that someone put there after us (closeUnix removes ours, checked by inode)
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(tmp, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
    return { server, ino: statSync(file).ino };
  } catch (e) {
    server.close();
    throw e;
  }
}

/** Closes the server and removes `file` if it is still the socket we made. */
export async function closeUnix(server: net.Server, file: string, ino: number, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  try {
    if (statSync(file).ino === ino) unlinkSync(file);
  } catch {
    /* already gone */
  }
  await new Promise<void>((r) => server.close(() => r()));
}

