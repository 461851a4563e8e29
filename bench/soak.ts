/**
 * npm run soak -- [--minutes 30] [--backend wireguard|udp] [--sample-seconds 60] [--restart-minutes 4]
 *
 * A 3-node mesh of real daemons on a real etcd, for a long time, under mixed bounded traffic
 * (iperf3 TCP n0→n1 at ≤ 100 Mbit/s, iperf3 UDP n1→n2 at 20 Mbit/s, ping n2→n0 five per
 * second), with lease churn (extra leases put in etcd, some deleted, some left to expire) and
 * node restarts (n1 and n2 in turn, SIGTERM and SIGKILL alternately; n0 is never restarted:
 * it is the long-lived subject). Every sample prints RSS, heap, open fds, threads, CPU and key
 * counters of each daemon; the heap is read right after a full GC (bench/soak-gc.cjs, loaded into
 * the daemons with NODE_OPTIONS and triggered by SIGUSR2), so it is live data, not garbage V8
 * has not collected yet. At the end it judges growth and exits 1 if something grew:
 *   - open fds of n0 at the end within 3 of its count after warm-up;
 *   - RSS and heap of n0: median of the last 3 samples within max(16 MiB, 15 %) of the
 *     median of the first 3 after warm-up, and no steady climb: the least-squares slope over
 *     the samples after warm-up at most 3 MiB/h for the JS heap and 8 MiB/h for RSS (when the
 *     end is also more than 2 / 4 MiB above the start: noise is not a trend);
 *   - every node's route table equals etcd's view once the churn is removed;
 *   - traffic flowed (most TCP, UDP and ping rounds succeeded; restarts cost some).
 * Not a test and not in CI: the machine is shared, so the rates are modest.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBed, type Bed, type BedNode } from '../test/bed/bed.js';
import { startEtcd } from '../test/bed/etcd.js';
import { REPO_ROOT, startDaemons, tunAddress, until, type Daemon, type Daemons } from '../test/bed/daemons.js';
import { waitForOutput } from '../test/bed/proc.js';

const PREFIX = '/coreos.com/network';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    backend: { type: 'string', default: 'wireguard' },
    'sample-seconds': { type: 'string', default: '60' },
    'restart-minutes': { type: 'string', default: '4' },
  },
});
const minutes = Number(args.minutes);
const backend = args.backend!;
const sampleMs = Number(args['sample-seconds']) * 1000;
const restartMs = Number(args['restart-minutes']) * 60_000;
if (!(minutes > 0) || !['wireguard', 'udp'].includes(backend)) throw new Error('usage: --minutes N --backend wireguard|udp');

interface Sample {
  t: number;
  node: number;
  pid: number;
  rssMiB: number;
  heapMiB: number;
  fds: number;
  threads: number;
  cpuS: number;
  routes: number;
  renewals: number;
  delivered: number;
  sent: number;
  drops: number;
  /** non-zero drop counters by direction/reason */
  dropReasons: string;
}

const CLK_TCK = 100;
function procStats(pid: number): { rssMiB: number; fds: number; threads: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMiB: kb('VmRSS') / 1024, fds: readdirSync(`/proc/${pid}/fd`).length, threads: kb('Threads'), cpuS: (Number(f[11]) + Number(f[12])) / CLK_TCK };
}

const t0 = Date.now();
const deadline = t0 + minutes * 60_000;
const elapsed = () => ((Date.now() - t0) / 60_000).toFixed(1).padStart(5);
const log = (s: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)} +${elapsed()}m] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const remaining = () => deadline - Date.now();

let bed: Bed | undefined;
let ds: Daemons | undefined;
let etcdDestroy: (() => Promise<void>) | undefined;

async function main(): Promise<number> {
  bed = await createBed({ nodes: 3, tag: 'soak' });
  const etcdNode = await bed.addHost('etcd', 2);
  const etcd = await startEtcd({ bed, ns: etcdNode.ns, ip: etcdNode.underlayIp });
  etcdDestroy = () => etcd.destroy();
  await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: backend } })]);
  // heap figures after a full GC: see bench/soak-gc.cjs
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, '--expose-gc', `--require=${path.join(REPO_ROOT, 'bench/soak-gc.cjs')}`].filter(Boolean).join(' ');
  ds = startDaemons(bed, [etcd.endpoint], { maxLogLines: 2000 });
  // short leases so renewals (and their etcd round trips) happen all through the soak
  const flags = ['--subnet-lease-ttl=60s', '--subnet-lease-renew-margin=30s'];
  const nodes = bed.nodes as [BedNode, BedNode, BedNode];
  const current: Daemon[] = nodes.map((n) => ds!.start(n, flags));
  const subnets = await Promise.all(current.map((d) => d.readySubnet(60_000)));
  const addr = subnets.map(tunAddress);
  log(`backend ${backend}; subnets ${subnets.join(' ')}; ${minutes} min`);
  await until('every node to reach every other', async () => {
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) if (i !== j) await bed!.exec(nodes[i]!.ns, 'ping', ['-n', '-q', '-c', '1', '-W', '1', addr[j]!]);
    return true;
  }, 60_000, 500);

  const tally = { tcpOk: 0, tcpFail: 0, udpOk: 0, udpFail: 0, pingOk: 0, pingFail: 0, pingSent: 0, pingLost: 0, restarts: 0, leasesPut: 0, leasesDeleted: 0, tcpMbits: 0 };
  const loops: Promise<void>[] = [];
  const failures: string[] = [];

  // -- traffic -------------------------------------------------------------------------------
  const iperfRound = async (from: BedNode, to: BedNode, toAddr: string, port: number, client: string[]) => {
    const secs = Math.max(1, Math.min(20, Math.floor(remaining() / 1000) - 5));
    const server = bed!.spawn(to.ns, 'timeout', [String(secs + 30), 'iperf3', '-s', '-1', '--forceflush', '-p', String(port), '-B', toAddr]);
    try {
      await waitForOutput(server, /Server listening/, 15_000);
      const r = await bed!.exec(from.ns, 'timeout', [String(secs + 20), 'iperf3', '-c', toAddr, '-p', String(port), '-t', String(secs), '-J', ...client], (secs + 25) * 1000);
      return JSON.parse(r.stdout) as { end: { sum_received?: { bits_per_second: number }; sum?: { lost_percent: number } } };
    } finally {
      server.kill('SIGKILL');
    }
  };
  loops.push((async () => {
    while (remaining() > 10_000) {
      try {
        const r = await iperfRound(nodes[0], nodes[1], addr[1]!, 5301, ['-b', '100M']);
        tally.tcpOk++;
        tally.tcpMbits += (r.end.sum_received?.bits_per_second ?? 0) / 1e6;
      } catch {
        tally.tcpFail++;
        await sleep(2000);
      }
    }
  })());
  loops.push((async () => {
    while (remaining() > 10_000) {
      try {
        await iperfRound(nodes[1], nodes[2], addr[2]!, 5302, ['-u', '-b', '20M']);
        tally.udpOk++;
      } catch {
        tally.udpFail++;
        await sleep(2000);
      }
    }
  })());
  loops.push((async () => {
    while (remaining() > 25_000) {
      try {
        const r = await bed!.exec(nodes[2].ns, 'ping', ['-n', '-q', '-i', '0.2', '-c', '100', '-W', '2', addr[0]!], 60_000);
        const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
        tally.pingOk++;
        if (m) {
          tally.pingSent += Number(m[1]);
          tally.pingLost += Number(m[1]) - Number(m[2]);
        }
      } catch (e) {
        tally.pingFail++;
        const m = /(\d+) packets transmitted, (\d+) received/.exec((e as { stdout?: string }).stdout ?? '');
        if (m) {
          tally.pingSent += Number(m[1]);
          tally.pingLost += Number(m[1]) - Number(m[2]);
        }
        await sleep(1000);
      }
    }
  })());

  // -- lease churn: extra leases of nodes that do not exist (no host answers at their IPs) ------
  const extras: string[] = [];
  const leaseValue = (k: number) => JSON.stringify({
    PublicIP: `198.18.0.${150 + (k % 100)}`, PublicIPv6: null, BackendType: backend,
    ...(backend === 'wireguard' ? { BackendData: { PublicKey: randomBytes(32).toString('base64'), Port: 51820 } } : {}),
  });
  loops.push((async () => {
    let k = 0;
    while (remaining() > 60_000) {
      const name = `10.244.${200 + (k % 50)}.0-24`;
      if (subnets.includes(name.replace('-', '/'))) {
        k++;
        continue;
      }
      try {
        if (k % 3 === 2) {
          // left to expire: an etcd lease of 20 s
          const lease = /lease (\w+) granted/.exec(await etcd.etcdctl(['lease', 'grant', '20']))![1]!;
          await etcd.etcdctl(['put', '--lease', lease, `${PREFIX}/subnets/${name}`, leaseValue(k)]);
        } else {
          await etcd.etcdctl(['put', `${PREFIX}/subnets/${name}`, leaseValue(k)]);
          extras.push(name);
        }
        tally.leasesPut++;
        while (extras.length > 8) {
          await etcd.etcdctl(['del', `${PREFIX}/subnets/${extras.shift()!}`]);
          tally.leasesDeleted++;
        }
      } catch (e) {
        log(`lease churn: ${(e as Error).message.slice(0, 200)}`);
      }
      k++;
      await sleep(3000);
    }
  })());

  // -- restarts of n1 and n2 ------------------------------------------------------------------
  loops.push((async () => {
    let r = 0;
    while (remaining() > restartMs / 2 + 60_000) {
      await sleep(Math.min(restartMs, remaining()));
      if (remaining() < 90_000) break;
      const i = 1 + (r % 2);
      const signal = r % 4 < 2 ? 'SIGTERM' : 'SIGKILL';
      const old = current[i]!;
      old.proc.kill(signal);
      const code = await old.exit;
      current[i] = ds!.start(nodes[i]!, flags);
      const subnet = await current[i]!.readySubnet(60_000);
      tally.restarts++;
      log(`restarted n${i} (${signal}, exit ${code ?? signal}): subnet ${subnet}${subnet === subnets[i] ? ' (kept)' : ' (CHANGED)'}`);
      if (subnet !== subnets[i]) failures.push(`n${i} came back on ${subnet}, not ${subnets[i]}`);
      r++;
    }
  })());

  // -- sampling -------------------------------------------------------------------------------
  const samples: Sample[] = [];
  const sample = async () => {
    for (let i = 0; i < 3; i++) {
      const d = current[i]!;
      const pid = d.proc.pid!;
      try {
        // full GC (bench/soak-gc.cjs), then read; only once the daemon has logged, i.e. surely
        // past the --require (SIGUSR2 would otherwise end it)
        if (d.logs.length > 0) process.kill(pid, 'SIGUSR2');
        await sleep(500);
        const p = procStats(pid);
        const h = await ds!.health(d);
        const m = await ds!.metrics(d);
        const sum = (re: RegExp) => [...m].filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
        const s: Sample = {
          t: Date.now() - t0, node: i, pid, ...p, heapMiB: h.process.heapUsedBytes / 2 ** 20,
          routes: Object.keys(h.routes).length, renewals: Number(h.lease?.renewals ?? 0),
          delivered: sum(/^tulle_packets_total\{direction="inbound",stage="delivered"\}/),
          sent: sum(/^tulle_packets_total\{direction="outbound",stage="sent"\}/),
          drops: sum(/^tulle_drops_total/),
          dropReasons: [...m].filter(([k, v]) => k.startsWith('tulle_drops_total') && v > 0)
            .map(([k, v]) => `${/direction="(\w)/.exec(k)?.[1]}:${/reason="(\w+)"/.exec(k)?.[1]}=${v}`).join(' '),
        };
        samples.push(s);
        log(`n${i} pid ${pid}: rss ${s.rssMiB.toFixed(1)} MiB, heap ${s.heapMiB.toFixed(1)} MiB, fds ${s.fds}, threads ${s.threads}, cpu ${s.cpuS.toFixed(1)} s, routes ${s.routes}, renewals ${s.renewals}, sent ${s.sent}, delivered ${s.delivered}, drops ${s.drops} (${s.dropReasons})`);
      } catch (e) {
        log(`n${i}: sample failed (${(e as Error).message.slice(0, 120)})`);
      }
    }
  };
  await sample();
  while (remaining() > 0) {
    await sleep(Math.min(sampleMs, Math.max(0, remaining())));
    await sample();
    log(`traffic: tcp ${tally.tcpOk} ok/${tally.tcpFail} failed, udp ${tally.udpOk}/${tally.udpFail}, ping ${tally.pingSent - tally.pingLost}/${tally.pingSent} replies; restarts ${tally.restarts}; leases put ${tally.leasesPut}, deleted ${tally.leasesDeleted}`);
  }
  await Promise.all(loops);

  // -- end: remove the churn and compare every table with etcd ---------------------------------
  for (const name of extras) await etcd.etcdctl(['del', `${PREFIX}/subnets/${name}`]);
  const truth = async () => (await etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '--keys-only'])).split('\n').filter(Boolean)
    .map((k) => k.slice(`${PREFIX}/subnets/`.length).replace('-', '/')).sort();
  try {
    await until('extra leases to expire and every table to equal etcd', async () => {
      const keys = await truth();
      if (keys.length !== 3) return false;
      for (let i = 0; i < 3; i++) {
        const want = JSON.stringify(keys.filter((k) => k !== subnets[i]));
        if (JSON.stringify(Object.keys((await ds!.health(current[i]!)).routes).sort()) !== want) return false;
      }
      return true;
    }, 90_000, 1000);
  } catch (e) {
    failures.push(`${(e as Error).message}; etcd holds ${(await truth()).join(' ')}; routes ${
      (await Promise.all(current.map(async (d) => Object.keys((await ds!.health(d)).routes).sort().join(',')))).join(' | ')}`);
  }
  await sample();

  // -- judgement on n0, the daemon that lived through it all ------------------------------------
  const s0 = samples.filter((s) => s.node === 0 && s.pid === current[0]!.proc.pid);
  const warm = Math.min(5 * 60_000, (minutes * 60_000) / 6);
  const after = s0.filter((s) => s.t >= warm);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const lines: string[] = [];
  if (after.length >= 4) {
    const first = after.slice(0, 3);
    const last = after.slice(-3);
    const fdStart = first[0]!.fds;
    const fdEnd = last[last.length - 1]!.fds;
    const fdMax = Math.max(...after.map((s) => s.fds));
    const rssA = med(first.map((s) => s.rssMiB)), rssB = med(last.map((s) => s.rssMiB));
    const heapA = med(first.map((s) => s.heapMiB)), heapB = med(last.map((s) => s.heapMiB));
    lines.push(`n0 fds after warm-up ${fdStart}, at the end ${fdEnd}, max ${fdMax}`);
    lines.push(`n0 RSS after warm-up ${rssA.toFixed(1)} MiB, at the end ${rssB.toFixed(1)} MiB (max ${Math.max(...after.map((s) => s.rssMiB)).toFixed(1)})`);
    lines.push(`n0 heap after warm-up ${heapA.toFixed(1)} MiB, at the end ${heapB.toFixed(1)} MiB`);
    if (fdEnd > fdStart + 3) failures.push(`n0 open fds grew: ${fdStart} → ${fdEnd}`);
    const bound = (a: number) => a + Math.max(16, a * 0.15);
    if (rssB > bound(rssA)) failures.push(`n0 RSS grew: ${rssA.toFixed(1)} → ${rssB.toFixed(1)} MiB`);
    if (heapB > bound(heapA)) failures.push(`n0 heap grew: ${heapA.toFixed(1)} → ${heapB.toFixed(1)} MiB`);
    const slope = (ys: number[]) => {
      const xs = after.map((x) => x.t / 3_600_000);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length, my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0), sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
      return sxx ? sxy / sxx : 0;
    };
    const heapSlope = slope(after.map((x) => x.heapMiB)), rssSlope = slope(after.map((x) => x.rssMiB));
    lines.push(`n0 trend after warm-up: heap ${heapSlope.toFixed(1)} MiB/h, RSS ${rssSlope.toFixed(1)} MiB/h (least squares over ${after.length} samples)`);
    if (heapSlope > 3 && heapB > heapA + 2) failures.push(`n0 heap climbs steadily: ${heapSlope.toFixed(1)} MiB/h`);
    if (rssSlope > 8 && rssB > rssA + 4) failures.push(`n0 RSS climbs steadily: ${rssSlope.toFixed(1)} MiB/h`);
  } else {
    lines.push(`too few samples after warm-up (${after.length}) to judge growth; run longer`);
  }
  const cpu = s0.length >= 2 ? (s0[s0.length - 1]!.cpuS - s0[0]!.cpuS) / ((s0[s0.length - 1]!.t - s0[0]!.t) / 1000) : 0;
  lines.push(`n0 CPU ${(cpu * 100).toFixed(1)} % of one core on average`);
  lines.push(`traffic: tcp ${tally.tcpOk} rounds ok (mean ${(tally.tcpMbits / Math.max(1, tally.tcpOk)).toFixed(0)} Mbit/s), ${tally.tcpFail} failed; udp ${tally.udpOk} ok, ${tally.udpFail} failed; ping ${tally.pingSent - tally.pingLost}/${tally.pingSent} replies`);
  lines.push(`churn: ${tally.leasesPut} leases put, ${tally.leasesDeleted} deleted, the rest expired; ${tally.restarts} restarts`);
  if (tally.tcpOk < tally.tcpFail || tally.tcpOk === 0) failures.push('most TCP rounds failed');
  if (tally.udpOk < tally.udpFail || tally.udpOk === 0) failures.push('most UDP rounds failed');
  if (tally.pingSent === 0 || tally.pingLost / tally.pingSent > 0.05) failures.push(`ping lost ${tally.pingLost}/${tally.pingSent}`);
  for (const d of current) if (d.proc.exitCode !== null) failures.push(`${d.node.ns} exited (${d.proc.exitCode})`);
  log('--- summary ---');
  for (const l of lines) log(l);
  for (const f of failures) log(`FAIL: ${f}`);
  log(failures.length ? 'soak FAILED' : 'soak passed');
  return failures.length ? 1 : 0;
}

const hardStop = setTimeout(() => {
  log('hard deadline reached; tearing down');
  void cleanup().then(() => process.exit(2));
}, minutes * 60_000 + 5 * 60_000);
hardStop.unref();

async function cleanup() {
  await ds?.destroy().catch(() => undefined);
  await etcdDestroy?.().catch(() => undefined);
  await bed?.teardown().catch(() => undefined);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().then(() => process.exit(130)));

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (e: Error) => {
    log(`soak error: ${e.stack ?? e.message}`);
    await cleanup();
    process.exit(1);
  },
);
