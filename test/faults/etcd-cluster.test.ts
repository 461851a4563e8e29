/**
 * etcd as a real cluster: three members, each in its own namespace on the underlay; the daemons
 * are given all three endpoints. The leader is killed, then a member is cut off from its peers
 * (its clients can still reach it), then both come back. Throughout each fault, a ping stream crosses the
 * overlay; the nodes renew their leases through the survivors (short TTL, so renewals happen
 * during the test); a node that joins during each fault gets a subnet nobody else holds, and
 * every node learns it (which a watch stuck on an isolated member would not).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startEtcdCluster, type EtcdCluster } from '../bed/etcd-cluster.js';
import { startDaemons, tunAddress, until, type Daemon, type Daemons } from '../bed/daemons.js';

const PREFIX = '/coreos.com/network';
// renew every ~10 s; a lease survives 20 s of failed renewals
const LEASE_FLAGS = ['--subnet-lease-ttl=30s', '--subnet-lease-renew-margin=20s'];

let bed: Bed;
let etcd: EtcdCluster;
let ds: Daemons;
const live: Daemon[] = [];
const subnets: string[] = [];

/** etcd's view: subnet → PublicIP */
async function etcdLeases(): Promise<Map<string, string>> {
  const out = JSON.parse(await etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '-w', 'json'])) as { kvs?: { key: string; value: string }[] };
  return new Map((out.kvs ?? []).map((kv) => [
    Buffer.from(kv.key, 'base64').toString().slice(`${PREFIX}/subnets/`.length).replace('-', '/'),
    (JSON.parse(Buffer.from(kv.value, 'base64').toString()) as { PublicIP: string }).PublicIP,
  ]));
}

const renewals = async () => Promise.all(live.map(async (d) => Number((await ds.health(d)).lease?.renewals ?? 0)));

/** every daemon counted in `before` has renewed at least once more since */
async function allRenewedSince(before: number[], what: string) {
  await until(what, async () => (await renewals()).slice(0, before.length).every((r, i) => r > before[i]!), 60_000, 500);
}

/** a new node joins; its subnet must be unique in etcd and routed to by everyone else */
async function joinNode(octet: number): Promise<string> {
  const node = await bed.addHost(`j${octet}`, octet);
  const d = ds.start(node, LEASE_FLAGS);
  const subnet = await d.readySubnet(60_000);
  live.push(d);
  subnets.push(subnet);
  const leases = await etcdLeases();
  expect(leases.get(subnet)).toBe(node.underlayIp);
  // no subnet is held twice: one key per node, each with a distinct PublicIP
  const held = [...leases].filter(([, ip]) => live.some((x) => x.node.underlayIp === ip));
  expect(held).toHaveLength(live.length);
  expect(new Set(held.map(([, ip]) => ip)).size).toBe(live.length);
  expect(new Set(subnets).size).toBe(subnets.length);
  for (const s of subnets) expect(leases.has(s)).toBe(true);
  await until(`every node to route to the joiner ${subnet}`, async () => {
    for (const x of live) if (x !== d && !(subnet in (await ds.health(x)).routes)) return false;
    return true;
  }, 60_000, 500);
  await until(`the joiner ${subnet} to be reachable from node 0`, async () =>
    (await bed.exec(live[0]!.node.ns, 'ping', ['-n', '-q', '-c', '1', '-W', '1', tunAddress(subnet)]), true), 30_000, 250);
  return subnet;
}

/**
 * A ping stream from node 0 to node 1, 5 per second, for as long as the fault lasts: stop() ends
 * it with SIGINT (ping then prints its statistics) and returns what it counted. It fails if ping
 * had exited before being stopped, or sent fewer than 5 per second of the time it ran (less 20 %).
 */
function pingStream() {
  const startedAt = Date.now();
  const p = bed.spawn(live[0]!.node.ns, 'ping', ['-n', '-q', '-i', '0.2', '-W', '2', tunAddress(subnets[1]!)]);
  let out = '';
  p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    async stop() {
      expect(p.exitCode, `ping exited early: ${out}`).toBeNull();
      const ranS = (Date.now() - startedAt) / 1000;
      p.kill('SIGINT');
      await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      const sent = Number(m?.[1] ?? 0);
      expect(sent, out).toBeGreaterThanOrEqual(Math.floor(ranS * 5 * 0.8));
      return { sent, received: Number(m?.[2] ?? 0), out };
    },
  };
}

beforeAll(async () => {
  bed = await createBed({ nodes: 3, tag: 'ecl' });
  etcd = await startEtcdCluster(bed);
  await etcd.etcdctl(['put', `${PREFIX}/config`, '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}']);
  ds = startDaemons(bed, etcd.endpoints);
  for (const n of bed.nodes) live.push(ds.start(n, LEASE_FLAGS));
  for (const d of live) subnets.push(await d.readySubnet(60_000));
  await until('a full table everywhere', async () => (await Promise.all(live.map((d) => ds.health(d)))).every((h) => Object.keys(h.routes).length === 2), 30_000, 250);
});

afterAll(async () => {
  await ds?.destroy();
  await etcd?.destroy();
  await bed?.teardown();
});

describe('etcd as a three-member cluster', () => {
  it('the leader is killed: forwarding goes on, leases are renewed through the survivors, a joiner gets a free subnet', async () => {
    const stream = pingStream();
    const leader = await until('a leader', () => etcd.leader(), 20_000, 250);
    const before = await renewals();
    await leader.stop('SIGKILL');
    const next = await until('a new leader among the survivors', async () => {
      const l = await etcd.leader();
      return l && l !== leader && l;
    }, 30_000, 250);
    expect(next.running).toBe(true);
    await joinNode(20);
    await allRenewedSince(before, 'every node to renew with the old leader dead');
    await leader.start();
    const { sent, received, out } = await stream.stop();
    // forwarding never depended on etcd: at most a couple of replies lost to a loaded machine
    expect(sent - received, out).toBeLessThanOrEqual(3);
  });

  it('a member is cut off from its peers (clients still reach it): nodes renew and learn about a joiner', async () => {
    const stream = pingStream();
    // isolate a member that is not the leader, so the majority keeps working without an election
    const leader = await until('a leader', () => etcd.leader(), 30_000, 250);
    const victim = etcd.members.find((m) => m !== leader)!;
    const before = await renewals();
    await victim.isolate();
    const isolatedAt = Date.now();
    try {
      await joinNode(21);
      await allRenewedSince(before, 'every node to renew with a member isolated');
      // and every node's table equals what etcd holds
      const truth = [...(await etcdLeases()).keys()].sort();
      await until('every table to equal etcd', async () => {
        for (const d of live) {
          const own = subnets[live.indexOf(d)]!;
          if (JSON.stringify(Object.keys((await ds.health(d)).routes).sort()) !== JSON.stringify(truth.filter((s) => s !== own))) return false;
        }
        return true;
      }, 60_000, 500);
      // Once the member has noticed it lost its leader (an election timeout; a call already
      // waiting on it may still run into its 5 s deadline), no etcd call of any node may hang
      // there until its deadline: the member must refuse at once ("no leader") and the nodes
      // go elsewhere. (Without etcd's hasleader metadata every call that picks this member —
      // a third of them — waits 5 s and fails.)
      const graceEnd = isolatedAt + 8000;
      // watch two more renewals of every node (about 60 etcd calls) go by
      const r1 = await renewals();
      await allRenewedSince(r1.map((r) => r + 1), 'two more renewals everywhere with the member isolated');
      expect(Date.now()).toBeGreaterThan(graceEnd);
      const hung = live.flatMap((d) => d.logs.filter((l) => l.time > graceEnd && l.level >= 40 && /deadline/i.test(String(l.err ?? ''))));
      expect(hung.map((l) => `${l.msg}: ${String(l.err)}`)).toEqual([]);
    } finally {
      await victim.heal();
    }
    const { sent, received, out } = await stream.stop();
    expect(sent - received, out).toBeLessThanOrEqual(3);
  });

  it('the leader\'s link goes down and comes back: nodes keep forwarding and renewing', async () => {
    const stream = pingStream();
    const leader = await until('a leader', () => etcd.leader(), 30_000, 250);
    const before = await renewals();
    await bed.exec(leader.node.ns, 'ip', ['link', 'set', 'eth0', 'down']);
    try {
      await allRenewedSince(before, 'every node to renew with the leader unreachable');
    } finally {
      await bed.exec(leader.node.ns, 'ip', ['link', 'set', 'eth0', 'up']);
    }
    await until('all three members healthy again', async () => (await etcd.status()).length === 3, 30_000, 500);
    const { sent, received, out } = await stream.stop();
    expect(sent - received, out).toBeLessThanOrEqual(3);
    // nothing was lost from etcd: one lease per live node (the member that came back may take
    // a few seconds more to serve reads: ask until one answers)
    const leases = await until('etcd to answer a listing', () => etcdLeases(), 30_000, 500);
    for (const s of subnets) expect(leases.has(s)).toBe(true);
  });
});

