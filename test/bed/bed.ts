/**
 * The test bed of design.md §6: every "node" is a network namespace attached by a veth pair to
 * a bridge that lives in an underlay namespace of its own. Underlay 198.18.0.0/24 (inside the
 * benchmarking range), overlay 10.244.0.0/16. Names carry a per-run suffix so beds can run in
 * parallel; teardown kills what the bed started (by PID) and deletes every namespace, and also
 * runs on process exit so a failed test leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { run } from '../../src/host/exec.js';

export const UNDERLAY_PREFIX = '198.18.0';
export const UNDERLAY_LEN = 24;
/** the IPv6 underlay (a ULA prefix): host N is fd00:198:18::N */
export const UNDERLAY6_PREFIX = 'fd00:198:18::';
export const UNDERLAY6_LEN = 64;

/** `dual`: IPv4 and IPv6 on every eth0; `only`: IPv6 only (underlayIp is then the IPv6 address) */
export type BedIpv6 = 'dual' | 'only' | undefined;

export interface BedNode {
  index: number;
  /** netns name, for `ip -n` / `ip netns exec` */
  ns: string;
  /** path for setns(): /run/netns/NAME */
  nsPath: string;
  /** underlay address of eth0 (its IPv6 one on an IPv6-only bed) */
  underlayIp: string;
  /** IPv6 underlay address of eth0, on beds made with `ipv6` */
  underlayIp6?: string;
}

export interface Bed {
  id: string;
  underlayNs: string;
  nodes: BedNode[];
  /** Adds one more namespace on the underlay (extra nodes, etcd, an attacker). */
  addHost(name: string, hostOctet: number): Promise<BedNode>;
  /** Adds a bare namespace (lo up, nothing attached), deleted at teardown; returns its name. */
  addNamespace(name: string): Promise<string>;
  /** Runs a command inside a node's namespace and waits for it. */
  exec(ns: string, cmd: string, args: readonly string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running process in a namespace; teardown stops it by PID. */
  spawn(ns: string, cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' }): ChildProcess;
  teardown(): Promise<void>;
}

const live = new Set<Bed>();
let hooked = false;

/** Last resort on process exit: kill what beds started and delete their namespaces. */
function teardownAllSync(): void {
  for (const bed of live as Set<BedInternal>) {
    for (const p of bed.procs) if (p.exitCode === null && p.pid) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const ns of bed.namespaces) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
  }
}

interface BedInternal extends Bed {
  procs: Set<ChildProcess>;
  namespaces: string[];
}

export async function createBed(opts: { nodes: number; tag?: string; ipv6?: BedIpv6 }): Promise<Bed> {
  if (!hooked) {
    hooked = true;
    process.once('exit', teardownAllSync);
  }
  const id = `${opts.tag ?? 'tu'}${randomBytes(3).toString('hex')}`;
  const underlayNs = `${id}-ul`;
  const procs = new Set<ChildProcess>();
  const namespaces: string[] = [];
  const nodes: BedNode[] = [];
  let nextVeth = 0;

  const addNs = async (name: string) => {
    await run('ip', ['netns', 'add', name]);
    namespaces.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  };

  const bed: BedInternal = {
    id,
    underlayNs,
    nodes,
    procs,
    namespaces,
    async addHost(name, hostOctet) {
      const ns = `${id}-${name}`;
      await addNs(ns);
      const port = `p${nextVeth++}`;
      await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', underlayNs]);
      await run('ip', ['-n', underlayNs, 'link', 'set', port, 'master', 'br0', 'up']);
      const underlayIp4 = `${UNDERLAY_PREFIX}.${hostOctet}`;
      const underlayIp6 = opts.ipv6 ? `${UNDERLAY6_PREFIX}${hostOctet}` : undefined;
      if (opts.ipv6 !== 'only') await run('ip', ['-n', ns, 'addr', 'add', `${underlayIp4}/${UNDERLAY_LEN}`, 'dev', 'eth0']);
      // nodad: usable at once (no duplicate address detection on a bridge the bed owns)
      if (underlayIp6) await run('ip', ['-n', ns, 'addr', 'add', `${underlayIp6}/${UNDERLAY6_LEN}`, 'dev', 'eth0', 'nodad']);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      const underlayIp = opts.ipv6 === 'only' ? underlayIp6! : underlayIp4;
      return { index: hostOctet, ns, nsPath: `/run/netns/${ns}`, underlayIp, ...(underlayIp6 ? { underlayIp6 } : {}) };
    },
    async addNamespace(name) {
      const ns = `${id}-${name}`;
      await addNs(ns);
      return ns;
    },
    exec(ns, cmd, args, timeoutMs) {
      return run('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs: timeoutMs ?? 60_000 });
    },
    spawn(ns, cmd, args, o) {
      const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: [o?.stdin ?? 'ignore', 'pipe', 'pipe'], env: o?.env ?? process.env });
      procs.add(p);
      p.once('exit', () => procs.delete(p));
      return p;
    },
    async teardown() {
      live.delete(bed);
      await Promise.all([...procs].map((p) => stopProcess(p)));
      for (const ns of namespaces.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      namespaces.length = 0;
    },
  };
  live.add(bed);
  try {
    await addNs(underlayNs);
    await run('ip', ['-n', underlayNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', underlayNs, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < opts.nodes; i++) nodes.push(await bed.addHost(`n${i}`, 10 + i));
  } catch (e) {
    await bed.teardown();
    throw e;
  }
  return bed;
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
export function stopProcess(p: ChildProcess, graceMs = 3000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}
