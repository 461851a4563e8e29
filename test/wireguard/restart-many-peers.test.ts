/**
 * A node with 50 peers restarted (issue 16): one real `tulle run` daemon in encrypted mode, and 50
 * WireGuard peers — 50 leases in etcd, 50 keys, 50 underlay addresses — played by one light
 * process speaking the real protocol on real sockets (test/bed/wg-peers.ts). Every peer pings
 * the node every 100 ms and keeps sealing for its session across the node's `kill -9`, as a
 * WireGuard peer with fixed timers does (they would start a handshake themselves after 15 s). The
 * restarted node must bring every peer back within a few seconds of its readiness, and must not flood: its initiations, as the peers receive them,
 * stay within the device-wide pace (tuning.ts), and no peer gets more than two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCluster, PREFIX, tunAddress, until, type Cluster } from '../integration/cluster.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { INITIATION_BURST, INITIATIONS_PER_SECOND } from '../../src/wireguard/tuning.js';
import type { WgPeersConfig } from '../bed/wg-peers.js';
import type { BedNode } from '../bed/bed.js';

const N = 50;
/** "within a few seconds": 50 initiations at the pace take 0.8 s; the rest is a loaded machine */
const ALL_BACK_MS = 4000;

interface PeerEvent {
  e: string;
  peer: number;
  at: number;
  sentAt?: number;
}

let c: Cluster;
let peersNode: BedNode;
let dir: string;

beforeAll(async () => {
  c = await createCluster({ nodes: 1, tag: 'rmp', config: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}' });
  peersNode = await c.bed.addHost('peers', 3);
  dir = mkdtempSync(path.join(tmpdir(), 'tulle-peers-'));
});

afterAll(async () => {
  await c?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a node with 50 WireGuard peers, killed and restarted', () => {
  it('brings every peer back within a few seconds of ready, with paced initiations', async () => {
    const peers = Array.from({ length: N }, (_, i) => ({ keys: generateKeyPair(), address: `198.18.0.${100 + i}`, overlay: `10.244.${100 + i}.0` }));
    for (const p of peers) await c.bed.exec(peersNode.ns, 'ip', ['addr', 'add', `${p.address}/24`, 'dev', 'eth0']);
    for (let i = 0; i < N; i += 10) {
      await Promise.all(peers.slice(i, i + 10).map((p) => {
        const lease = { PublicIP: p.address, PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: Buffer.from(p.keys.publicKey).toString('base64'), Port: 51820 } };
        return c.etcd.etcdctl(['put', `${PREFIX}/subnets/${p.overlay}-24`, JSON.stringify(lease)]);
      }));
    }
    const node = c.bed.nodes[0]!;
    let d = c.startDaemon(node, [], process.env, { health: true });
    const subnet = await d.readySubnet(60_000);
    await until('the node to route to all 50 peers', async () => Object.keys((await c.health(d)).routes).length === N, 30_000);
    const lease = JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnet.replace('/', '-')}`, '--print-value-only']));

    const cfg: WgPeersConfig = {
      target: { publicKey: lease.BackendData.PublicKey, address: node.underlayIp, port: 51820, overlay: tunAddress(subnet) },
      peers: peers.map((p) => ({ privateKey: Buffer.from(p.keys.privateKey).toString('base64'), address: p.address, overlay: p.overlay })),
      pingMs: 100,
      seconds: 90,
    };
    const file = path.join(dir, 'peers.json');
    writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
    const proc = c.bed.spawn(peersNode.ns, process.execPath, [path.resolve('dist/test/bed/wg-peers.js'), file]);
    const events: PeerEvent[] = [];
    let buf = '';
    let stderr = '';
    proc.stderr!.on('data', (x: Buffer) => (stderr = (stderr + x.toString()).slice(-2000)));
    proc.stdout!.on('data', (x: Buffer) => {
      buf += x.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, nl)) as PeerEvent);
        buf = buf.slice(nl + 1);
      }
    });
    const repliedSince = (t: number) => {
      const first = new Map<number, PeerEvent>();
      for (const e of events) if (e.e === 'reply' && e.sentAt! > t && !first.has(e.peer)) first.set(e.peer, e);
      return first;
    };
    const t0 = Date.now();
    await until(`replies to all ${N} peers before the restart (${stderr})`, () => repliedSince(t0).size === N, 60_000, 100);

    d.proc.kill('SIGKILL');
    await d.exit;
    const down = Date.now();
    d = c.startDaemon(node, [], process.env, { health: true });
    const ready = (await d.waitLog((l) => l.msg === 'node ready', 60_000)).time;
    const first = await until('every peer to get a reply to an echo sent after the kill', () => {
      const f = repliedSince(down);
      return f.size === N && f;
    }, 40_000, 100).catch((e: Error) => {
      throw new Error(`${e.message}: ${repliedSince(down).size} of ${N} back`);
    });
    const afterReady = [...first.values()].map((e) => e.at - ready).sort((a, b) => a - b);
    const inits = events.filter((e) => e.e === 'initiation' && e.at > down).map((e) => e.at).sort((a, b) => a - b);
    const perPeer = new Map<number, number>();
    for (const e of events) if (e.e === 'initiation' && e.at > down && e.at < ready + 5000) perPeer.set(e.peer, (perPeer.get(e.peer) ?? 0) + 1);
    const busiestSecond = Math.max(0, ...inits.map((t) => inits.filter((u) => u >= t && u < t + 1000).length));
    const h = (await c.health(d)).backendStatus.handshakes;
    const figures = {
      peers: N, startMs: ready - down,
      backAfterReadyMs: { first: Math.round(afterReady[0]!), median: Math.round(afterReady[N >> 1]!), last: Math.round(afterReady.at(-1)!) },
      initiationsReceivedByPeers: inits.length, busiestSecond,
      initiationsFromReadyMs: inits.length ? [Math.round(inits[0]! - ready), Math.round(inits.at(-1)! - ready)] : [],
      node: { initiations_sent: h.initiations_sent, initiations_paced: h.initiations_paced, initiations_on_start: h.initiations_on_start, unknown_index_handshakes: h.unknown_index_handshakes, initiations_received: h.initiations_received },
    };
    console.log(`restart with ${N} peers ${JSON.stringify(figures)}`);
    expect(afterReady.at(-1)!).toBeLessThan(ALL_BACK_MS);
    // paced: never more than the burst plus one second's worth in any second, at most two per peer
    expect(busiestSecond).toBeLessThanOrEqual(INITIATION_BURST + INITIATIONS_PER_SECOND);
    expect(Math.max(...perPeer.values())).toBeLessThanOrEqual(2);
    expect(h.initiations_sent).toBeGreaterThanOrEqual(N);
    expect(h.initiations_sent).toBeLessThanOrEqual(N + 10);
    // more than a burst was due at once, so the pace held some back
    expect(h.initiations_paced + h.initiations_on_start).toBeGreaterThan(0);
    await import('../bed/bed.js').then((m) => m.stopProcess(proc));
  });
});
