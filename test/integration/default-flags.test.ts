/**
 * A node run as a user runs it — flanneld's defaults, no health port — waits as long as it has to
 * and joins once it can, whatever it waits for (issue 15: it used to leave silently, status 13,
 * whenever it waited with nothing else open): etcd up without the network config; etcd not
 * reachable at start; both there. Readiness is what a user sees: the 'node ready' line,
 * subnet.env, the TUN's address. Every way out says why in the log.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}';
/** longer than the node's retry interval (250 ms doubling to 5 s) several times over */
const WAIT_MS = 8000;

let c: Cluster;
const joined: Array<{ d: Daemon; subnet: string }> = [];

beforeAll(async () => {
  c = await createCluster({ nodes: 3, tag: 'dflt', config: '' });
});

afterAll(async () => {
  await c?.teardown();
});

/** ready as a user sees it: the log line and subnet.env (readySubnet), and the TUN's address */
async function ready(d: Daemon): Promise<string> {
  const subnet = await d.readySubnet(60_000);
  const addrs = (await c.bed.exec(d.node.ns, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'tulle0'])).stdout;
  expect(addrs).toContain(`inet ${tunAddress(subnet)}/32`);
  expect(d.proc.exitCode).toBeNull();
  joined.push({ d, subnet });
  return subnet;
}

describe('tulle run with default flags (no health port) waits and joins', () => {
  it('etcd up but no network config yet: waits, joins once the config is put', async () => {
    const d = c.startDaemon(c.bed.nodes[0]!);
    await d.waitLog((l) => /no network config/.test(l.msg));
    await d.survives(WAIT_MS);
    await c.etcd.etcdctl(['put', `${PREFIX}/config`, CONFIG]);
    await ready(d);
  });

  it('etcd not reachable at start: keeps retrying, joins once etcd starts', async () => {
    await c.etcd.stop();
    try {
      const d = c.startDaemon(c.bed.nodes[1]!);
      await d.waitLog((l) => /cannot reach etcd/.test(l.msg));
      await d.survives(WAIT_MS);
      // it keeps trying in silence (one log line per change of reason, as for a bad config):
      // joining once etcd is back is what shows the retries went on
      expect(d.logs.filter((l) => /cannot reach etcd/.test(l.msg)).length).toBeGreaterThanOrEqual(1);
      await c.etcd.start();
      await ready(d);
    } finally {
      if (!c.etcd.running) await c.etcd.start();
    }
  });

  it('etcd and config there: joins; the three reach each other; SIGTERM ends each with exit 0 and says so', async () => {
    await ready(c.startDaemon(c.bed.nodes[2]!));
    expect(new Set(joined.map((j) => j.subnet)).size).toBe(3);
    await until('every node to route to the other two', () => joined.every(({ d }) => d.routeCount() === 2), 30_000);
    for (const a of joined)
      for (const b of joined) if (a !== b) expect((await c.ping(a.d.node, tunAddress(b.subnet), 3, 2)).ok, `${a.d.node.ns} → ${b.subnet}`).toBe(true);
    for (const { d } of joined) {
      d.proc.kill('SIGTERM');
      expect(await d.exit).toBe(0);
      expect(d.logs.at(-1)).toMatchObject({ msg: 'exiting', exitCode: 0, signal: 'SIGTERM' });
    }
  });

  it('an uncaught exception in a running daemon: a fatal line with a code, cleanup, exit 1', async () => {
    const n = c.bed.nodes[0]!;
    const preload = `--import=${path.resolve('test/bed/throw-on-sigusr2.mjs')}`;
    const d = c.startDaemon(n, [], { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS, preload].filter(Boolean).join(' ') });
    const subnet = await ready(d);
    d.proc.kill('SIGUSR2');
    expect(await d.exit).toBe(1);
    expect(d.logs.find((l) => l.level === 60)).toMatchObject({ code: 'ERR_TULLE_UNCAUGHT', exitCode: 1, msg: expect.stringContaining('thrown on SIGUSR2 by the test') });
    // the cleanup of a stop ran: no TUN, no overlay route; the lease stays for the next start
    expect(d.logs.some((l) => /node stopped/.test(l.msg))).toBe(true);
    const links = JSON.parse((await c.bed.exec(n.ns, 'ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
    expect(links.map((l) => l.ifname)).not.toContain('tulle0');
    expect(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnet.replace('/', '-')}`, '--print-value-only'])).toContain(n.underlayIp);
  });
});
