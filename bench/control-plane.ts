/**
 * npm run bench:control-plane [-- --sizes 100,1000,5000,10000 --daemons 10 --joins 100 --storm 200
 *                                 --idle-seconds 20 --profile --json out.json --svg out.svg]
 *
 * The control plane at cluster scale (issue 14). Per N: a fresh bed, etcd in a namespace, N leases
 * of simulated nodes written as flanneld writes them (bench/control-plane-driver.ts), then real
 * `tulle run` daemons with default flags (daemon 0 also serves /healthz, for its heap):
 *
 *   start      daemon 0 alone: process start → lease acquired → node ready → all N routes in the
 *              data plane (its 'peers updated' log line, written right after the apply)
 *   others     the other daemons started together: start → all N + daemons − 1 routes
 *   idle       CPU of every daemon over --idle-seconds, and etcd's request count in that window
 *   joins      one lease at a time: write → every daemon's data plane holds it (p50/p99 of the
 *              slowest daemon per join)
 *   storm      --storm LeaseManagers (one etcd client each) acquire at once: distinct subnets?
 *              lost races; time until every daemon holds all their routes
 *   etcd       requests, watch events, DB size (etcd's own /metrics)
 *
 * Every wait has a deadline; the bed's teardown stops what it started. Figures from a shared
 * 2-core machine are noisy. --profile: daemon 0 runs with --cpu-prof at the largest N and the top
 * of its profile (self time by function) is printed. TULLE_DRIVER_PROF_DIR=dir: the same for the
 * process playing the storm's joiners (bench/control-plane-driver.ts), its profile kept in dir.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { createBed, stopProcess, type Bed, type BedNode } from '../test/bed/bed.js';
import { startEtcd } from '../test/bed/etcd.js';
import { run } from '../src/host/exec.js';
import { REPO_ROOT } from '../test/bed/daemons.js';
import { startLeaseDriver } from '../test/bed/lease-driver.js';
import { summariseProfile } from './cpu-profile.js';
import { controlPlaneChart } from './control-plane-chart.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,5000,10000' },
    daemons: { type: 'string', default: '10' },
    joins: { type: 'string', default: '100' },
    storm: { type: 'string', default: '200' },
    'idle-seconds': { type: 'string', default: '20' },
    'storm-deadline-s': { type: 'string', default: '60' },
    profile: { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
  },
});

const STORM_DEADLINE_MS = Number(args['storm-deadline-s']) * 1000;
const CONFIG = '{"Network":"10.244.0.0/16","SubnetLen":30,"Backend":{"Type":"udp"}}';
const HEALTH_PORT = 8471;
const ETCD_IP = '198.18.0.2';

interface Daemon {
  node: BedNode;
  proc: ChildProcess;
  spawnedAt: number;
  /** [time, routes] of every 'peers updated' line */
  updates: Array<[number, number]>;
  marks: Map<string, number>;
  problems: string[];
  waiters: Set<() => void>;
}

function spawnDaemon(bed: Bed, node: BedNode, dir: string, o: { health?: boolean; profileDir?: string } = {}): Daemon {
  const nodeArgs = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : [];
  const flags = [
    `--etcd-endpoints=http://${ETCD_IP}:2379`, '--iface=eth0', `--public-ip=${node.underlayIp}`,
    `--state-dir=${dir}/state`, `--subnet-file=${dir}/subnet.env`,
    ...(o.health ? ['--healthz-ip=127.0.0.1', `--healthz-port=${HEALTH_PORT}`] : []),
  ];
  const spawnedAt = Date.now();
  const proc = bed.spawn(node.ns, process.execPath, [...nodeArgs, path.join(REPO_ROOT, 'bin/tulle'), 'run', ...flags]);
  const d: Daemon = { node, proc, spawnedAt, updates: [], marks: new Map(), problems: [], waiters: new Set() };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    let l: { msg?: string; time?: number; routes?: number; level?: number };
    try {
      l = JSON.parse(line);
    } catch {
      return;
    }
    if (l.msg === 'peers updated') d.updates.push([l.time!, l.routes!]);
    else if (l.msg === 'lease acquired' || l.msg === 'node ready') d.marks.set(l.msg, l.time!);
    if ((l.level ?? 0) >= 40 && d.problems.length < 20) d.problems.push(l.msg ?? line);
    for (const w of [...d.waiters]) w();
  });
  proc.stderr!.resume();
  return d;
}

/** time of the first 'peers updated' line with at least `routes` routes, after `since` */
function reachedAt(d: Daemon, routes: number, since = 0): number | undefined {
  for (const [t, r] of d.updates) if (t >= since && r >= routes) return t;
  return undefined;
}

function waitRoutes(d: Daemon, routes: number, timeoutMs: number, since = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const t = reachedAt(d, routes, since);
      if (t !== undefined) done(() => resolve(t));
      else if (d.proc.exitCode !== null) done(() => reject(new Error(`daemon in ${d.node.ns} exited (${d.proc.exitCode}): ${d.problems.join(' | ')}`)));
    };
    const timer = setTimeout(() => done(() => reject(new Error(
      `daemon in ${d.node.ns}: ${routes} routes not reached in ${timeoutMs} ms (last ${d.updates.at(-1)?.[1] ?? 0}); ${d.problems.join(' | ')}`))), timeoutMs);
    const done = (f: () => void) => {
      clearTimeout(timer);
      d.waiters.delete(check);
      f();
    };
    d.waiters.add(check);
    check();
  });
}

function waitMark(d: Daemon, msg: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const t = d.marks.get(msg);
      if (t !== undefined) done(() => resolve(t));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`daemon in ${d.node.ns}: no '${msg}' in ${timeoutMs} ms; ${d.problems.join(' | ')}`))), timeoutMs);
    const done = (f: () => void) => {
      clearTimeout(timer);
      d.waiters.delete(check);
      f();
    };
    d.waiters.add(check);
    check();
  });
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}
/** etcd's process in its namespace (the driver runs there too), by its command name */
async function etcdPid(ns: string): Promise<number | undefined> {
  const { stdout } = await run('ip', ['netns', 'pids', ns]);
  return stdout.split(/\s+/).map(Number).find((p) => {
    try {
      return p > 0 && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'etcd';
    } catch {
      return false;
    }
  });
}
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function healthOf(bed: Bed, d: Daemon): Promise<Record<string, any>> {
  const script = `fetch('http://127.0.0.1:${HEALTH_PORT}/healthz',{signal:AbortSignal.timeout(20000)}).then(r=>r.text()).then(t=>process.stdout.write(t))`;
  return JSON.parse((await bed.exec(d.node.ns, process.execPath, ['-e', script], 30_000)).stdout);
}

export interface SizeResult {
  n: number;
  daemons: number;
  writeMs: number;
  start: { leaseMs: number; readyMs: number; routesMs: number; rssMiB: number; heapMiB: number };
  others: { routesMsMedian: number; routesMsMax: number };
  idle: { seconds: number; cpuPctMean: number; cpuPctMax: number; etcdRequestsPerS: number };
  rssMiB: { mean: number; max: number };
  joins: { count: number; p50: number; p99: number; max: number };
  storm: { count: number; acquired: number; driverCpuPct: number; driverCpuS: number; etcdCpuS: number; distinct: boolean; lostRaces: number; listings: number; acquiredMsMax: number; convergedMs: number };
  etcd: Record<string, number>;
  profile?: string;
}

async function runSize(n: number): Promise<SizeResult> {
  const D = Number(args.daemons);
  const J = Number(args.joins);
  const S = Number(args.storm);
  const bed = await createBed({ nodes: D, tag: 'cp' });
  current = bed;
  const dirs: string[] = [];
  const profileDir = args.profile && n === Math.max(...sizes) ? mkdtempSync(path.join(tmpdir(), 'tulle-cpuprof-')) : undefined;
  try {
    const etcdNode = await bed.addHost('etcd', 2);
    await startEtcd({ bed, ns: etcdNode.ns, ip: ETCD_IP });
    const call = startLeaseDriver(bed, etcdNode.ns, `http://${ETCD_IP}:2379`);
    await call({ cmd: 'config', value: CONFIG });
    const { ms: writeMs } = await call({ cmd: 'write', from: 0, count: n }, 600_000);
    console.error(`[N=${n}] ${n} leases written in ${writeMs} ms`);
    const dirFor = () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'tulle-node-'));
      dirs.push(dir);
      return dir;
    };

    // 1. daemon 0 alone
    const d0 = spawnDaemon(bed, bed.nodes[0]!, dirFor(), { health: true, ...(profileDir ? { profileDir } : {}) });
    const t0routes = await waitRoutes(d0, n, 180_000);
    await waitMark(d0, 'node ready', 60_000);
    const start = {
      leaseMs: d0.marks.get('lease acquired')! - d0.spawnedAt,
      readyMs: d0.marks.get('node ready')! - d0.spawnedAt,
      routesMs: t0routes - d0.spawnedAt,
      rssMiB: rssMiB(d0.proc.pid!),
      heapMiB: 0,
    };
    start.heapMiB = (await healthOf(bed, d0)).process.heapUsedBytes / 2 ** 20;
    console.error(`[N=${n}] daemon 0: lease ${start.leaseMs} ms, ready ${start.readyMs} ms, ${n} routes ${start.routesMs} ms, RSS ${start.rssMiB.toFixed(1)} MiB`);

    // 2. the others, together
    const others = bed.nodes.slice(1).map((node) => spawnDaemon(bed, node, dirFor()));
    const all = [d0, ...others];
    let routes = n + D - 1;
    const otherMs = await Promise.all(others.map(async (d) => (await waitRoutes(d, routes, 300_000)) - d.spawnedAt));
    await Promise.all(all.map((d) => waitRoutes(d, routes, 120_000)));
    console.error(`[N=${n}] ${D} daemons hold ${routes} routes`);

    // 3. idle
    await new Promise((r) => setTimeout(r, 3000));
    const idleS = Number(args['idle-seconds']);
    const m0 = await call({ cmd: 'metrics' });
    const c0 = all.map((d) => cpuTicks(d.proc.pid!));
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, idleS * 1000));
    const c1 = all.map((d) => cpuTicks(d.proc.pid!));
    const wall = (Date.now() - w0) / 1000;
    const m1 = await call({ cmd: 'metrics' });
    const cpu = c1.map((c, i) => (c - c0[i]!) / wall); // ticks of 10 ms per s = % of a core
    const rss = all.map((d) => rssMiB(d.proc.pid!));

    // 4. joins, one at a time
    const lat: number[] = [];
    let index = n;
    for (let j = 0; j < J; j++) {
      let r;
      do r = await call({ cmd: 'join', index: index++ }, 30_000);
      while (!r.created);
      routes++;
      const ts = await Promise.all(all.map((d) => waitRoutes(d, routes, 30_000, r.t0)));
      lat.push(Math.max(...ts) - r.t0);
    }
    console.error(`[N=${n}] joins: p50 ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms`);

    // 5. join storm (etcd's CPU over the storm call, from /proc: utime + stime in 10 ms ticks)
    const ePid = await etcdPid(etcdNode.ns);
    const e0 = ePid ? cpuTicks(ePid) : NaN;
    const st = await call({ cmd: 'storm', from: 40_000, count: S, deadlineMs: STORM_DEADLINE_MS }, STORM_DEADLINE_MS + 60_000);
    const etcdCpuS = ePid ? (cpuTicks(ePid) - e0) / 100 : NaN;
    const distinct = new Set(st.subnets).size === st.acquired;
    routes += st.acquired;
    const conv = await Promise.all(all.map((d) => waitRoutes(d, routes, 120_000, st.t0)));
    const storm = {
      count: S, acquired: st.acquired, distinct, lostRaces: st.lost, listings: st.listings, driverCpuPct: (100 * st.driverCpuMs) / st.wallMs,
      driverCpuS: st.driverCpuMs / 1000, etcdCpuS,
      acquiredMsMax: st.acquired === S ? Math.max(...st.ms) : NaN, convergedMs: st.acquired === S ? Math.max(...conv) - st.t0 : NaN,
    };
    console.error(`[N=${n}] storm of ${S}: ${st.acquired} acquired within ${STORM_DEADLINE_MS} ms, distinct ${distinct}, ${st.lost} lost races, ${st.listings} full listings, ` +
      `all acquired in ${storm.acquiredMsMax} ms, converged in ${storm.convergedMs} ms; the driver (all joiners in one process) used ${storm.driverCpuPct.toFixed(0)}% of a core ` +
      `(${storm.driverCpuS.toFixed(1)} s of CPU); etcd used ${etcdCpuS.toFixed(1)} s of CPU during the storm; first listings back: median ${st.listedMsMedian} ms, last ${st.listedMsMax} ms`);
    if (Object.keys(st.errors ?? {}).length) console.error(`[N=${n}] storm: etcd errors while acquiring (retried): ${JSON.stringify(st.errors)}`);
    if (st.profile) console.error(`[N=${n}] the storm driver's CPU profile (TULLE_DRIVER_PROF_DIR):\n${st.profile}`);
    const etcd = await call({ cmd: 'metrics' });
    delete etcd.ok;

    let profile: string | undefined;
    if (profileDir) {
      await stopProcess(d0.proc, 15_000);
      const f = readdirSync(profileDir).find((x) => x.endsWith('.cpuprofile'));
      if (f) profile = summariseProfile(JSON.parse(readFileSync(path.join(profileDir, f), 'utf8')), 25);
    }
    return {
      n, daemons: D, writeMs, start,
      others: { routesMsMedian: pct(otherMs, 50), routesMsMax: Math.max(...otherMs) },
      idle: {
        seconds: Math.round(wall), cpuPctMean: cpu.reduce((a, b) => a + b, 0) / cpu.length, cpuPctMax: Math.max(...cpu),
        etcdRequestsPerS: (m1.grpc_server_handled_total - m0.grpc_server_handled_total) / wall,
      },
      rssMiB: { mean: rss.reduce((a, b) => a + b, 0) / rss.length, max: Math.max(...rss) },
      joins: { count: J, p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat) },
      storm, etcd, ...(profile ? { profile } : {}),
    };
  } finally {
    await bed.teardown();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  }
}

export function table(rs: SizeResult[]): string {
  const f = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  const rows = [
    ['leases N', ...rs.map((r) => f(r.n))],
    ['daemon 0 alone: start → lease (ms)', ...rs.map((r) => f(r.start.leaseMs))],
    ['daemon 0 alone: start → ready (ms)', ...rs.map((r) => f(r.start.readyMs))],
    ['daemon 0 alone: start → all N routes (ms)', ...rs.map((r) => f(r.start.routesMs))],
    ['daemon 0: RSS / heap used (MiB)', ...rs.map((r) => `${f(r.start.rssMiB)} / ${f(r.start.heapMiB)}`)],
    ['others started together: → all routes, median / max (ms)', ...rs.map((r) => `${f(r.others.routesMsMedian)} / ${f(r.others.routesMsMax)}`)],
    ['idle CPU per daemon, mean / max (% of a core)', ...rs.map((r) => `${r.idle.cpuPctMean.toFixed(2)} / ${r.idle.cpuPctMax.toFixed(2)}`)],
    ['idle etcd requests/s (all daemons)', ...rs.map((r) => r.idle.etcdRequestsPerS.toFixed(2))],
    ['RSS per daemon after joins setup, mean / max (MiB)', ...rs.map((r) => `${f(r.rssMiB.mean)} / ${f(r.rssMiB.max)}`)],
    ['new lease → every daemon, p50 / p99 / max (ms)', ...rs.map((r) => `${r.joins.p50} / ${r.joins.p99} / ${r.joins.max}`)],
    ['storm: acquired within the deadline, distinct, lost races, full listings', ...rs.map((r) => `${r.storm.acquired}/${r.storm.count}, ${r.storm.distinct ? 'distinct' : 'OVERLAP'}, ${r.storm.lostRaces}, ${r.storm.listings}`)],
    ['storm: all acquired / all routes converged (ms)', ...rs.map((r) => (r.storm.acquired === r.storm.count ? `${r.storm.acquiredMsMax} / ${r.storm.convergedMs}` : `not within ${STORM_DEADLINE_MS}`))],
    ['storm: CPU of the one process playing all joiners (% of a core)', ...rs.map((r) => r.storm.driverCpuPct.toFixed(0))],
    ['storm: CPU seconds of the joiners\' process / of etcd', ...rs.map((r) => `${r.storm.driverCpuS.toFixed(1)} / ${r.storm.etcdCpuS.toFixed(1)}`)],
    ['etcd: DB size (MiB)', ...rs.map((r) => f((r.etcd.etcd_mvcc_db_total_size_in_bytes ?? 0) / 2 ** 20))],
    ['etcd: gRPC requests / watch events (whole run)', ...rs.map((r) => `${r.etcd.grpc_server_handled_total} / ${r.etcd.etcd_debugging_mvcc_events_total ?? '?'}`)],
  ];
  const head = `| | ${rs.map((r) => `N=${r.n}`).join(' | ')} |\n|---|${rs.map(() => '---:').join('|')}|`;
  return [head, ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const sizes = args.sizes.split(',').map(Number);

let current: Bed | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`${sig}: tearing down`);
    void (current?.teardown() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function main() {
  const out: SizeResult[] = [];
  for (const n of sizes) out.push(await runSize(n));
  console.log(table(out));
  for (const r of out) if (r.profile) console.log(`\nCPU profile of daemon 0 at N=${r.n} (self time):\n\n${r.profile}`);
  if (args.json) writeFileSync(args.json, JSON.stringify(out, null, 1));
  if (args.svg) {
    const sub = `${new Date().toISOString().slice(0, 10)}, ${Number(args.daemons)} daemons, ${Number(args.joins)} joins, storm of ${Number(args.storm)}; ${process.argv.slice(2).join(' ')}`;
    writeFileSync(args.svg, controlPlaneChart(out, sub));
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
