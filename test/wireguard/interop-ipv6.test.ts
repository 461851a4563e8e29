/**
 * Interop with stock WireGuard over an IPv6-only underlay (fd00:198:18::/64): a tulle node in
 * encrypted mode, its socket on IPv6, and Debian's wireguard-go configured as flannel configures
 * kernel WireGuard for a dual-stack overlay (the IPv4 and the IPv6 lease subnet as allowed-ips,
 * endpoint [PublicIPv6]:port). Ping in both families, both ways, and an exact TCP transfer each
 * way; wireguard-go sees tulle at its IPv6 address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { tcpTransfer } from '../bed/transfer.js';
import { startEncryptedNode, type EncryptedNode } from '../../src/wireguard/encrypted-node.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { startWireguardGo, type WgGo } from './wireguard-go.js';

const MTU = 1420;
let bed: Bed | undefined;
let tulle: EncryptedNode | undefined;
let wggo: WgGo | undefined;
let a: BedNode;
let b: BedNode;

beforeAll(async () => {
  bed = await createBed({ nodes: 2, tag: 'wg6', ipv6: 'only' });
  [a, b] = bed.nodes as [BedNode, BedNode];
  const keys = generateKeyPair();
  tulle = await startEncryptedNode({
    privateKey: keys.privateKey, address: '10.244.0.0/32', network: ['10.244.0.0/16', 'fd00:10:244::/56'], mtu: MTU,
    netns: a.nsPath, netnsName: a.ns, bindAddress: '::', port: 51820,
  });
  await bed.exec(a.ns, 'ip', ['addr', 'add', 'fd00:10:244::/128', 'dev', tulle.dataPlane.tunName]);
  wggo = await startWireguardGo(bed, b, { address: '10.244.1.0/32', network: '10.244.0.0/16', port: 51820, mtu: MTU });
  await bed.exec(b.ns, 'ip', ['addr', 'add', 'fd00:10:244:1::/128', 'dev', wggo.ifname]);
  await bed.exec(b.ns, 'ip', ['route', 'add', 'fd00:10:244::/56', 'dev', wggo.ifname]);
  await wggo.addPeer({ publicKey: keys.publicKey, endpoint: `[${a.underlayIp6}]:51820`, allowedIps: '10.244.0.0/24,fd00:10:244::/64' });
  tulle.addPeer({ id: 1, publicKey: wggo.publicKey, endpoint: { address: b.underlayIp6!, port: 51820 }, subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'] });
}, 120_000);

afterAll(async () => {
  tulle?.stop();
  await wggo?.stop();
  await bed?.teardown();
});

describe('interop with wireguard-go over an IPv6 underlay', () => {
  it('pings over the IPv4 and the IPv6 overlay, both ways; wireguard-go has tulle at its IPv6 endpoint', async () => {
    for (const [from, to] of [[a, '10.244.1.0'], [a, 'fd00:10:244:1::'], [b, '10.244.0.0'], [b, 'fd00:10:244::']] as const) {
      const out = await bed!.exec(from.ns, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '3', to]);
      expect(out.stdout, `${from.ns} → ${to}`).toMatch(/3 received/);
    }
    const dump = await wggo!.show();
    expect(dump).toContain(`[${a.underlayIp6}]:51820`);
    expect(tulle!.device.counters.responses_received + tulle!.device.counters.initiations_received).toBeGreaterThanOrEqual(1);
  });

  it('moves 4 MB over TCP exactly each way (IPv6 overlay one way, IPv4 the other)', async () => {
    const there = await tcpTransfer(bed!, a, b, 'fd00:10:244:1::', 4 << 20, 60);
    expect(there).toMatchObject({ ok: true, bytes: 4 << 20 });
    const back = await tcpTransfer(bed!, b, a, '10.244.0.0', 4 << 20, 60);
    expect(back).toMatchObject({ ok: true, bytes: 4 << 20 });
  });
});
