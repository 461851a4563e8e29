/**
 * Interop with a dual-stack flanneld node in wireguard Mode "separate" (flanneld's default), made
 * of stock parts: two wireguard-go devices in one namespace with the SAME private key, one on
 * ListenPort 51820 (flannel-wg: the IPv4 tunnel) and one on ListenPortV6 51821 (flannel-wg-v6:
 * the IPv6 tunnel), each with the tulle node as its peer the way flanneld sets it up
 * (pkg/backend/wireguard/wireguard_network.go): v4 device → PublicIP:BackendData.Port with the
 * IPv4 subnet, v6 device → [PublicIPv6]:BackendV6Data.Port with the IPv6 subnet, keepalive 25 s;
 * and its lease in etcd as flanneld writes it. A `tulle run` daemon with default flags and the
 * default Mode peers with it: both families ping both ways, an exact 4 MB transfer in each, and
 * each family's bytes show on its own tunnel — on both sides.
 *
 * Underlay 198.18.0.0/24 + fd00:198:18::/64 (the bed's), overlay 10.244.0.0/16 + fd00:10:244::/56.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, until, type Cluster, type Daemon } from '../integration/cluster.js';
import { tcpTransfer } from '../bed/transfer.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { startWireguardGo, type WgGo } from './wireguard-go.js';

const V6NET = 'fd00:10:244::/56';
const CONFIG = JSON.stringify({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: V6NET, Backend: { Type: 'wireguard' } });
const WG_SUBNET = '10.244.200.0/24';
const WG_SUBNET6 = 'fd00:10:244:c8::/64';
const WG_ADDRESS = '10.244.200.0';
const WG_ADDRESS6 = 'fd00:10:244:c8::';
const BYTES = 4 << 20;

let c: Cluster;
let wg4: WgGo | undefined;
let wg6: WgGo | undefined;
let d: Daemon;
let own: { v4: string; v6: string; value: Record<string, any> };

/** the tulle peer's line of `wg show dump`: endpoint, latest handshake, rx, tx */
async function peerLine(dev: WgGo): Promise<{ endpoint: string; handshake: number; rx: number; tx: number }> {
  const line = (await dev.show()).trim().split('\n')[1] ?? '';
  const f = line.split('\t');
  return { endpoint: f[2] ?? '', handshake: Number(f[4]), rx: Number(f[5]), tx: Number(f[6]) };
}

/** bytes tulle sent to each of the peer's tunnels (by the subnet routed to it), from /metrics */
async function tulleSent(): Promise<{ v4: number; v6: number }> {
  const text = await c.metrics(d);
  const of = (subnet: string) => Number(new RegExp(`^tulle_peer_bytes_total\\{subnet="${subnet.replace(/[.]/g, '\\.')}",direction="outbound"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { v4: of(WG_SUBNET), v6: of(WG_SUBNET6) };
}

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'wgs', config: CONFIG, ipv6: 'dual' });
  const [n0, n1] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
  // flanneld's one key file, both devices
  const key = generateKeyPair();
  wg4 = await startWireguardGo(c.bed, n1, { address: `${WG_ADDRESS}/32`, network: '10.244.0.0/16', port: 51820, mtu: 1420, privateKey: key.privateKey });
  wg6 = await startWireguardGo(c.bed, n1, { address: `${WG_ADDRESS6}/128`, network: V6NET, port: 51821, mtu: 1420, privateKey: key.privateKey, suffix: 'v6' });
  const pub = Buffer.from(key.publicKey).toString('base64');
  const lease = {
    PublicIP: n1.underlayIp, PublicIPv6: n1.underlayIp6, BackendType: 'wireguard',
    BackendData: { PublicKey: pub, Port: 51820 }, BackendV6Data: { PublicKey: pub, Port: 51821 },
  };
  await c.etcd.etcdctl(['put', `${PREFIX}/subnets/${WG_SUBNET.replace('/', '-')}&${WG_SUBNET6.replace('/', '-')}`, JSON.stringify(lease)]);
  d = c.startDaemon(n0, [], process.env, { health: true });
  await d.readySubnet(90_000);
  const out = (await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`])).trim().split('\n');
  for (let i = 0; i + 1 < out.length; i += 2) {
    const value = JSON.parse(out[i + 1]!) as Record<string, any>;
    if (value.PublicIP !== n0.underlayIp) continue;
    const [v4, v6] = out[i]!.slice(`${PREFIX}/subnets/`.length).split('&').map((s) => s.replace(/-(\d+)$/, '/$1')) as [string, string];
    own = { v4, v6, value };
  }
  const tulleKey = Buffer.from(own.value.BackendData.PublicKey, 'base64');
  // as flanneld's handleSubnetEvents in Mode separate: each device, the peer's tunnel of its family
  await wg4.addPeer({ publicKey: tulleKey, endpoint: `${own.value.PublicIP}:${own.value.BackendData.Port}`, allowedIps: own.v4, persistentKeepalive: 25 });
  await wg6.addPeer({ publicKey: tulleKey, endpoint: `[${own.value.PublicIPv6}]:${own.value.BackendV6Data.Port}`, allowedIps: own.v6, persistentKeepalive: 25 });
  await until('tulle to route to both tunnels', async () => Object.keys((await c.health(d)).routes).length === 2, 30_000);
}, 240_000);

afterAll(async () => {
  await wg4?.stop();
  await wg6?.stop();
  await c?.teardown();
}, 60_000);

describe('interop with a flanneld-shaped node in Mode "separate" (two wireguard-go devices, one key)', () => {
  it("writes flanneld's lease (BackendData on 51820, BackendV6Data on 51821, one key) and routes each subnet to its tunnel", async () => {
    const [, n1] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    expect(own.value.BackendData.Port).toBe(51820);
    expect(own.value.BackendV6Data).toEqual({ PublicKey: own.value.BackendData.PublicKey, Port: 51821 });
    expect((await c.health(d)).routes).toEqual({ [WG_SUBNET]: `${n1!.underlayIp}:51820`, [WG_SUBNET6]: `${n1!.underlayIp6}:51821` });
  });

  it('pings over IPv4 and IPv6, both ways; each device has a handshake with tulle at the endpoint of its family', async () => {
    const [n0, n1] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    const tulle4 = own.v4.split('/')[0]!;
    const tulle6 = own.v6.split('/')[0]!;
    for (const [from, to] of [[n0, WG_ADDRESS], [n0, WG_ADDRESS6], [n1, tulle4], [n1, tulle6]] as const) {
      const p = await c.ping(from!, to, 3, 3);
      expect(p.ok, `${from!.ns} → ${to}: ${p.out}`).toBe(true);
      expect(p.out).toMatch(/3 packets transmitted, 3 received/);
    }
    const [p4, p6] = [await peerLine(wg4!), await peerLine(wg6!)];
    expect(p4.endpoint).toBe(`${n0!.underlayIp}:51820`);
    expect(p6.endpoint).toBe(`[${n0!.underlayIp6}]:51821`);
    expect(p4.handshake).toBeGreaterThan(0);
    expect(p6.handshake).toBeGreaterThan(0);
    // two sessions with one key: tulle has a peer per tunnel, each with its own session
    const sessions = (await c.health(d)).backendStatus.sessions as Record<string, number>;
    expect(Object.values(sessions).filter((n) => n > 0)).toHaveLength(2);
  });

  it('moves 4 MB exactly (SHA-256) in each family, each on its own tunnel by both sides\' counters', async () => {
    const [n0, n1] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    for (const [to, family] of [[WG_ADDRESS6, 'v6'], [WG_ADDRESS, 'v4']] as const) {
      const other = family === 'v4' ? 'v6' : 'v4';
      const before = { tulle: await tulleSent(), v4: await peerLine(wg4!), v6: await peerLine(wg6!) };
      const t = await tcpTransfer(c.bed, n0!, n1!, to, BYTES, 60);
      expect(t, `to ${to}`).toMatchObject({ ok: true, bytes: BYTES });
      expect(t.receivedSha).toBe(t.sentSha);
      const after = { tulle: await tulleSent(), v4: await peerLine(wg4!), v6: await peerLine(wg6!) };
      // tulle sealed the data for the family's tunnel and wireguard-go's device of that family opened it
      expect(after.tulle[family] - before.tulle[family], `tulle → ${family} tunnel`).toBeGreaterThan(BYTES);
      expect(after[family].rx - before[family].rx, `wireguard-go ${family} device rx`).toBeGreaterThan(BYTES);
      // the other tunnel: at most keepalives and a handshake
      expect(after.tulle[other] - before.tulle[other], `tulle → ${other} tunnel`).toBeLessThan(64 << 10);
      expect(after[other].rx - before[other].rx, `wireguard-go ${other} device rx`).toBeLessThan(64 << 10);
    }
  });
});
