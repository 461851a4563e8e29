/**
 * A tulle cluster in the test bed: etcd in its own namespace (198.18.0.2:2379) and real
 * `tulle run` daemons (bin/tulle) in node namespaces, each with its own state dir and
 * subnet.env in a temp dir. Daemons are spawned through the bed, so teardown stops them by PID.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBed, stopProcess, type Bed, type BedIpv6, type BedNode } from '../bed/bed.js';
import { makeTestCerts, startEtcd, type EtcdServer, type TlsFiles } from '../bed/etcd.js';

export const PREFIX = '/coreos.com/network';
export const HEALTH_PORT = 8471;

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
  /** first log line matching, waiting up to timeoutMs */
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

export interface Cluster {
  bed: Bed;
  etcd: EtcdServer;
  etcdNode: BedNode;
  daemons: Daemon[];
  /** set when the cluster's etcd serves TLS: the files daemons need */
  tls: TlsFiles | undefined;
  /**
   * Starts `tulle run` with default flags but for where etcd is, the underlay (`underlay: false`
   * leaves out --iface/--public-ip) and per-node state dir and subnet.env. `health: true` adds
   * --healthz-ip=127.0.0.1 --healthz-port=HEALTH_PORT, for tests about /healthz and /metrics or
   * that read the route table; everything else runs as a user runs it, without a health port.
   * `bare: true` passes only --state-dir and --subnet-file (and health, if asked); the rest from
   * `extra` and `env`.
   */
  startDaemon(node: BedNode, extra?: string[], env?: NodeJS.ProcessEnv, o?: { underlay?: boolean; health?: boolean; bare?: boolean; wrap?: (cmd: string, args: string[]) => [string, string[]] }): Daemon;
  /** GET /healthz inside the node's namespace (daemons started with `health: true`) */
  health(d: Daemon): Promise<Record<string, any>>;
  /** GET /metrics (Prometheus text) inside the node's namespace (`health: true`) */
  metrics(d: Daemon): Promise<string>;
  ping(from: BedNode, to: string, count?: number, timeoutS?: number): Promise<{ ok: boolean; out: string }>;
  teardown(): Promise<void>;
}

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

export async function createCluster(opts: { nodes: number; config?: string; tag?: string; tls?: boolean; ipv6?: BedIpv6 }): Promise<Cluster> {
  const bed = await createBed({ nodes: opts.nodes, tag: opts.tag ?? 'cp', ipv6: opts.ipv6 });
  const dirs: string[] = [];
  const nodeDirs = new Map<string, string>();
  let etcd: EtcdServer | undefined;
  /** GET a path of a daemon's health server, from inside its namespace */
  const get = async (d: Daemon, urlPath: string) => {
    const script = `fetch('http://127.0.0.1:${HEALTH_PORT}${urlPath}').then(r=>r.text()).then(t=>process.stdout.write(t))`;
    // (30 s: starting node for the request alone took over 10 s on the loaded shared machine)
    return (await bed.exec(d.node.ns, process.execPath, ['-e', script], 30_000)).stdout;
  };
  try {
    const etcdNode = await bed.addHost('etcd', 2);
    let tls: TlsFiles | undefined;
    if (opts.tls) {
      const certDir = mkdtempSync(path.join(tmpdir(), 'tulle-certs-'));
      dirs.push(certDir);
      tls = await makeTestCerts(certDir, [etcdNode.underlayIp]);
    }
    etcd = await startEtcd({ bed, ns: etcdNode.ns, ip: etcdNode.underlayIp, tls });
    if (opts.config !== '') await etcd.etcdctl(['put', `${PREFIX}/config`, opts.config ?? '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}']);
    const daemons: Daemon[] = [];
    const cluster: Cluster = {
      bed, etcd, etcdNode, daemons, tls,
      startDaemon(node, extra = [], env = process.env, o = {}) {
        // one state dir and subnet.env per node, kept across restarts of its daemon
        let dir = nodeDirs.get(node.ns);
        if (!dir) {
          dir = mkdtempSync(path.join(tmpdir(), 'tulle-node-'));
          nodeDirs.set(node.ns, dir);
          dirs.push(dir);
        }
        const healthArgs = o.health ? [`--healthz-ip=127.0.0.1`, `--healthz-port=${HEALTH_PORT}`] : [];
        const args = o.bare
          ? [path.resolve('bin/tulle'), 'run', `--state-dir=${dir}/state`, `--subnet-file=${dir}/subnet.env`, ...healthArgs, ...extra]
          : [
              path.resolve('bin/tulle'), 'run',
              `--etcd-endpoints=${etcd!.endpoint}`, ...(o.underlay === false ? [] : ['--iface=eth0', `--public-ip=${node.underlayIp}`]),
              ...(tls ? [`--etcd-cafile=${tls.caFile}`, `--etcd-certfile=${tls.certFile}`, `--etcd-keyfile=${tls.keyFile}`] : []),
              `--state-dir=${dir}/state`, `--subnet-file=${dir}/subnet.env`,
              ...healthArgs, ...extra,
            ];
        // `wrap`: run it through another command in the namespace (e.g. a shell that mounts first, then execs)
        const [cmd, argv] = o.wrap ? o.wrap(process.execPath, args) : [process.execPath, args];
        const proc = bed.spawn(node.ns, cmd, argv, { env: { ...env, NODE_ENV: 'test' } });
        const logs: LogLine[] = [];
        const waiters = new Set<() => void>();
        let buf = '';
        const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
        const exited = (what: string) =>
          exit.then((code) => {
            throw new Error(`${node.ns}: tulle run exited (${code}) ${what}; last: ${logs.slice(-5).map((l) => l.msg).join(' | ')} ${d.stderr}`);
          });
        const d: Daemon = {
          node, proc, logs, stderr: '', dir: dir!, exit,
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
                reject(new Error(`no matching log line from ${node.ns} in ${timeoutMs} ms; last: ${logs.slice(-5).map((l) => l.msg).join(' | ')} ${d.stderr}`));
              }, timeoutMs);
              waiters.add(check);
              // a daemon that has exited will not print it
              void exit.then((code) => {
                if (!waiters.has(check)) return;
                waiters.delete(check);
                clearTimeout(t);
                reject(new Error(`${node.ns}: tulle run exited (${code}) before a matching log line; last: ${logs.slice(-5).map((l) => l.msg).join(' | ')} ${d.stderr}`));
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
          }
          for (const w of [...waiters]) w();
        });
        proc.stderr!.on('data', (c: Buffer) => (d.stderr = (d.stderr + c.toString()).slice(-4000)));
        daemons.push(d);
        return d;
      },
      async health(d) {
        return JSON.parse(await get(d, '/healthz')) as Record<string, any>;
      },
      metrics: (d) => get(d, '/metrics'),
      async ping(from, to, count = 1, timeoutS = 2) {
        try {
          const r = await bed.exec(from.ns, 'ping', ['-n', '-q', '-c', String(count), '-W', String(timeoutS), to], (count + timeoutS + 5) * 1000);
          return { ok: true, out: r.stdout };
        } catch (e) {
          return { ok: false, out: (e as Error).message };
        }
      },
      async teardown() {
        await Promise.all(daemons.map((x) => stopProcess(x.proc, 5000)));
        await etcd?.stop();
        await bed.teardown();
        await etcd?.destroy();
        for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (e) {
    await etcd?.destroy().catch(() => undefined);
    await bed.teardown();
    throw e;
  }
}

/** The overlay address of a node: its subnet's network address (the TUN's /32). */
export function tunAddress(subnet: string): string {
  return subnet.split('/')[0]!;
}
