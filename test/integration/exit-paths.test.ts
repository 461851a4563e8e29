/**
 * The exits of a stop that does not finish (issue 15, README "Exit codes"): a second signal while
 * stopping, and a stop that outlasts its 30 s deadline, each end with a fatal line with a code and
 * status 1 — never a silent exit, never a hang. The stop is held by the host: `iptables-save`
 * (which the removal of the forward rules runs; `--iptables-forward-rules` is on by default) is,
 * on this node's PATH, a wrapper that hangs once the test has created a marker file.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, until, type Cluster, type Daemon } from './cluster.js';

let c: Cluster;
let dir: string;
const pidFiles: string[] = [];

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'exit' });
  dir = mkdtempSync(path.join(tmpdir(), 'tulle-exit-'));
  writeFileSync(
    path.join(dir, 'iptables-save'),
    '#!/bin/sh\n# hangs (as one process, its PID written down) once the marker exists\nif [ -e "$HANG_MARKER" ]; then echo $$ > "$HANG_MARKER.pid"; exec sleep 300; fi\nexec /usr/sbin/iptables-save "$@"\n',
  );
  chmodSync(path.join(dir, 'iptables-save'), 0o755);
});

afterAll(async () => {
  // the hung iptables-save processes are ours: stop them by PID
  for (const f of pidFiles) {
    if (!existsSync(f)) continue;
    try {
      process.kill(Number(readFileSync(f, 'utf8').trim()), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await c?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** a node with default flags whose stop will hang in iptables-save once `hang()` is called */
async function hangingNode(i: number): Promise<{ d: Daemon; hang: () => void; hung: () => boolean }> {
  const marker = path.join(dir, `hang-${i}`);
  pidFiles.push(`${marker}.pid`);
  const d = c.startDaemon(c.bed.nodes[i]!, [], { ...process.env, PATH: `${dir}:${process.env.PATH}`, HANG_MARKER: marker });
  await d.readySubnet();
  return { d, hang: () => writeFileSync(marker, ''), hung: () => existsSync(`${marker}.pid`) };
}

describe('a stop that does not finish still ends with a line that says why', () => {
  it('a second signal while stopping: fatal ERR_TULLE_SIGNAL, exit 1', async () => {
    const { d, hang, hung } = await hangingNode(0);
    hang();
    d.proc.kill('SIGTERM');
    await until('the stop to hang in iptables-save', hung, 20_000);
    expect(d.proc.exitCode).toBeNull();
    d.proc.kill('SIGINT');
    expect(await d.exit).toBe(1);
    expect(d.logs.find((l) => l.level === 60)).toMatchObject({ code: 'ERR_TULLE_SIGNAL', exitCode: 1, msg: expect.stringContaining('SIGINT while stopping after SIGTERM') });
  });

  it('a stop that outlasts its 30 s deadline: fatal ERR_TULLE_STOP_TIMEOUT, exit 1', async () => {
    const { d, hang, hung } = await hangingNode(1);
    hang();
    const t0 = Date.now();
    d.proc.kill('SIGTERM');
    await until('the stop to hang in iptables-save', hung, 20_000);
    expect(await d.exit).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(29_000);
    expect(d.logs.find((l) => l.level === 60)).toMatchObject({ code: 'ERR_TULLE_STOP_TIMEOUT', exitCode: 1, msg: expect.stringContaining('did not stop within 30 s of SIGTERM') });
  }, 90_000);
});
