/** The wireguard backend behind the daemon's seam, with a fake data plane. */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { wireguardBackend } from '../../src/wireguard/wireguard-backend.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import type { Command } from '../../src/dataplane/commands.js';
import type { DataPlane, DataPlaneOptions } from '../../src/dataplane/dataplane.js';
import { fakeDataPlane } from '../unit/fake-dataplane.js';

function fakeStart() {
  const applied: Command[] = [];
  let opts: DataPlaneOptions | undefined;
  let stopped = false;
  const start = (o: DataPlaneOptions): DataPlane => {
    opts = o;
    return fakeDataPlane({ port: o.port ?? 0, apply: (c) => void applied.push(...c), stop: () => void (stopped = true), monotonicMs: () => 1 });
  };
  return { start, applied, opts: () => opts, stopped: () => stopped };
}

const lease = (ip: string, data: unknown, type = 'wireguard') => ({ subnet: '10.244.7.0/24', attrs: { PublicIP: ip, BackendType: type, BackendData: data } });

describe('wireguard backend', () => {
  const key = generateKeyPair();
  const config = { type: 'wireguard' as const, listenPort: 51820, psk: undefined, persistentKeepaliveSeconds: 0 };

  it('publishes flannel\'s BackendData and flanneld\'s 80-byte overhead', () => {
    const b = wireguardBackend(config, key);
    expect(b.leaseData()).toEqual({ BackendData: { PublicKey: Buffer.from(key.publicKey).toString('base64'), Port: 51820 } });
    expect(b.mtuFor(1500)).toBe(1420);
  });

  it("dual stack: BackendData on ListenPort and BackendV6Data on ListenPortV6 with the same key, in every Mode, as flanneld's newSubnetAttrs", () => {
    const pub = Buffer.from(key.publicKey).toString('base64');
    const stack = { ipv4: true, ipv6: true, publicIpv6: 'fd00:198:18::10' };
    for (const mode of ['separate', 'auto', 'ipv4', 'ipv6'] as const) {
      const dual = wireguardBackend({ ...config, mode }, key, { stack });
      expect(dual.leaseData()).toEqual({ BackendData: { PublicKey: pub, Port: 51820 }, BackendV6Data: { PublicKey: pub, Port: 51821 } });
    }
    const ports = wireguardBackend({ ...config, listenPort: 51900, listenPortV6: 51901 }, key, { stack });
    expect(ports.leaseData()).toEqual({ BackendData: { PublicKey: pub, Port: 51900 }, BackendV6Data: { PublicKey: pub, Port: 51901 } });
    // IPv6 only: flanneld has only its IPv6 device, on ListenPortV6
    const v6 = wireguardBackend({ ...config, listenPortV6: 51821 }, key, { stack: { ipv4: false, ipv6: true, publicIpv6: 'fd00:198:18::10' } });
    expect(v6.leaseData()).toEqual({ BackendV6Data: { PublicKey: pub, Port: 51821 } });
    expect(v6.ipv6Underlay).toBe(true);
  });

  it('Mode separate in dual stack: two socket sets (ListenPort IPv4, ListenPortV6 IPv6) and a peer per tunnel with the same key', () => {
    const stack = { ipv4: true, ipv6: true, publicIpv6: 'fd00:198:18::10' };
    const f = fakeStart();
    const b = wireguardBackend(config, key, { start: f.start, stack });
    expect(b.ipv6Underlay).toBe(false);
    const pk = randomBytes(32).toString('base64');
    const l = (v6data: unknown, ip6: string | null = 'fd00:198:18::11') => ({
      subnet: '10.244.7.0/24', ipv6Subnet: 'fd00:10:244:7::/64',
      attrs: { PublicIP: '198.18.0.11', PublicIPv6: ip6, BackendType: 'wireguard', BackendData: { PublicKey: pk, Port: 51830 }, BackendV6Data: v6data },
    });
    expect(b.peerOf(l({ PublicKey: pk, Port: 51831 }))).toEqual({
      ok: true, endpoint: { address: '198.18.0.11', port: 51830 }, ipv6Endpoint: { address: 'fd00:198:18::11', port: 51831 },
    });
    // a 0 (or absent) port: our own port of that tunnel, as flanneld reads it
    expect(b.peerOf(l({ PublicKey: pk, Port: 0 }))).toMatchObject({ ipv6Endpoint: { port: 51821 } });
    expect(b.peerOf(l({ PublicKey: pk }))).toMatchObject({ ipv6Endpoint: { port: 51821 } });
    // no PublicIPv6: no IPv6 tunnel (flanneld has no endpoint for its v6 device either)
    expect(b.peerOf(l({ PublicKey: pk, Port: 51831 }, null))).toMatchObject({ ipv6Endpoint: null });
    expect(b.peerOf(l({ PublicKey: 'nope', Port: 51831 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/BackendV6Data\.PublicKey/) });
    b.peerOf(l({ PublicKey: pk, Port: 51831 }));
    const dp = b.startDataPlane({ mtu: 1420 });
    expect(f.opts()).toMatchObject({ port: 51820, ipv6Port: 51821, encrypted: true });
    expect(f.opts()!.bindAddress).toBeUndefined();
    dp.apply([
      { op: 'setPeer', peer: 0, address: '198.18.0.11', port: 51830 },
      { op: 'setPeer', peer: 1, address: 'fd00:198:18::11', port: 51831 },
    ]);
    const pub = Buffer.from(pk, 'base64');
    expect(b.device!.peerWithKey(pub, 4)).toBe(0);
    expect(b.device!.peerWithKey(pub, 6)).toBe(1);
    expect(b.device!.peerWithKey(pub)).toBeUndefined();
    dp.stop();
  });

  it("picks each peer's underlay by Mode (ipv4, ipv6, auto as flanneld's selectMode, separate)", () => {
    const pk = randomBytes(32).toString('base64');
    const attrs = (ip: string, ip6: string | null) => ({
      subnet: '10.244.7.0/24', attrs: { PublicIP: ip, PublicIPv6: ip6, BackendType: 'wireguard', BackendData: { PublicKey: pk, Port: 51820 }, BackendV6Data: { PublicKey: pk, Port: 51821 } },
    });
    const stack = { ipv4: true, ipv6: true, publicIpv6: 'fd00:198:18::10' };
    const mode = (m: 'ipv4' | 'ipv6' | 'auto' | 'separate', s = stack) => wireguardBackend({ ...config, mode: m }, key, { stack: s });
    expect(mode('ipv4').peerOf(attrs('198.18.0.11', 'fd00:198:18::11'))).toEqual({ ok: true, endpoint: { address: '198.18.0.11', port: 51820 } });
    // one tunnel over IPv6: the peer's one device listens where BackendData.Port says (flanneld
    // dials BackendV6Data.Port, ListenPortV6, where a node with one device does not listen)
    expect(mode('ipv6').peerOf(attrs('198.18.0.11', 'fd00:198:18::11'))).toEqual({ ok: true, endpoint: { address: 'fd00:198:18::11', port: 51820 } });
    expect(mode('ipv6').peerOf(attrs('198.18.0.11', null))).toMatchObject({ ok: false, reason: expect.stringMatching(/PublicIPv6/) });
    expect(mode('separate').peerOf(attrs('198.18.0.11', 'fd00:198:18::11'))).toMatchObject({ endpoint: { address: '198.18.0.11', port: 51820 }, ipv6Endpoint: { address: 'fd00:198:18::11', port: 51821 } });
    expect(mode('separate', { ipv4: false, ipv6: true, publicIpv6: 'fd00:198:18::10' }).peerOf(attrs('0.0.0.0', 'fd00:198:18::11'))).toMatchObject({ endpoint: { address: 'fd00:198:18::11', port: 51821 } });
    // auto: a public (not RFC 1918) IPv4 wins; ULA IPv6 (fc00::/7) is private, so a private IPv4 still wins
    expect(mode('auto').peerOf(attrs('198.18.0.11', 'fd00:198:18::11'))).toMatchObject({ endpoint: { address: '198.18.0.11' } });
    expect(mode('auto').peerOf(attrs('10.0.0.11', 'fd00:198:18::11'))).toMatchObject({ endpoint: { address: '10.0.0.11' } });
    expect(mode('auto').peerOf(attrs('10.0.0.11', null))).toMatchObject({ endpoint: { address: '10.0.0.11' } });
    // auto picks IPv6 for a private-IPv4 peer when both IPv6 addresses are public (documentation prefix, no traffic)
    const pub6 = { ipv4: true, ipv6: true, publicIpv6: '2001:db8::10' };
    expect(mode('auto', pub6).peerOf(attrs('10.0.0.11', '2001:db8::11'))).toEqual({ ok: true, endpoint: { address: '2001:db8::11', port: 51820 } });
  });

  it('turns leases into endpoints, or says why not', () => {
    const b = wireguardBackend(config, key);
    const pk = randomBytes(32).toString('base64');
    expect(b.peerOf(lease('198.18.0.11', { PublicKey: pk, Port: 51821 }))).toEqual({ ok: true, endpoint: { address: '198.18.0.11', port: 51821 } });
    // no Port, or 0 (older flanneld): this node's own ListenPort, as flanneld reads it
    const own = wireguardBackend({ ...config, listenPort: 51999 }, key);
    expect(own.peerOf(lease('198.18.0.12', { PublicKey: pk }))).toEqual({ ok: true, endpoint: { address: '198.18.0.12', port: 51999 } });
    expect(own.peerOf(lease('198.18.0.13', { PublicKey: pk, Port: 0 }))).toEqual({ ok: true, endpoint: { address: '198.18.0.13', port: 51999 } });
    expect(b.peerOf(lease('198.18.0.11', undefined, 'udp'))).toMatchObject({ ok: false, reason: expect.stringMatching(/"udp"/) });
    expect(b.peerOf(lease('198.18.0.11', { Port: 1 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/PublicKey/) });
  });

  it('starts the data plane in encrypted mode and routes peer commands through the device', () => {
    const f = fakeStart();
    const b = wireguardBackend(config, key, { start: f.start });
    const pk = randomBytes(32).toString('base64');
    b.peerOf(lease('198.18.0.11', { PublicKey: pk, Port: 51820 }));
    const dp = b.startDataPlane({ tunName: 'tulle0', mtu: 1440 });
    expect(f.opts()).toMatchObject({ encrypted: true, port: 51820, mtu: 1440 });
    dp.apply([
      { op: 'setPeer', peer: 3, address: '198.18.0.11', port: 51820 },
      { op: 'setRoute', subnet: '10.244.7.0/24', peer: 3 },
    ]);
    expect(f.applied).toEqual([
      { op: 'setPeer', peer: 3, address: '198.18.0.11', port: 51820 },
      { op: 'setRoute', subnet: '10.244.7.0/24', peer: 3 },
    ]);
    // the node comes back at the same place with a new key: the device peer is replaced
    const pk2 = randomBytes(32).toString('base64');
    b.peerOf(lease('198.18.0.11', { PublicKey: pk2, Port: 51820 }));
    expect(f.applied.filter((c) => c.op === 'deletePeer')).toEqual([{ op: 'deletePeer', peer: 3 }]);
    expect(f.applied.at(-1)).toEqual({ op: 'setPeer', peer: 3, address: '198.18.0.11', port: 51820 });
    dp.apply([{ op: 'deleteRoute', subnet: '10.244.7.0/24' }, { op: 'deletePeer', peer: 3 }]);
    expect(f.applied.slice(-2)).toEqual([{ op: 'deleteRoute', subnet: '10.244.7.0/24' }, { op: 'deletePeer', peer: 3 }]);
    dp.stop();
    expect(f.stopped()).toBe(true);
  });

  it('a key seen at a second endpoint moves there instead of failing the table', () => {
    const f = fakeStart();
    const b = wireguardBackend(config, key, { start: f.start });
    const pk = randomBytes(32).toString('base64');
    b.peerOf(lease('198.18.0.11', { PublicKey: pk, Port: 51820 }));
    b.peerOf(lease('198.18.0.21', { PublicKey: pk, Port: 51820 })); // the node moved; its old lease lingers
    const dp = b.startDataPlane({ tunName: 'tulle0', mtu: 1440 });
    expect(() =>
      dp.apply([
        { op: 'setPeer', peer: 1, address: '198.18.0.11', port: 51820 },
        { op: 'setPeer', peer: 2, address: '198.18.0.21', port: 51820 },
      ]),
    ).not.toThrow();
    expect(b.device!.peerWithKey(Buffer.from(pk, 'base64'))).toBe(2);
    expect(f.applied).toContainEqual({ op: 'deletePeer', peer: 1 });
  });
});
