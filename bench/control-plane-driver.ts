/**
 * The etcd side of `npm run bench:control-plane` (and of test/integration/control-plane-scale):
 * runs inside etcd's namespace (the only place that reaches it) and takes one JSON command per
 * stdin line, answering one JSON line on stdout each:
 *
 *   {"cmd":"config","value":"{...}"}                 put <prefix>/config
 *   {"cmd":"write","from":0,"count":10000}           leases for simulated nodes from..from+count-1,
 *                                                    as flanneld writes them: one etcd lease (TTL
 *                                                    24 h) each, the value attached to it
 *   {"cmd":"join","index":10000}                     one more node's lease, create-if-absent;
 *                                                    answers t0 (before the write) and the subnet
 *   {"cmd":"storm","from":20000,"count":200,"deadlineMs":60000}
 *                                                    `count` LeaseManagers (tulle's own, one etcd
 *                                                    client each) acquire at once: subnets, times;
 *                                                    those without a lease at the deadline give up
 *   {"cmd":"delete","from":0,"count":100}            deletes those simulated nodes' leases
 *   {"cmd":"list"}                                   every lease: subnet → PublicIP
 *   {"cmd":"metrics"}                                a few of etcd's own /metrics
 *
 * Simulated node i owns /SUBNET_LEN subnet number i+1 of the network, public IP 198.19.(i>>8).(i&255).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { readNetworkConfig } from '../src/config/network-config.js';
import { LeaseManager } from '../src/lease/lease-manager.js';
import { etcdRegistry } from '../src/registry/etcd-registry.js';
import { realClock } from '../src/util/clock.js';
import { formatValue, parseValue } from '../src/util/ip.js';
import { summariseProfile } from './cpu-profile.js';

// IPv4 as plain numbers: the driver writes tens of thousands of keys
const ip4ToInt = (text: string): number => Number(parseValue(text, 4).value);
const intToIp4 = (n: number): string => formatValue(4, BigInt(n >>> 0));
const net4Size = (len: number): number => 2 ** (32 - len);
const formatNet4 = (n: { base: number; len: number }): string => `${intToIp4(n.base)}/${n.len}`;

const endpoint = process.argv[2] ?? 'http://198.18.0.2:2379';
const prefix = process.argv[3] ?? '/coreos.com/network';
const TTL_S = 24 * 3600;
const CONCURRENCY = 128;

const client = new Etcd3({ hosts: endpoint });
let network = { base: ip4ToInt('10.244.0.0'), len: 16, subnetLen: 30 };
let configText = '';

export function simulatedSubnet(i: number, net = network): string {
  return formatNet4({ base: net.base + (i + 1) * net4Size(net.subnetLen), len: net.subnetLen });
}
const publicIp = (i: number) => intToIp4(ip4ToInt('198.19.0.0') + i);
const leaseValue = (i: number) => JSON.stringify({ PublicIP: publicIp(i), PublicIPv6: null, BackendType: 'udp' });
const key = (subnet: string) => `${prefix}/subnets/${subnet.replace('/', '-')}`;

async function writeOne(i: number, ifAbsent: boolean): Promise<boolean> {
  const id = (await client.leaseClient.leaseGrant({ TTL: TTL_S, ID: 0 })).ID;
  const k = key(simulatedSubnet(i));
  if (!ifAbsent) {
    await client.put(k).value(leaseValue(i)).lease(id).exec();
    return true;
  }
  const r = await client.if(k, 'Version', '==', 0).then(client.put(k).value(leaseValue(i)).lease(id)).commit();
  if (!r.succeeded) await client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
  return r.succeeded;
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** `count` nodes acquire at once; those still without a lease at the deadline are stopped */
async function storm(from: number, count: number, deadlineMs: number) {
  const config = readNetworkConfig(configText).config;
  let lost = 0;
  const errors: Record<string, number> = {}; // etcd calls that failed while acquiring, by message
  let t0 = Date.now();
  const log = pino({ level: 'debug' }, {
    write: (line: string) => {
      if (line.includes('lost the race')) lost++;
      const l = JSON.parse(line) as { level: number; err?: string };
      if (l.level >= 40 && l.err) {
        const k = l.err.replace(/\(http[^)]*\)/, '').replace(/[,:]? *(Deadline exceeded after|after|name resolution|LB pick|remote_addr|metadata).*$/i, '').slice(0, 80);
        errors[k] = (errors[k] ?? 0) + 1;
      }
    },
  });
  // every full listing a joiner makes, counted: O(N) each, what a storm's cost grows with
  let listings = 0;
  // when each joiner's first full listing came back: the listing phase vs the creates after it
  const listedMs: number[] = [];
  const listed = <T>(k: number, p: Promise<T>) => p.then((x) => ((listedMs[k] ??= Date.now() - t0), x));
  const regs = Array.from({ length: count }, (_, k) => {
    const r = etcdRegistry({ endpoints: [endpoint], prefix });
    return { ...r, listSubnets: () => (listings++, listed(k, r.listSubnets())), listSubnetPages: () => (listings++, listed(k, r.listSubnetPages!())) };
  });
  const lms = regs.map((registry, k) => new LeaseManager({
    registry, config, attrs: { PublicIP: publicIp(from + k), PublicIPv6: null, BackendType: 'udp' },
    ttlMs: TTL_S * 1000, renewMarginMs: 3600_000, clock: realClock, random: Math.random, log,
  }));
  const profiler = process.env.TULLE_DRIVER_PROF_DIR ? await startProfile() : undefined;
  t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const timer = setTimeout(() => lms.forEach((lm) => void lm.stop()), deadlineMs);
  const results = await Promise.all(lms.map(async (lm) => {
    try {
      const l = await lm.acquire();
      return { subnet: l.subnet, ms: Date.now() - t0 };
    } catch {
      return undefined; // stopped at the deadline
    }
  }));
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Date.now() - t0;
  const profile = profiler ? await profiler() : undefined;
  await Promise.all(lms.map((lm) => lm.stop()));
  await Promise.all(regs.map((r) => r.close()));
  const got = results.filter((r) => r !== undefined);
  // this one process plays all the joiners: its CPU per wall second says whether it was the limit
  const firstListed = listedMs.filter((x) => x !== undefined).sort((a, b) => a - b);
  return { t0, lost, listings, listedMsMedian: firstListed[firstListed.length >> 1] ?? NaN, listedMsMax: firstListed.at(-1) ?? NaN, errors, ...(profile ? { profile } : {}), driverCpuMs: Math.round((cpu.user + cpu.system) / 1000), wallMs, acquired: got.length, subnets: got.map((r) => r.subnet), ms: got.map((r) => r.ms) };
}

/** TULLE_DRIVER_PROF_DIR=dir: the storm runs under the V8 profiler; its top (self time by function)
 * is in the answer, the whole profile in dir/storm-<time>.cpuprofile */
async function startProfile(): Promise<() => Promise<string>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async () => {
    const { profile } = await post('Profiler.stop');
    session.disconnect();
    writeFileSync(path.join(process.env.TULLE_DRIVER_PROF_DIR!, `storm-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    return summariseProfile(profile);
  };
}

const METRICS = [
  /^etcd_mvcc_db_total_size_in_bytes /, /^etcd_debugging_mvcc_keys_total /, /^etcd_debugging_mvcc_watcher_total /,
  /^etcd_debugging_mvcc_events_total /, /^etcd_debugging_mvcc_put_total /, /^etcd_debugging_mvcc_txn_total /,
  /^etcd_debugging_mvcc_range_total /, /^etcd_server_proposals_committed_total /, /^etcd_debugging_lease_granted_total /,
  /^etcd_debugging_lease_renewed_total /, /^etcd_debugging_lease_revoked_total /,
];

async function metrics() {
  const text = await (await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const out: Record<string, number> = {};
  let grpc = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('grpc_server_handled_total{')) grpc += Number(line.split(' ').pop());
    if (METRICS.some((re) => re.test(line))) out[line.split(' ')[0]!] = Number(line.split(' ').pop());
  }
  out.grpc_server_handled_total = grpc;
  return out;
}

async function handle(c: Record<string, any>): Promise<unknown> {
  switch (c.cmd) {
    case 'config': {
      configText = String(c.value);
      const cfg = readNetworkConfig(configText).config;
      const [addr, len] = cfg.ipv4!.network.split('/');
      network = { base: ip4ToInt(addr!), len: Number(len), subnetLen: cfg.ipv4!.subnetLen };
      await client.put(`${prefix}/config`).value(configText).exec();
      return {};
    }
    case 'write': {
      const t0 = Date.now();
      await pool(Array.from({ length: c.count }, (_, k) => c.from + k), CONCURRENCY, (i) => writeOne(i, false));
      return { ms: Date.now() - t0 };
    }
    case 'join': {
      const t0 = Date.now();
      const ok = await writeOne(c.index, true);
      return { t0, t1: Date.now(), created: ok, subnet: simulatedSubnet(c.index) };
    }
    case 'delete': {
      let deleted = 0;
      await pool(Array.from({ length: c.count }, (_, k) => c.from + k), CONCURRENCY, async (i) => {
        const r = await client.delete().key(key(simulatedSubnet(i))).exec();
        deleted += Number(r.deleted); // (after the await: `deleted +=` before it would read a stale sum)
      });
      return { deleted };
    }
    case 'storm':
      return storm(c.from, c.count, c.deadlineMs ?? 60_000);
    case 'list': {
      const kvs = await client.getAll().prefix(`${prefix}/subnets/`).strings();
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(kvs)) out[k.slice(prefix.length + 9).replace('-', '/')] = (JSON.parse(v) as { PublicIP: string }).PublicIP;
      return { leases: out };
    }
    case 'metrics':
      return metrics();
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

// one command at a time, in order
let chain = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(async () => {
    let reply;
    try {
      reply = { ok: true, ...((await handle(JSON.parse(line))) as object) };
    } catch (e) {
      reply = { ok: false, error: (e as Error).message };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  });
}).on('close', () => void chain.then(() => client.close()).then(() => process.exit(0)));
