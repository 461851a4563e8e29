/**
 * One `tulle run` process in a bed namespace, as the tests and benches see it: its JSON log lines
 * (parsed as they arrive), waits on them, readiness as a user sees it, and its exit. Both daemon
 * harnesses (test/integration/cluster.ts, one etcd; test/bed/daemons.ts, any endpoints) spawn
 * through this; they differ only in the command line.
 */
import { readFileSync } from 'node:fs';
import type { Bed, BedNode } from './bed.js';

export const HEALTH_PORT = 8471;

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [k: string]: unknown;
}

export interface Daemon {
  node: BedNode;
  proc: import('node:child_process').ChildProcess;
  logs: LogLine[];
  stderr: string;
  /** the node's dir: state dir and subnet.env, kept across restarts of its daemon */
  dir: string;
  exit: Promise<number | null>;
  /** first log line matching, waiting up to timeoutMs; rejects at once if the daemon exits first */
  waitLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /**
   * Readiness as a user with default flags sees it (no health port): the 'node ready' log line,
   * then subnet.env naming that subnet; returns the subnet, e.g. 10.244.3.0/24. Rejects at once
   * if the daemon exits first.
   */
  readySubnet(timeoutMs?: number): Promise<string>;
  /** routes in the data plane, from the last 'peers updated' log line (0 before any) */
  routeCount(): number;
  /** resolves after ms if the daemon is still running then; rejects as soon as it exits */
  survives(ms: number): Promise<void>;
}

/**
 * Spawns `cmd argv` (a `tulle run` command line, possibly wrapped) in the node's namespace
 * through the bed, so the bed's teardown stops it by PID. `dir` holds its subnet.env.
 * `maxLogLines` bounds the kept log (a soak must not grow the harness).
 */
export function spawnDaemon(
  bed: Bed,
  node: BedNode,
  cmd: string,
  argv: string[],
  o: { dir: string; env?: NodeJS.ProcessEnv; maxLogLines?: number },
): Daemon {
  const maxLog = o.maxLogLines ?? 100_000;
  const proc = bed.spawn(node.ns, cmd, argv, { env: { ...(o.env ?? process.env), NODE_ENV: 'test' } });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const last = () => `last: ${logs.slice(-5).map((l) => l.msg).join(' | ')} ${d.stderr}`;
  const exited = (what: string) =>
    exit.then((code) => {
      throw new Error(`${node.ns}: tulle run exited (${code}) ${what}; ${last()}`);
    });
  const d: Daemon = {
    node, proc, logs, stderr: '', dir: o.dir, exit,
    // generous: on the shared 2-core machine a daemon has taken 30 s just to load its modules
    async readySubnet(timeoutMs = 90_000) {
      const line = await Promise.race([d.waitLog((l) => l.msg === 'node ready', timeoutMs), exited('before it was ready')]);
      const subnet = String(line.subnet);
      // subnet.env is written before the line; it names the subnet's first address
      const env = readFileSync(`${d.dir}/subnet.env`, 'utf8');
      const [base, len] = subnet.split('/') as [string, string];
      const oct = base.split('.').map(Number);
      const want = `FLANNEL_SUBNET=${oct.slice(0, 3).join('.')}.${oct[3]! + 1}/${len}`;
      if (!env.split('\n').includes(want)) throw new Error(`${node.ns}: subnet.env lacks ${want}: ${env}`);
      return subnet;
    },
    routeCount() {
      for (let i = logs.length - 1; i >= 0; i--) if (logs[i]!.msg === 'peers updated') return Number(logs[i]!.routes);
      return 0;
    },
    survives(ms) {
      let t: NodeJS.Timeout | undefined;
      return Promise.race([exited(`within ${ms} ms`), new Promise<void>((r) => (t = setTimeout(r, ms)))]).finally(() => clearTimeout(t));
    },
    waitLog(match, timeoutMs = 60_000) {
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
          reject(new Error(`no matching log line from ${node.ns} in ${timeoutMs} ms; ${last()}`));
        }, timeoutMs);
        waiters.add(check);
        // a daemon that has exited will not print it
        void exit.then((code) => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          clearTimeout(t);
          reject(new Error(`${node.ns}: tulle run exited (${code}) before a matching log line; ${last()}`));
        });
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
  return d;
}

/** GET a path of a daemon's health server (started with --healthz-port=HEALTH_PORT), from inside its namespace. */
export async function healthGet(bed: Bed, d: Daemon, urlPath: string): Promise<string> {
  const script = `fetch('http://127.0.0.1:${HEALTH_PORT}${urlPath}').then(r=>r.text()).then(t=>process.stdout.write(t))`;
  // (30 s: starting node for the request alone took over 10 s on the loaded shared machine)
  return (await bed.exec(d.node.ns, process.execPath, ['-e', script], 30_000)).stdout;
}

/** Polls until fn returns a truthy value; throws with the last error at the deadline. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, stepMs = 50): Promise<T> {
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

/** The overlay address of a node: its subnet's network address (the TUN's /32). */
export function tunAddress(subnet: string): string {
  return subnet.split('/')[0]!;
}
