/**
 * Talks to bench/control-plane-driver.ts (built: dist/bench/control-plane-driver.js) running in
 * etcd's namespace: one JSON command per line, one JSON answer per line, each with a deadline.
 * The bed's teardown stops the driver by PID.
 */
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Bed } from './bed.js';
import { REPO_ROOT } from './daemons.js';

export type LeaseDriver = (cmd: Record<string, unknown>, timeoutMs?: number) => Promise<any>;

export function startLeaseDriver(bed: Bed, ns: string, endpoint: string): LeaseDriver {
  const p = bed.spawn(ns, process.execPath, [path.join(REPO_ROOT, 'dist/bench/control-plane-driver.js'), endpoint], { stdin: 'pipe' });
  const replies: Array<(v: any) => void> = [];
  createInterface({ input: p.stdout! }).on('line', (l) => replies.shift()?.(JSON.parse(l)));
  let err = '';
  p.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
  return (cmd, timeoutMs = 120_000) =>
    new Promise((resolve, reject) => {
      if (p.exitCode !== null) return reject(new Error(`lease driver exited (${p.exitCode}): ${err}`));
      const t = setTimeout(() => reject(new Error(`lease driver: no answer to ${JSON.stringify(cmd)} in ${timeoutMs} ms ${err}`)), timeoutMs);
      replies.push((v) => {
        clearTimeout(t);
        if (v.ok) resolve(v);
        else reject(new Error(`lease driver: ${v.error}`));
      });
      p.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
}
