/**
 * Debian's `wg` against real `tulle run` daemons in encrypted mode (WireGuard's userspace API at
 * /var/run/wireguard/<tun>.sock): `wg show` and `wg show dump` give the node's keys and port and
 * each peer's key, endpoint, allowed IPs, latest handshake and keepalive, as on a wireguard-go
 * node; the same handshake `tulle status` reports; `wg set` is refused with EPERM and a log line;
 * the socket is 0600 and gone after the daemon stops.
 *
 * The TUN names are per run (the socket directory is shared by every namespace on the machine);
 * every other flag is the default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createCluster, tunAddress, until, type Cluster, type Daemon } from '../integration/cluster.js';
import { stopProcess } from '../bed/bed.js';
import { publicKeyOf } from '../../src/wireguard/primitives.js';
import type { StatusSnapshot } from '../../src/control/status-snapshot.js';

let c: Cluster;
const ds: Daemon[] = [];
const subnets: string[] = [];
const tuns: string[] = [];

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}
const wg = (...args: string[]) => run('wg', args);
const privB64 = (d: Daemon) => readFileSync(path.join(d.dir, 'state', 'wireguard.key'), 'utf8').trim();
const pubB64 = (d: Daemon) => Buffer.from(publicKeyOf(Buffer.from(privB64(d), 'base64'))).toString('base64');

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'wgs', config: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}' });
  for (const [i, n] of c.bed.nodes.entries()) {
    tuns.push(`ws${i}${c.bed.id.slice(-6)}`);
    ds.push(c.startDaemon(n, [`--tun-name=${tuns[i]}`]));
  }
  subnets.push(...(await Promise.all(ds.map((d) => d.readySubnet()))));
  await until('both nodes to route to each other', () => ds.every((d) => d.routeCount() === 1), 60_000);
  await until('the uapi sockets', () => tuns.every((t) => existsSync(`/var/run/wireguard/${t}.sock`)), 30_000);
  // traffic both ways: a handshake, and bytes to count
  await until('a ping across', async () => (await c.ping(c.bed.nodes[0]!, tunAddress(subnets[1]!), 2, 3)).ok, 60_000, 500);
  expect((await c.ping(c.bed.nodes[1]!, tunAddress(subnets[0]!), 2, 3)).ok).toBe(true);
});

afterAll(async () => {
  await c?.teardown();
});

describe('wg show on a tulle node', () => {
  it('wg show dump: our keys and port, the peer with its endpoint, allowed IPs and handshake', async () => {
    const sock = `/var/run/wireguard/${tuns[0]}.sock`;
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const r = await wg('show', tuns[0]!, 'dump');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [dev, ...peers] = r.stdout.trimEnd().split('\n').map((l) => l.split('\t'));
    expect(dev).toEqual([privB64(ds[0]!), pubB64(ds[0]!), '51820', 'off']);
    expect(peers).toHaveLength(1);
    const [pub, psk, endpoint, allowed, handshake, rx, tx, keepalive] = peers[0]!;
    expect({ pub, psk, endpoint, allowed, keepalive }).toEqual({
      pub: pubB64(ds[1]!), psk: '(none)', endpoint: `${c.bed.nodes[1]!.underlayIp}:51820`, allowed: subnets[1], keepalive: 'off',
    });
    const now = Date.now() / 1000;
    expect(Number(handshake)).toBeGreaterThan(now - 300);
    expect(Number(handshake)).toBeLessThanOrEqual(now + 1);
    // transfer: at least the 4 pings each way, each a 128-byte transport message (84 bytes padded
    // to 96, + 16 header + 16 tag)
    expect(Number(rx)).toBeGreaterThanOrEqual(4 * 128);
    expect(Number(tx)).toBeGreaterThanOrEqual(4 * 128);
    // the same handshake and (at least the same) transfer `tulle status` reports
    const st = await run(process.execPath, [path.resolve('bin/tulle'), 'status', '--json', `--state-dir=${path.join(ds[0]!.dir, 'state')}`]);
    const s = JSON.parse(st.stdout) as StatusSnapshot;
    expect(s.peers[0]!.publicKey).toBe(pubB64(ds[1]!));
    expect(Math.abs(Math.floor(s.peers[0]!.lastHandshakeAt! / 1000) - Number(handshake))).toBeLessThanOrEqual(1);
    expect(s.peers[0]!.traffic!.rxBytes).toBeGreaterThanOrEqual(Number(rx));
    expect(s.peers[0]!.traffic!.txBytes).toBeGreaterThanOrEqual(Number(tx));
    expect(s.peers[0]!.traffic!.rxPackets).toBeGreaterThanOrEqual(4);
  });

  it('wg show: the interface as a WireGuard user reads it', async () => {
    const r = await wg('show', tuns[1]!);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').map((l) => l.trim());
    expect(lines).toContain(`interface: ${tuns[1]}`);
    expect(lines).toContain(`public key: ${pubB64(ds[1]!)}`);
    expect(lines).toContain('private key: (hidden)');
    expect(lines).toContain('listening port: 51820');
    expect(lines).toContain(`peer: ${pubB64(ds[0]!)}`);
    expect(lines).toContain(`endpoint: ${c.bed.nodes[0]!.underlayIp}:51820`);
    expect(lines).toContain(`allowed ips: ${subnets[0]}`);
    expect(lines.some((l) => /^latest handshake: .* ago$|^latest handshake: Now$/.test(l))).toBe(true);
    expect(lines.some((l) => /^transfer: [\d.]+ [KMG]?i?B received, [\d.]+ [KMG]?i?B sent$/.test(l))).toBe(true);
    // `wg show interfaces` lists the userspace interfaces it finds
    expect((await wg('show', 'interfaces')).stdout.split(/\s+/)).toEqual(expect.arrayContaining(tuns));
  });

  it('wg set is refused with EPERM and a log line saying peers come from the leases', async () => {
    const r = await wg('set', tuns[0]!, 'peer', pubB64(ds[1]!), 'remove');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
    await ds[0]!.waitLog((l) => /set refused: peers come from the leases/.test(l.msg), 10_000);
    // nothing changed
    const dump = (await wg('show', tuns[0]!, 'dump')).stdout;
    expect(dump).toContain(pubB64(ds[1]!));
    expect((await c.ping(c.bed.nodes[0]!, tunAddress(subnets[1]!), 1, 3)).ok).toBe(true);
  });

  it('the socket goes when the daemon stops', async () => {
    await stopProcess(ds[1]!.proc, 30_000);
    expect(await ds[1]!.exit).toBe(0);
    expect(existsSync(`/var/run/wireguard/${tuns[1]}.sock`)).toBe(false);
    const r = await wg('show', tuns[1]!);
    expect(r.code).not.toBe(0);
  });
});
