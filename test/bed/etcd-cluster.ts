/**
 * A real etcd cluster for fault tests: N members (Debian's etcd 3.4), each in its own bed
 * namespace on the underlay (198.18.0.2, .3, .4 …), clients on :2379, peers on :2380 over the
 * underlay, so a member can be killed, restarted on its data dir, or cut off from its peers
 * with iptables in its own namespace. Processes are stopped by the PID we started; data dirs
 * are temp dirs removed at destroy().
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopProcess, type Bed, type BedNode } from './bed.js';

export interface EtcdMember {
  name: string;
  node: BedNode;
  /** http://IP:2379 */
  endpoint: string;
  dataDir: string;
  readonly running: boolean;
  /** PID of the etcd process, when running */
  readonly pid: number | undefined;
  /** SIGKILL (a crash) or SIGTERM, keeping the data dir */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** starts it again on its data dir, rejoining the cluster; waits until it answers */
  start(): Promise<void>;
  /** drops its peer traffic (port 2380, both ways) with iptables in its namespace; clients still reach it */
  isolate(): Promise<void>;
  heal(): Promise<void>;
}

export interface EtcdStatus {
  endpoint: string;
  memberId: string;
  leader: string;
  raftTerm: number;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** every client URL, for --etcd-endpoints */
  endpoints: string[];
  /** runs etcdctl inside member i's namespace against the given endpoints (default: every member running and not isolated) */
  etcdctl(args: readonly string[], o?: { via?: number; endpoints?: string[]; timeoutMs?: number }): Promise<string>;
  /** status of each reachable running member */
  status(): Promise<EtcdStatus[]>;
  /** the member every reachable member agrees is leader, or undefined */
  leader(): Promise<EtcdMember | undefined>;
  destroy(): Promise<void>;
}

const ETCD_OCTET = 2;

export async function startEtcdCluster(bed: Bed, o: { size?: number; firstOctet?: number } = {}): Promise<EtcdCluster> {
  const size = o.size ?? 3;
  const first = o.firstOctet ?? ETCD_OCTET;
  const nodes: BedNode[] = [];
  for (let i = 0; i < size; i++) nodes.push(await bed.addHost(`etcd${i}`, first + i));
  const names = nodes.map((_, i) => `m${i}`);
  const initialCluster = nodes.map((n, i) => `${names[i]}=http://${n.underlayIp}:2380`).join(',');
  const endpoints = nodes.map((n) => `http://${n.underlayIp}:2379`);

  const etcdctl = async (args: readonly string[], opt: { via?: number; endpoints?: string[]; timeoutMs?: number } = {}) => {
    // etcdctl, too, would wait on an isolated member until its deadline: leave those out
    const usable = members.filter((m) => m.running && !isolated.has(m));
    const via = opt.via ?? Math.max(0, members.indexOf(usable[0]!));
    const eps = opt.endpoints ?? (usable.length ? usable.map((m) => m.endpoint) : endpoints);
    const r = await bed.exec(nodes[Math.max(0, via)]!.ns, 'etcdctl', ['--endpoints', eps.join(','), '--dial-timeout', '2s', '--command-timeout', '5s', ...args], opt.timeoutMs ?? 15_000);
    return r.stdout;
  };

  const isolated = new Set<EtcdMember>();
  const members: EtcdMember[] = nodes.map((node, i) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tulle-etcdc-'));
    const endpoint = endpoints[i]!;
    let proc: ChildProcess | undefined;
    let stderr = '';
    let started = false;
    const peerRules = [
      ['INPUT', '-p', 'tcp', '--dport', '2380', '-j', 'DROP'],
      ['INPUT', '-p', 'tcp', '--sport', '2380', '-j', 'DROP'],
      ['OUTPUT', '-p', 'tcp', '--dport', '2380', '-j', 'DROP'],
      ['OUTPUT', '-p', 'tcp', '--sport', '2380', '-j', 'DROP'],
    ];
    const m: EtcdMember = {
      name: names[i]!, node, endpoint, dataDir,
      get running() {
        return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
      },
      get pid() {
        return m.running ? proc!.pid : undefined;
      },
      async stop(signal = 'SIGKILL') {
        if (!proc) return;
        const p = proc;
        proc = undefined;
        if (signal === 'SIGKILL') {
          const gone = new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));
          p.kill('SIGKILL');
          await gone;
        } else await stopProcess(p, 10_000);
      },
      async start() {
        stderr = '';
        const args = [
          '--name', names[i]!, '--data-dir', dataDir,
          '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
          '--listen-peer-urls', `http://${node.underlayIp}:2380`, '--initial-advertise-peer-urls', `http://${node.underlayIp}:2380`,
          '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `${bed.id}-etcd`,
          '--logger', 'zap', '--log-level', 'error', '--log-outputs', 'stderr',
        ];
        const p = bed.spawn(node.ns, 'etcd', args);
        proc = p;
        p.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
        p.stdout?.resume();
        // the first start of a member cannot answer before a quorum exists: the caller waits for all
        if (!started) {
          started = true;
          return;
        }
        const deadline = Date.now() + 30_000;
        for (;;) {
          if (p.exitCode !== null) throw new Error(`etcd ${names[i]} exited (${p.exitCode}): ${stderr}`);
          try {
            await etcdctl(['endpoint', 'health'], { via: i, endpoints: [endpoint], timeoutMs: 8000 });
            return;
          } catch (e) {
            if (Date.now() > deadline) throw new Error(`etcd ${names[i]} not healthy after 30 s: ${(e as Error).message} ${stderr}`);
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      },
      async isolate() {
        for (const r of peerRules) await bed.exec(node.ns, 'iptables', ['-I', ...r]);
        isolated.add(m);
      },
      async heal() {
        for (const r of peerRules) await bed.exec(node.ns, 'iptables', ['-D', ...r]);
        isolated.delete(m);
      },
    };
    return m;
  });

  const status = async (): Promise<EtcdStatus[]> => {
    const out: EtcdStatus[] = [];
    for (let i = 0; i < members.length; i++) {
      if (!members[i]!.running) continue;
      try {
        const js = JSON.parse(await etcdctl(['endpoint', 'status', '-w', 'json'], { via: i, endpoints: [endpoints[i]!], timeoutMs: 8000 })) as
          { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string; raft_term: number } }[];
        for (const s of js) out.push({ endpoint: s.Endpoint, memberId: String(s.Status.header.member_id), leader: String(s.Status.leader), raftTerm: s.Status.raft_term });
      } catch { /* unreachable member */ }
    }
    return out;
  };

  const cluster: EtcdCluster = {
    members, endpoints, etcdctl, status,
    async leader() {
      const st = await status();
      const ids = new Set(st.map((s) => s.leader));
      if (ids.size !== 1 || st.length === 0) return undefined;
      const leaderId = [...ids][0]!;
      const hit = st.find((s) => s.memberId === leaderId);
      return hit ? members.find((m) => m.endpoint === hit.endpoint) : undefined;
    },
    async destroy() {
      for (const m of members) await m.stop('SIGTERM').catch(() => undefined);
      for (const m of members) rmSync(m.dataDir, { recursive: true, force: true });
    },
  };

  try {
    for (const m of members) await m.start();
    const deadline = Date.now() + 40_000;
    for (;;) {
      try {
        await etcdctl(['endpoint', 'health'], { via: 0, timeoutMs: 8000 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`etcd cluster not healthy after 40 s: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
  return cluster;
}
