/**
 * Real `tulle run` daemons (bin/tulle) in bed namespaces against any set of etcd endpoints — one
 * member or a cluster — for fault tests, the impairment matrix and the soak. Each node keeps its
 * state dir and subnet.env (temp dirs) across restarts of its daemon. Daemons are spawned
 * through the bed, so its teardown stops them by PID; `ip netns exec` execs, so the child's PID
 * is the daemon's own (for /proc sampling).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopProcess, type Bed, type BedNode } from './bed.js';

export const HEALTH_PORT = 8471;

/** repo root, whether this runs from test/bed (vitest) or dist/test/bed (scripts) */
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [k: string]: unknown;
}

export interface Daemon {
  node: BedNode;
  proc: ChildProcess;
  logs: LogLine[];
  stderr: string;
  dir: string;
  exit: Promise<number | null>;
  waitLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** waits for 'node ready' and returns the subnet, e.g. 10.244.3.0/24 */
  readySubnet(timeoutMs?: number): Promise<string>;
}

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
  const maxLog = o.maxLogLines ?? 100_000;
  const get = async (d: Daemon, urlPath: string) => {
    const script = `fetch('http://127.0.0.1:${HEALTH_PORT}${urlPath}').then(r=>r.text()).then(t=>process.stdout.write(t))`;
    return (await bed.exec(d.node.ns, process.execPath, ['-e', script], 15_000)).stdout;
  };
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
      const proc = bed.spawn(node.ns, process.execPath, args, { env: { ...process.env, NODE_ENV: 'test' } });
      const logs: LogLine[] = [];
      const waiters = new Set<() => void>();
      let buf = '';
      const d: Daemon = {
        node, proc, logs, stderr: '', dir,
        exit: new Promise((r) => proc.once('exit', (code) => r(code))),
        async readySubnet(timeoutMs) {
          return String((await d.waitLog((l) => l.msg === 'node ready', timeoutMs)).subnet);
        },
        waitLog(match, timeoutMs = 30_000) {
          return new Promise((resolve, reject) => {
            const check = () => {
              const hit = logs.find(match);
              if (hit) {
                waiters.delete(check);
                clearTimeout(t);
                resolve(hit);
              }
            };
            const t = setTimeout(() => {
              waiters.delete(check);
              reject(new Error(`no matching log line from ${node.ns} in ${timeoutMs} ms; last: ${logs.slice(-5).map((l) => l.msg).join(' | ')} ${d.stderr}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
      };
      proc.stdout!.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            logs.push(JSON.parse(line) as LogLine);
          } catch {
            logs.push({ level: 0, time: Date.now(), msg: line });
          }
          if (logs.length > maxLog) logs.splice(0, logs.length - maxLog);
        }
        for (const w of [...waiters]) w();
      });
      proc.stderr!.on('data', (c: Buffer) => (d.stderr = (d.stderr + c.toString()).slice(-4000)));
      all.push(d);
      return d;
    },
    async health(d) {
      return JSON.parse(await get(d, '/healthz')) as Record<string, any>;
    },
    async metrics(d) {
      const out = new Map<string, number>();
      for (const line of (await get(d, '/metrics')).split('\n')) {
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

/** The overlay address of a node: its subnet's network address (the TUN's /32). */
export function tunAddress(subnet: string): string {
  return subnet.split('/')[0]!;
}

/** Polls until fn returns a truthy value; throws with the last error at the deadline. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
