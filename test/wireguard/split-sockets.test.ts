/**
 * The data plane's two socket sets (Mode "separate", native/src/dataplane.h): with `ipv6Port`,
 * `queues` IPv4 sockets on `port` and `queues` IPv6-only sockets on `ipv6Port`, one multi-queue
 * TUN for all of them; handshake messages leave from the socket of their destination's family.
 * A real data plane in a bed namespace (its own addresses only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { waitForOutput } from '../bed/proc.js';
import { startDataPlane, type DataPlane } from '../../src/dataplane/dataplane.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';

let bed: Bed;
let node: BedNode;
let dp: DataPlane | undefined;

beforeAll(async () => {
  bed = await createBed({ nodes: 1, tag: 'wss', ipv6: 'dual' });
  node = bed.nodes[0]!;
}, 60_000);

afterAll(async () => {
  dp?.stop();
  await bed?.teardown();
});

describe('two socket sets (ipv6Port)', () => {
  it('opens an IPv4 set on port and an IPv6-only set on ipv6Port, a queue each, and sends from the set of the family', { timeout: 180_000 }, async () => {
    dp = startDataPlane({ netns: node.nsPath, tunName: 'wss0', port: 0, ipv6Port: 0, queues: 2, mtu: 1420, encrypted: true, publicKey: generateKeyPair().publicKey });
    expect(dp.port).toBeGreaterThan(0);
    expect(dp.ipv6Port).toBeGreaterThan(0);
    expect(dp.ipv6Port).not.toBe(dp.port);
    expect(dp.countersPerQueue()).toHaveLength(4);
    // ss prints an IPv6-only wildcard as [::] and a dual-stack one as *
    const ss = (await bed.exec(node.ns, 'ss', ['-Huln'])).stdout;
    const bound = (local: string) => ss.split('\n').filter((l) => l.split(/\s+/).includes(local)).length;
    expect(bound(`0.0.0.0:${dp.port}`), ss).toBe(2);
    expect(bound(`[::]:${dp.ipv6Port}`), ss).toBe(2);
    expect(bound(`*:${dp.ipv6Port}`), ss).toBe(0);
    // handshake messages to either family (this node's own addresses): each from its set's socket
    const rx = bed.spawn(node.ns, 'timeout', ['60', 'python3', '-c',
      'import socket\nfor fam,a in ((socket.AF_INET,"0.0.0.0"),(socket.AF_INET6,"::")):\n  s=socket.socket(fam,socket.SOCK_DGRAM)\n  if fam==socket.AF_INET6:\n    s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1)\n  s.bind((a,7301))\n  if fam==socket.AF_INET:\n    s4=s\n  else:\n    s6=s\nprint("up",flush=True)\nprint(s4.recvfrom(100)[1][1],s6.recvfrom(100)[1][1],flush=True)']);
    const exited = new Promise((r) => rx.once('exit', r));
    let out = '';
    rx.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitForOutput(rx, /up/, 60_000);
    expect(dp.sendRaw(node.underlayIp, 7301, new Uint8Array(8))).toBe(true);
    expect(dp.sendRaw(node.underlayIp6!, 7301, new Uint8Array(8))).toBe(true);
    await exited;
    expect(out.trim().split('\n').at(-1)).toBe(`${dp.port} ${dp.ipv6Port}`);
  });

  it('refuses a second set beside an IPv6 first bind address, naming the option', () => {
    expect(() => startDataPlane({ netns: node.nsPath, tunName: 'wss1', bindAddress: '::', port: 0, ipv6Port: 0, mtu: 1420, encrypted: true })).toThrow(/ipv6Port needs an IPv4 bindAddress/);
    expect(() => startDataPlane({ netns: node.nsPath, tunName: 'wss1', port: 0, ipv6Port: 70000, mtu: 1420, encrypted: true })).toThrow(/ipv6Port must be 0\.\.65535/);
  });
});
