/**
 * Dual stack and IPv6, end to end with real `tulle run` daemons, real etcd and namespaces, in
 * both modes (plain `udp`, encrypted `wireguard`), with the network configs a flannel user writes:
 *
 *   dual stack    {"Network": …, "EnableIPv6": true, "IPv6Network": …} over a dual-stack underlay:
 *                 leases and subnet.env as flanneld writes them, IPv4 and IPv6 ping and an exact
 *                 TCP transfer in each family between the nodes' TUN addresses; wireguard with
 *                 the default Mode ("separate"): two tunnels, each family's traffic on its own
 *   IPv6 only     {"EnableIPv4": false, "EnableIPv6": true, …} over an IPv6-only underlay (etcd
 *                 too): ping, MTU-sized packets with DF (the IPv6 underlay's overhead), TCP
 *
 * Underlay fd00:198:18::/64 (and 198.18.0.0/24), overlay 10.244.0.0/16 and fd00:10:244::/56.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hex, ipv6Udp } from '../bed/craft.js';
import { waitForOutput } from '../bed/proc.js';
import { REPO_ROOT } from '../bed/daemons.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpTransfer } from '../bed/transfer.js';
import { createCluster, PREFIX, until, type Cluster, type Daemon } from './cluster.js';

const V6NET = 'fd00:10:244::/56';
const dualConfig = (backend: object) => JSON.stringify({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: V6NET, Backend: backend });
const v6Config = (backend: object) => JSON.stringify({ EnableIPv4: false, EnableIPv6: true, IPv6Network: V6NET, Backend: backend });

interface Ready {
  /** the TUN addresses: each subnet's network address */
  v4: string | undefined;
  v6: string;
  env: Record<string, string>;
}

/** 'node ready', then subnet.env: what a CNI plugin reads */
async function ready(d: Daemon): Promise<Ready> {
  const line = await d.waitLog((l) => l.msg === 'node ready', 120_000);
  const env = Object.fromEntries(readFileSync(`${d.dir}/subnet.env`, 'utf8').trim().split('\n').map((l) => l.split('=') as [string, string]));
  const v6Subnet = String(line.ipv6Subnet);
  const v4Subnet = line.subnet === v6Subnet ? undefined : String(line.subnet);
  return { v4: v4Subnet?.split('/')[0], v6: v6Subnet.split('/')[0]!, env };
}

async function leases(c: Cluster): Promise<Array<{ name: string; value: Record<string, any> }>> {
  const out = (await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`])).trim().split('\n');
  const r = [];
  for (let i = 0; i + 1 < out.length; i += 2) r.push({ name: out[i]!.slice(`${PREFIX}/subnets/`.length), value: JSON.parse(out[i + 1]!) as Record<string, any> });
  return r;
}

const MODES = [
  ['udp', { Type: 'udp' }],
  ['wireguard', { Type: 'wireguard' }],
] as const;

describe.each(MODES)('dual stack, %s', (mode, backend) => {
  let c: Cluster;
  let d: Daemon[];
  let r: Ready[];
  beforeAll(async () => {
    c = await createCluster({ nodes: 2, config: dualConfig(backend), tag: 'ds', ipv6: 'dual' });
    d = c.bed.nodes.map((n) => c.startDaemon(n, [], process.env, { health: true })); // health: to read routes and per-peer counters
    r = await Promise.all(d.map(ready));
  }, 240_000);
  afterAll(async () => {
    await c?.teardown();
  }, 60_000);

  it('writes leases keyed <v4>-24&<v6>-64 with PublicIPv6 (and BackendV6Data), and subnet.env with the IPv6 pair', async () => {
    const ls = await leases(c);
    expect(ls).toHaveLength(2);
    for (const [i, n] of c.bed.nodes.entries()) {
      const l = ls.find((x) => x.value.PublicIP === n.underlayIp)!;
      expect(l.name).toBe(`${r[i]!.v4}-24&${r[i]!.v6}-64`);
      expect(l.name).toMatch(/^10\.244\.\d+\.0-24&fd00:10:244:[0-9a-f]+::-64$/);
      expect(l.value.PublicIPv6).toBe(n.underlayIp6);
      if (mode === 'wireguard') {
        expect(Object.keys(l.value)).toEqual(['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data']);
        expect(l.value.BackendV6Data.PublicKey).toBe(l.value.BackendData.PublicKey);
        expect([l.value.BackendData.Port, l.value.BackendV6Data.Port]).toEqual([51820, 51821]); // ListenPort, ListenPortV6
      } else {
        expect(Object.keys(l.value)).toEqual(['PublicIP', 'PublicIPv6']); // flanneld's udp backend: no BackendType
      }
      const env = r[i]!.env;
      expect(Object.keys(env)).toEqual(['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET', 'FLANNEL_MTU', 'FLANNEL_IPMASQ']);
      expect(env.FLANNEL_IPV6_NETWORK).toBe(V6NET);
      expect(env.FLANNEL_IPV6_SUBNET).toBe(`${r[i]!.v6}1/64`);
      expect(env.FLANNEL_MTU).toBe(mode === 'udp' ? '1472' : '1420');
    }
  });

  it('pings over IPv4 and over IPv6, both ways', async () => {
    for (const [from, to] of [[0, 1], [1, 0]] as const) {
      for (const addr of [r[to]!.v4!, r[to]!.v6]) {
        const p = await c.ping(c.bed.nodes[from]!, addr, 3, 3);
        expect(p.ok, `${c.bed.nodes[from]!.ns} → ${addr}: ${p.out}`).toBe(true);
        expect(p.out).toMatch(/3 packets transmitted, 3 received/);
      }
    }
  });

  it('moves 4 MB over TCP exactly, in each family', async () => {
    const [a, b] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    for (const to of [r[1]!.v4!, r[1]!.v6]) {
      const t = await tcpTransfer(c.bed, a!, b!, to, 4 << 20, 60);
      expect(t, `to ${to}`).toMatchObject({ ok: true, bytes: 4 << 20 });
    }
  });
  it.runIf(mode === 'wireguard')('default Mode "separate": the IPv4 subnet through PublicIP:51820, the IPv6 one through [PublicIPv6]:51821, each family\'s traffic on its own tunnel', async () => {
    const [a, b] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    const h = await c.health(d[0]!);
    expect(h.routes).toEqual({ [`${r[1]!.v4}/24`]: `${b!.underlayIp}:51820`, [`${r[1]!.v6}/64`]: `${b!.underlayIp6}:51821` });
    expect(h.peers).toBe(2); // one peer per tunnel, the same key
    /** bytes sent to each of node 1's tunnels (by the subnet routed to it), from node 0's /metrics */
    const sent = async () => {
      const text = await c.metrics(d[0]!);
      const of = (subnet: string) => Number(new RegExp(`^tulle_peer_bytes_total\\{subnet="${subnet.replace(/[.]/g, '\\.')}",direction="outbound"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return { v4: of(`${r[1]!.v4}/24`), v6: of(`${r[1]!.v6}/64`) };
    };
    for (const [to, family] of [[r[1]!.v6, 'v6'], [r[1]!.v4!, 'v4']] as const) {
      const before = await sent();
      const t = await tcpTransfer(c.bed, a!, b!, to, 4 << 20, 60);
      expect(t, `to ${to}`).toMatchObject({ ok: true, bytes: 4 << 20 });
      const after = await sent();
      const other = family === 'v4' ? 'v6' : 'v4';
      expect(after[family] - before[family], `${family} tunnel`).toBeGreaterThan(4 << 20); // the data, sealed
      expect(after[other] - before[other], `${other} tunnel`).toBeLessThan(64 << 10); // at most keepalives, a handshake
    }
  });

  it.runIf(mode === 'udp')('--ip-blackhole-route: a blackhole route for each of the node\'s subnets, removed on SIGTERM', async () => {
    const n = c.bed.nodes[1]!;
    d[1]!.proc.kill('SIGTERM');
    expect(await d[1]!.exit).toBe(0);
    const again = c.startDaemon(n, ['--ip-blackhole-route']);
    const line = await again.waitLog((l) => l.msg === 'node ready', 120_000);
    const routes = async () => (await c.bed.exec(n.ns, 'ip', ['route', 'show', 'type', 'blackhole'])).stdout + (await c.bed.exec(n.ns, 'ip', ['-6', 'route', 'show', 'type', 'blackhole'])).stdout;
    await until('both blackhole routes', async () => {
      const r = await routes();
      return r.includes(String(line.subnet)) && r.includes(String(line.ipv6Subnet));
    }, 30_000, 200);
    again.proc.kill('SIGTERM');
    expect(await again.exit).toBe(0);
    expect(await routes()).toBe('');
  }, 180_000);
});

describe.each(MODES)('IPv6 only (EnableIPv4 false, IPv6-only underlay), %s', (mode, backend) => {
  let c: Cluster;
  let d: Daemon[];
  let r: Ready[];
  beforeAll(async () => {
    c = await createCluster({ nodes: 2, config: v6Config(backend), tag: 'd6', ipv6: 'only' });
    d = c.bed.nodes.map((n) => c.startDaemon(n, ['--iface=eth0'], process.env, { underlay: false }));
    r = await Promise.all(d.map(ready));
  }, 240_000);
  afterAll(async () => {
    await c?.teardown();
  }, 60_000);

  it("writes flanneld's IPv6-only keys (0.0.0.0-0&<v6>-64), PublicIP 0.0.0.0, and only the IPv6 pair in subnet.env", async () => {
    const ls = await leases(c);
    expect(ls.map((l) => l.name).sort()).toEqual(r.map((x) => `0.0.0.0-0&${x.v6}-64`).sort());
    for (const l of ls) {
      expect(l.value.PublicIP).toBe('0.0.0.0');
      expect(c.bed.nodes.map((n) => n.underlayIp6)).toContain(l.value.PublicIPv6);
      if (mode === 'wireguard') {
        expect(l.value.BackendData).toBeUndefined();
        expect(l.value.BackendV6Data.Port).toBe(51821); // Mode separate, IPv6 only: ListenPortV6, as flanneld
      }
    }
    expect(Object.keys(r[0]!.env)).toEqual(['FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET', 'FLANNEL_MTU', 'FLANNEL_IPMASQ']);
    // the IPv6 underlay's overhead: 40 + 8 (plain), flanneld's 80 (wireguard)
    expect(r[0]!.env.FLANNEL_MTU).toBe(mode === 'udp' ? '1452' : '1420');
  });

  it('pings both ways, and passes a TUN-MTU-sized packet with DF set', async () => {
    for (const [from, to] of [[0, 1], [1, 0]] as const) {
      const p = await c.ping(c.bed.nodes[from]!, r[to]!.v6, 3, 3);
      expect(p.ok, p.out).toBe(true);
    }
    const mtu = Number(r[0]!.env.FLANNEL_MTU);
    const big = await c.bed.exec(c.bed.nodes[0]!.ns, 'ping', ['-n', '-c', '2', '-W', '3', '-M', 'do', '-s', String(mtu - 48), r[1]!.v6]);
    expect(big.stdout).toMatch(/2 received/);
    expect(big.stdout).toMatch(new RegExp(`${mtu - 40} bytes from`));
  });

  it('moves 4 MB over TCP exactly', async () => {
    const t = await tcpTransfer(c.bed, c.bed.nodes[0]!, c.bed.nodes[1]!, r[1]!.v6, 4 << 20, 60);
    expect(t).toMatchObject({ ok: true, bytes: 4 << 20 });
  });

  it.runIf(mode === 'udp')("plain mode's outer source check for an IPv6 peer: an inner source of node 0's subnet counts only from node 0's PublicIPv6", async () => {
    const [a, b] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    const attacker = await c.bed.addHost('x', 30); // fd00:198:18::30 on the same underlay
    const listen = `const s=require('dgram').createSocket('udp6');s.on('message',(m)=>console.log('got '+m));s.bind(9999,'${r[1]!.v6}',()=>console.log('listening'))`;
    const rx = c.bed.spawn(b!.ns, 'timeout', ['60', process.execPath, '-e', listen]);
    let got = '';
    rx.stdout!.on('data', (x: Buffer) => (got += x.toString()));
    await waitForOutput(rx, /listening/, 15_000);
    const dir = mkdtempSync(path.join(tmpdir(), 'tulle-spoof6-'));
    try {
      const send = async (from: typeof a, word: string) => {
        const file = path.join(dir, word);
        writeFileSync(file, `${hex(ipv6Udp(r[0]!.v6, r[1]!.v6, Buffer.from(word)))}\n`);
        await c.bed.exec(from!.ns, process.execPath, [path.join(REPO_ROOT, 'test/bed/send-datagrams.mjs'), file, b!.underlayIp6!, '8285']);
      };
      await send(attacker, 'spoofed');
      await send(a, 'genuine'); // the positive control: same packet from node 0's own underlay address
      await until('the genuine datagram to arrive', () => got.includes('got genuine'), 15_000);
      expect(got).not.toContain('got spoofed');
    } finally {
      rx.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dual stack, wireguard Mode "ipv6": one tunnel for both families over the IPv6 underlay', () => {
  let c: Cluster;
  let d: Daemon[];
  let r: Ready[];
  beforeAll(async () => {
    c = await createCluster({ nodes: 2, config: dualConfig({ Type: 'wireguard', Mode: 'ipv6' }), tag: 'dm6', ipv6: 'dual' });
    d = c.bed.nodes.map((n) => c.startDaemon(n, [], process.env, { health: true }));
    r = await Promise.all(d.map(ready));
  }, 240_000);
  afterAll(async () => {
    await c?.teardown();
  }, 60_000);

  it("routes both of the peer's subnets to its [PublicIPv6]:port, and carries both families", async () => {
    const h = await c.health(d[0]!);
    const peer = c.bed.nodes[1]!;
    // one tunnel: the peer's one socket, where its BackendData.Port says (its BackendV6Data.Port is
    // ListenPortV6, as flanneld writes it, where a node with one device does not listen)
    expect(h.routes).toEqual({ [`${r[1]!.v4}/24`]: `${peer.underlayIp6}:51820`, [`${r[1]!.v6}/64`]: `${peer.underlayIp6}:51820` });
    for (const addr of [r[1]!.v4!, r[1]!.v6]) {
      const p = await c.ping(c.bed.nodes[0]!, addr, 3, 3);
      expect(p.ok, `→ ${addr}: ${p.out}`).toBe(true);
    }
    const t = await tcpTransfer(c.bed, c.bed.nodes[0]!, peer, r[1]!.v4!, 4 << 20, 60);
    expect(t).toMatchObject({ ok: true, bytes: 4 << 20 });
  });
});
