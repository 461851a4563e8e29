/**
 * A tulle cluster in the test bed: etcd in its own namespace (198.18.0.2:2379) and real
 * `tulle run` daemons (bin/tulle) in node namespaces, each with its own state dir and
 * subnet.env in a temp dir. Daemons are spawned through the bed, so teardown stops them by PID.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBed, stopProcess, type Bed, type BedIpv6, type BedNode } from '../bed/bed.js';
import { makeTestCerts, startEtcd, type EtcdServer, type TlsFiles } from '../bed/etcd.js';
import { healthGet, HEALTH_PORT, spawnDaemon, type Daemon } from '../bed/daemon-process.js';

export const PREFIX = '/coreos.com/network';
export { HEALTH_PORT, until, tunAddress, type LogLine, type Daemon } from '../bed/daemon-process.js';

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

export async function createCluster(opts: { nodes: number; config?: string; tag?: string; tls?: boolean; ipv6?: BedIpv6 }): Promise<Cluster> {
  const bed = await createBed({ nodes: opts.nodes, tag: opts.tag ?? 'cp', ipv6: opts.ipv6 });
  const dirs: string[] = [];
  const nodeDirs = new Map<string, string>();
  let etcd: EtcdServer | undefined;
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
        const d = spawnDaemon(bed, node, cmd, argv, { dir, env });
        daemons.push(d);
        return d;
      },
      async health(d) {
        return JSON.parse(await healthGet(bed, d, '/healthz')) as Record<string, any>;
      },
      metrics: (d) => healthGet(bed, d, '/metrics'),
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
