/**
 * `tulle status` against real daemons (default flags; node 0 also serves /metrics) on a real
 * etcd: the node, its lease and etcd, one row per peer with its traffic; JSON too; plain text when
 * piped, coloured on a terminal; the per-peer series in /metrics; drops pinned on the peer that
 * sent them, in its row, its JSON and /metrics; a clear message for a caller who
 * is not root, for no daemon (stopped: socket removed; killed: socket left over), and a restarted
 * daemon that replaces the stale socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCluster, tunAddress, until, type Cluster, type Daemon } from './cluster.js';
import { stopProcess } from '../bed/bed.js';
import { hex, ipv4Udp } from '../bed/craft.js';
import type { StatusSnapshot } from '../../src/control/status-snapshot.js';

let c: Cluster;
const ds: Daemon[] = [];
const subnets: string[] = [];

/** `tulle status ARGS` as a user runs it (stdout piped), optionally as uid 65534 */
function status(args: string[], o: { nobody?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = [path.resolve('bin/tulle'), 'status', ...args];
  const [file, argv] = o.nobody ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...cmd]] : [process.execPath, cmd];
  return new Promise((resolve) => {
    execFile(file as string, argv as string[], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}
const stateDir = (d: Daemon) => path.join(d.dir, 'state');
function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'st' });
  // node 0 with /metrics (the per-peer series are read there); node 1 as a user runs it
  ds.push(c.startDaemon(c.bed.nodes[0]!, [], process.env, { health: true }), c.startDaemon(c.bed.nodes[1]!));
  subnets.push(...(await Promise.all(ds.map((d) => d.readySubnet()))));
  await until('both nodes to route to each other', () => ds.every((d) => d.routeCount() === 1), 60_000);
});

afterAll(async () => {
  await c?.teardown();
});

describe('tulle status', () => {
  it('shows the node, its lease, etcd and the peer, as JSON', async () => {
    const sock = path.join(stateDir(ds[0]!), 'tulle.sock');
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const r = await status(['--json', `--state-dir=${stateDir(ds[0]!)}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as StatusSnapshot;
    expect(s.node).toMatchObject({ state: 'running', ready: true, backend: 'udp', network: '10.244.0.0/16', publicIp: c.bed.nodes[0]!.underlayIp });
    expect(s.node.lease?.subnet).toBe(subnets[0]);
    expect(s.node.etcd!.etcd).toBe('connected');
    expect(s.node).not.toHaveProperty('kubeApi');
    expect(s.tun).toBe('tulle0');
    expect(s.listenPort).toBe(8285);
    expect(s.version).toMatch(/^tulle \d/);
    expect(s.peers).toEqual([expect.objectContaining({ subnets: [subnets[1]], endpoint: `${c.bed.nodes[1]!.underlayIp}:8285` })]);
  });

  it('prints wg-show-like text, without colour when piped', async () => {
    const r = await status([`--state-dir=${stateDir(ds[1]!)}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/\x1b\[/);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('node: tulle0');
    expect(lines).toContain('  state: running');
    expect(lines).toContain(`  public ip: ${c.bed.nodes[1]!.underlayIp}`);
    expect(r.stdout).toMatch(new RegExp(`  subnet: ${subnets[1]!.replace(/\./g, '\\.')} \\(lease expires in 23 hours, `));
    expect(lines).toContain(`peer: ${subnets[0]}`);
    expect(lines).toContain(`  endpoint: ${c.bed.nodes[0]!.underlayIp}:8285`);
    // a reachable overlay and a status that still answers afterwards
    expect((await c.ping(c.bed.nodes[1]!, tunAddress(subnets[0]!), 2)).ok).toBe(true);
    expect((await status([`--socket=${path.join(stateDir(ds[1]!), 'tulle.sock')}`])).code).toBe(0);
  });

  it('counts traffic per peer: status rows and /metrics series by the peer subnet', async () => {
    const snap = async (d: Daemon) => JSON.parse((await status(['--json', `--state-dir=${stateDir(d)}`])).stdout) as StatusSnapshot;
    const before = (await snap(ds[0]!)).peers[0]!.traffic!;
    const pingAt = Date.now();
    expect((await c.ping(c.bed.nodes[0]!, tunAddress(subnets[1]!), 3)).ok).toBe(true);
    // plain mode's last activity: dated by the daemon's once-a-second sample of the counters
    const seen = await until('last activity after the ping', async () => {
      const p = (await snap(ds[0]!)).peers[0]!;
      return p.lastSentAt !== undefined && p.lastSentAt >= pingAt - 1000 && p.lastReceivedAt !== undefined && p;
    }, 30_000, 500);
    expect(seen.lastReceivedAt!).toBeLessThanOrEqual(Date.now());
    const after = (await snap(ds[0]!)).peers[0]!.traffic!;
    // 3 echo requests out, 3 replies in: 84-byte packets, the UDP payload in plain mode
    expect(after.txPackets - before.txPackets).toBe(3);
    expect(after.rxPackets - before.rxPackets).toBe(3);
    expect(after.txBytes - before.txBytes).toBe(3 * 84);
    const text = await c.metrics(ds[0]!);
    /** the value of metric{subnet=<peer's>, direction}, whatever the label order */
    const series = (metric: string, dir: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(`subnet="${subnets[1]}"`) && l.includes(`direction="${dir}"`));
      return Number(line?.split(' ').at(-1));
    };
    expect(series('tulle_peer_packets_total', 'outbound'), text).toBeGreaterThanOrEqual(after.txPackets);
    expect(series('tulle_peer_packets_total', 'inbound')).toBeGreaterThanOrEqual(after.rxPackets);
    expect(series('tulle_peer_bytes_total', 'outbound')).toBeGreaterThanOrEqual(after.txBytes);
    // and the text view shows it like wg show's transfer line
    const r = await status([`--state-dir=${stateDir(ds[0]!)}`]);
    expect(r.stdout).toMatch(/\n  transfer: \d+ B received, \d+ B sent \(\d+ \/ \d+ packets\)\n/);
  });

  it('pins drops on the peer that sent them: its status row, JSON and /metrics', async () => {
    // node 1 sends node 0 datagrams whose inner source is outside node 1's subnet (node 0's own: spoofed)
    const dir = mkdtempSync(path.join(tmpdir(), 'tulle-status-drops-'));
    try {
      const file = path.join(dir, 'spoofed.hex');
      writeFileSync(file, Array.from({ length: 4 }, () => hex(ipv4Udp(tunAddress(subnets[0]!), tunAddress(subnets[0]!), new Uint8Array(32)))).join('\n'));
      const sent = await c.bed.exec(c.bed.nodes[1]!.ns, process.execPath, [path.resolve('test/bed/send-datagrams.mjs'), file, c.bed.nodes[0]!.underlayIp, '8285']);
      expect(sent.stdout).toMatch(/sent 4/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const peer = await until('the drops in status', async () => {
      const s = JSON.parse((await status(['--json', `--state-dir=${stateDir(ds[0]!)}`])).stdout) as StatusSnapshot;
      const p = s.peers[0]!;
      return (p.drops?.inbound_drop_spoofed_source ?? 0) >= 4 && s.drops.inbound_drop_spoofed_source === p.drops!.inbound_drop_spoofed_source && p;
    }, 15_000, 200);
    expect(peer.drops).toEqual({ inbound_drop_spoofed_source: 4 });
    const text = await c.metrics(ds[0]!);
    const line = text.split('\n').find((l) => l.startsWith('tulle_peer_drops_total{') && l.includes(`subnet="${subnets[1]}"`) && l.includes('reason="spoofed_source"'));
    expect(line, text).toMatch(/direction="inbound"/);
    expect(Number(line!.split(' ').at(-1))).toBe(4);
    const r = await status([`--state-dir=${stateDir(ds[0]!)}`]);
    expect(r.stdout).toContain('\n  drops: inbound spoofed_source 4\n');
  });

  it('colours on a terminal', async () => {
    const cmd = `${process.execPath} ${path.resolve('bin/tulle')} status --state-dir=${stateDir(ds[0]!)}`;
    const r = await run('script', ['-qec', cmd, '/dev/null']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\x1b\[32mrunning\x1b\[0m/);
    expect(r.stdout).toMatch(/\x1b\[33mpeer\x1b\[0m/);
  });

  it('tells a caller who is not root to run it as root', async () => {
    const r = await status([`--state-dir=${stateDir(ds[0]!)}`], { nobody: true });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/permission denied .*tulle\.sock.*root/);
    expect(r.stderr).toContain('[ERR_TULLE_NOT_ROOT]');
  });

  it('says no daemon is running once the daemon stopped, which removed its socket', async () => {
    const d = ds[1]!;
    await stopProcess(d.proc, 30_000);
    expect(await d.exit).toBe(0);
    expect(existsSync(path.join(stateDir(d), 'tulle.sock'))).toBe(false);
    const r = await status([`--state-dir=${stateDir(d)}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no tulle daemon is running: there is no control socket at .*tulle\.sock/);
    // bad flags: exit 2
    expect((await status(['--bogus'])).code).toBe(2);
  });

  it('a daemon killed without cleanup: its socket is left over, status says so, the next daemon replaces it', async () => {
    const d = ds[0]!;
    const sock = path.join(stateDir(d), 'tulle.sock');
    d.proc.kill('SIGKILL');
    await d.exit;
    expect(statSync(sock).isSocket()).toBe(true);
    const r = await status([`--state-dir=${stateDir(d)}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no tulle daemon is running: .*tulle\.sock is left over from a daemon that has exited/);
    const again = c.startDaemon(d.node, [], process.env);
    await until('the restarted daemon to answer', async () => (await status(['--json', `--state-dir=${stateDir(again)}`])).code === 0, 90_000, 500);
    const s = JSON.parse((await status(['--json', `--state-dir=${stateDir(again)}`])).stdout) as StatusSnapshot;
    expect(s.node.publicIp).toBe(c.bed.nodes[0]!.underlayIp);
  });
});
