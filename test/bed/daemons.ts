/**
 * Real `tulle run` daemons (bin/tulle) in bed namespaces against any set of etcd endpoints — one
 * member or a cluster — for fault tests, the impairment matrix and the soak. Each node keeps its
 * state dir and subnet.env (temp dirs) across restarts of its daemon. Daemons are spawned
 * through the bed, so its teardown stops them by PID; `ip netns exec` execs, so the child's PID
 * is the daemon's own (for /proc sampling).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopProcess, type Bed, type BedNode } from './bed.js';
import { healthGet, HEALTH_PORT, spawnDaemon, type Daemon } from './daemon-process.js';

export { HEALTH_PORT, until, tunAddress, type LogLine, type Daemon } from './daemon-process.js';

/** repo root, whether this runs from test/bed (vitest) or dist/test/bed (scripts) */
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');

export interface Daemons {
  /** every daemon started, restarted ones included */
  all: Daemon[];
  /** starts `tulle run` on a node with --etcd-endpoints, --iface/--public-ip, its state dir and subnet file, plus `extra` */
  start(node: BedNode, extra?: string[]): Daemon;
  health(d: Daemon): Promise<Record<string, any>>;
  /** /metrics parsed into series → value, keys as printed: name{label="v",...} */
  metrics(d: Daemon): Promise<Map<string, number>>;
  stopAll(): Promise<void>;
  /** stops the daemons and removes the node dirs */
  destroy(): Promise<void>;
}

/** Keeps at most `max` log lines per daemon (a soak must not grow the harness). */
export function startDaemons(bed: Bed, endpoints: string[], o: { maxLogLines?: number } = {}): Daemons {
  const nodeDirs = new Map<string, string>();
  const all: Daemon[] = [];
  const self: Daemons = {
    all,
    start(node, extra = []) {
      let dir = nodeDirs.get(node.ns);
      if (!dir) {
        dir = mkdtempSync(path.join(tmpdir(), 'tulle-node-'));
        nodeDirs.set(node.ns, dir);
      }
      const args = [
        path.join(REPO_ROOT, 'bin/tulle'), 'run',
        `--etcd-endpoints=${endpoints.join(',')}`, '--iface=eth0', `--public-ip=${node.underlayIp}`,
        `--state-dir=${dir}/state`, `--subnet-file=${dir}/subnet.env`,
        '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTH_PORT}`, ...extra,
      ];
      const d = spawnDaemon(bed, node, process.execPath, args, { dir, maxLogLines: o.maxLogLines });
      all.push(d);
      return d;
    },
    async health(d) {
      return JSON.parse(await healthGet(bed, d, '/healthz')) as Record<string, any>;
    },
    async metrics(d) {
      const out = new Map<string, number>();
      for (const line of (await healthGet(bed, d, '/metrics')).split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (m) out.set(m[1]! + (m[2] ?? ''), Number(m[3]));
      }
      return out;
    },
    async stopAll() {
      await Promise.all(all.map((d) => stopProcess(d.proc, 5000)));
    },
    async destroy() {
      await self.stopAll();
      for (const dir of nodeDirs.values()) rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}
