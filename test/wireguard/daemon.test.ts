/**
 * Encrypted mode through the daemon: three real `tulle run` daemons against a real etcd with
 * `Backend.Type: "wireguard"`. Leases carry flannel's BackendData, the key lives in the state
 * dir (0600) and survives a restart, every node reaches every other, the TUN MTU is the
 * underlay's − 80 (flanneld's), and the underlay carries no plaintext of a known payload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from '../integration/cluster.js';
import { stopProcess } from '../bed/bed.js';
import { readPcap } from '../bed/pcap.js';
import { waitForOutput } from '../bed/proc.js';
import { generateKeyPair, publicKeyOf } from '../../src/wireguard/primitives.js';
import { createInitiation, identity } from '../../src/wireguard/noise.js';
import { MacSigner } from '../../src/wireguard/cookie.js';

const PATTERN = Buffer.from('WG-DAEMON-SECRET').toString('hex'); // 16 bytes for ping -p

let c: Cluster;
const subnetOf = new Map<Daemon, string>();

async function ready(d: Daemon): Promise<string> {
  const subnet = await d.readySubnet();
  subnetOf.set(d, subnet);
  return subnet;
}

async function meshFailures(ds: Daemon[]): Promise<string[]> {
  const failures: string[] = [];
  for (const a of ds)
    for (const b of ds) {
      if (a === b) continue;
      const r = await c.bed.exec(a.node.ns, 'sh', ['-c', `ping -n -c 2 -i 0.2 -W 3 -s 120 -p ${PATTERN} ${tunAddress(subnetOf.get(b)!)} || true`]);
      if (!/2 received/.test(r.stdout)) failures.push(`${a.node.ns} → ${b.node.ns}`);
    }
  return failures;
}

const keyFile = (d: Daemon) => path.join(d.dir, 'state', 'wireguard.key');

beforeAll(async () => {
  c = await createCluster({ nodes: 3, tag: 'wgd', config: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}' });
});

afterAll(async () => {
  await c?.teardown();
});

describe('tulle daemons in encrypted mode through etcd', () => {
  const ds: Daemon[] = [];

  it('three nodes publish their keys as flannel does and reach each other, encrypted', async () => {
    // /healthz and /metrics on: this test reads the handshakes there
    for (const n of c.bed.nodes) ds.push(c.startDaemon(n, [], process.env, { health: true }));
    const subnets = await Promise.all(ds.map(ready));
    for (const [i, d] of ds.entries()) {
      const v = JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnets[i]!.replace('/', '-')}`, '--print-value-only']));
      const priv = readFileSync(keyFile(d), 'utf8').trim();
      expect(statSync(keyFile(d)).mode & 0o777).toBe(0o600);
      expect(v).toEqual({
        PublicIP: d.node.underlayIp,
        PublicIPv6: null,
        BackendType: 'wireguard',
        BackendData: { PublicKey: Buffer.from(publicKeyOf(Buffer.from(priv, 'base64'))).toString('base64'), Port: 51820 },
      });
      // the private key never appears in the logs
      expect(d.logs.some((l) => JSON.stringify(l).includes(priv))).toBe(false);
      expect(readFileSync(path.join(d.dir, 'subnet.env'), 'utf8')).toMatch(/FLANNEL_MTU=1420/);
    }
    await until('every node to route to the other two', () => ds.every((d) => d.routeCount() === 2));

    const file = path.join(ds[0]!.dir, 'underlay.pcap');
    const cap = c.bed.spawn(c.bed.underlayNs, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-s', '0', '-w', file, 'udp port 51820']);
    await waitForOutput(cap, /listening on/);
    expect(await meshFailures(ds)).toEqual([]);
    // the sessions may all exist before the capture (a daemon greets its peers at start): then the
    // capture holds just the 24 pings; let tcpdump write the last one before it is stopped
    await until('the capture to hold every ping', () => readPcap(file).length >= 12 * 2, 10_000).catch(() => undefined);
    await stopProcess(cap);
    // /healthz shows the handshakes: every node holds a session with each of the two others
    for (const d of ds) {
      const h = await c.health(d);
      expect(h.backendStatus.publicKey).toBe(JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnetOf.get(d)!.replace('/', '-')}`, '--print-value-only'])).BackendData.PublicKey);
      expect(Object.values(h.backendStatus.sessions as Record<string, number>).filter((n) => n >= 1).length).toBe(2);
      expect(h.backendStatus.handshakes.sessions_installed).toBeGreaterThanOrEqual(2);
      const m = /^tulle_wireguard_handshake_events_total\{event="sessions_installed"\} (\d+)$/m.exec(await c.metrics(d));
      expect(Number(m?.[1])).toBe(h.backendStatus.handshakes.sessions_installed);
    }
    const frames = readPcap(file);
    expect(frames.length).toBeGreaterThanOrEqual(12 * 2);
    const needle = Buffer.from(PATTERN, 'hex');
    expect(frames.filter((f) => Buffer.from(f).includes(needle)).length).toBe(0);
  });

  it('a restarted node keeps its key; the mesh heals through new handshakes', async () => {
    const d0 = ds[0]!;
    const before = readFileSync(keyFile(d0), 'utf8');
    d0.proc.kill('SIGTERM');
    expect(await d0.exit).toBe(0);
    // the same state dir (the later flag wins); default flags from here on
    const again = c.startDaemon(d0.node, [`--state-dir=${path.join(d0.dir, 'state')}`]);
    ds[0] = again;
    await ready(again);
    const after = readFileSync(path.join(d0.dir, 'state', 'wireguard.key'), 'utf8');
    expect(after === before, 'the key file is unchanged').toBe(true); // (no key in a failure message)
    const logged = again.logs.find((l) => l.msg === 'wireguard static key');
    expect(logged).toMatchObject({ created: false });
    await until('the restarted node to route to the other two', () => again.routeCount() === 2);
    expect(await meshFailures(ds)).toEqual([]);
  });

  it('a handshake flood at one daemon: its CPU stays bounded, the mesh keeps working', async () => {
    const victim = ds[1]!;
    const attacker = await c.bed.addHost('attacker', 66);
    const lease = JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnetOf.get(victim)!.replace('/', '-')}`, '--print-value-only']));
    const victimKey = Buffer.from(lease.BackendData.PublicKey, 'base64');
    const signer = new MacSigner(victimKey);
    const unique = Array.from({ length: 32 }, (_, i) => {
      const m = createInitiation(identity(generateKeyPair().privateKey), victimKey, i, Date.now()).message;
      signer.sign(m, 0);
      return m;
    });
    const file = path.join(victim.dir, 'flood.hex');
    writeFileSync(file, Array.from({ length: 40_000 }, (_, i) => Buffer.from(unique[i % unique.length]!).toString('hex')).join('\n'));
    const cpu = () => {
      const f = readFileSync(`/proc/${victim.proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks → s (USER_HZ 100)
    };
    const cpu0 = cpu();
    const t0 = performance.now();
    const flood = c.bed.exec(attacker.ns, process.execPath, [path.resolve('test/bed/send-datagrams.mjs'), file, victim.node.underlayIp, '51820']);
    const pings = c.bed.exec(ds[0]!.node.ns, 'ping', ['-n', '-c', '15', '-i', '0.1', '-W', '2', tunAddress(subnetOf.get(victim)!)]);
    await flood;
    const wall = (performance.now() - t0) / 1000;
    const share = (cpu() - cpu0) / wall;
    const p = await pings;
    console.log(`daemon under a handshake flood: ${(share * 100).toFixed(0)}% of a core over ${wall.toFixed(1)} s`);
    expect(p.stdout).toMatch(/15 received/);
    expect(share).toBeLessThan(1.0);
    expect(victim.proc.exitCode).toBeNull();
    expect((await c.health(victim)).ready).toBe(true);
  });
});
