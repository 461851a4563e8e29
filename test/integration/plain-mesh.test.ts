// Plain mode with the data plane programmed directly: real namespaces, TUN devices, ping, iperf3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, PLAIN_MTU, overlayAddress, type Mesh } from '../bed/mesh.js';
import { waitForOutput } from '../bed/proc.js';
import { ExecError } from '../../src/host/exec.js';

const failureOutput = (e: unknown) => (e instanceof ExecError ? e.stdout + e.stderr : String(e));

async function ping(bed: Bed, ns: string, to: string, args: string[] = []) {
  return bed.exec(ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ...args, to]);
}

describe('plain mode, 2 nodes', () => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2 });
    mesh = await startStaticMesh(bed);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('pings both ways', async () => {
    const [a, b] = mesh.nodes;
    for (const [from, to] of [[a!, b!], [b!, a!]] as const) {
      const { stdout } = await ping(bed, from.node.ns, to.address);
      expect(stdout).toMatch(/3 packets transmitted, 3 received/);
    }
    // on failure these print every counter of both nodes
    const ca = a!.dp.counters(), cb = b!.dp.counters();
    expect(ca, 'node a').toMatchObject({ outbound_drop_send_error: 0n });
    expect(ca.outbound_sent_packets! >= 6n && cb.inbound_delivered_packets! >= 6n, JSON.stringify({ ca, cb }, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toBe(true);
    expect(cb, 'node b').toMatchObject({ inbound_drop_spoofed_source: 0n, inbound_drop_unknown_peer: 0n, inbound_drop_malformed: 0n });
  });

  it('passes MTU-sized packets with DF set', async () => {
    const { stdout } = await ping(bed, mesh.nodes[0]!.node.ns, mesh.nodes[1]!.address, ['-M', 'do', '-s', String(PLAIN_MTU - 28)]);
    expect(stdout).toMatch(/3 received/);
    expect(stdout).toMatch(new RegExp(`${PLAIN_MTU - 28 + 8} bytes from`));
  });

  it('refuses an oversized DF packet at the sender with the TUN MTU, and fragments one without DF', async () => {
    const [a, b] = mesh.nodes;
    const err = await ping(bed, a!.node.ns, b!.address, ['-M', 'do', '-s', String(PLAIN_MTU - 27)]).then(
      () => 'no error',
      failureOutput,
    );
    expect(err).toMatch(new RegExp(`[Mm]essage too long, mtu=${PLAIN_MTU}`));
    const { stdout } = await ping(bed, a!.node.ns, b!.address, ['-s', '4000']);
    expect(stdout).toMatch(/3 received/);
  });

  it('answers a destination outside every lease with ICMP net unreachable', async () => {
    const [a] = mesh.nodes;
    const before = a!.dp.counters();
    const out = await ping(bed, a!.node.ns, '10.244.200.1', ['-c', '1']).then(
      (r) => r.stdout,
      failureOutput,
    );
    expect(out).toMatch(/Destination Net Unreachable/);
    const after = a!.dp.counters();
    expect(after.outbound_drop_no_route! - before.outbound_drop_no_route!).toBe(1n);
    expect(after.outbound_icmp_unreachable! - before.outbound_icmp_unreachable!).toBe(1n);
  });

  it('carries an iperf3 TCP transfer to completion', async () => {
    const [a, b] = mesh.nodes;
    const server = bed.spawn(b!.node.ns, 'iperf3', ['-s', '-1', '--forceflush', '-B', b!.address]);
    await waitForOutput(server, /Server listening/);
    const { stdout } = await bed.exec(a!.node.ns, 'timeout', ['20', 'iperf3', '-c', b!.address, '-t', '2', '-J'], 30_000);
    const r = JSON.parse(stdout) as { end: { sum_received: { bytes: number }; sum_sent: { bytes: number } } };
    expect(r.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    // nothing the tunnel mangled reached TCP: the receiver's kernel saw no checksum errors
    const nstat = await bed.exec(b!.node.ns, 'nstat', ['-asz', 'TcpInCsumErrors', 'TcpInSegs']);
    expect(nstat.stdout).toMatch(/TcpInSegs\s+[1-9]/);
    expect(nstat.stdout).toMatch(/TcpInCsumErrors\s+0\b/);
  });
});

describe('plain mode, 3 nodes', () => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 3 });
    mesh = await startStaticMesh(bed);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('pings in every direction', async () => {
    const pairs = mesh.nodes.flatMap((a) => mesh.nodes.filter((b) => b !== a).map((b) => [a, b] as const));
    expect(pairs).toHaveLength(6);
    const results = await Promise.all(pairs.map(([a, b]) => ping(bed, a.node.ns, overlayAddress(b.index))));
    for (const r of results) expect(r.stdout).toMatch(/3 packets transmitted, 3 received/);
  });
});
