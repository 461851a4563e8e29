/**
 * Interop with stock WireGuard: a tulle node in encrypted mode (in-process data plane in a
 * namespace + the TypeScript handshake) and Debian's wireguard-go in another, configured as
 * flannel configures kernel WireGuard. Ping and iperf3 both ways, either side initiating, and
 * across rekeys (tulle's rekey time shortened so the test does not wait 120 s).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createBed, type Bed } from '../bed/bed.js';
import { startEncryptedNode, type EncryptedNode } from '../../src/wireguard/encrypted-node.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { startWireguardGo, waitFor, type WgGo } from './wireguard-go.js';
import type { Timing } from '../../src/wireguard/timers.js';
import { addTraffic } from '../../src/control/status-snapshot.js';

const MTU = 1420;
let bed: Bed | undefined;
let tulle: EncryptedNode | undefined;
let wggo: WgGo | undefined;

afterEach(async () => {
  tulle?.stop();
  await wggo?.stop();
  await bed?.teardown();
  tulle = wggo = bed = undefined;
});

/** node 0 = tulle (lease 10.244.0.0/24), node 1 = wireguard-go (lease 10.244.1.0/24). */
async function setup(timing?: Partial<Timing>, extra: { psk?: Uint8Array; wgPsk?: Uint8Array; /** tulle's PersistentKeepaliveInterval */ keepaliveS?: number } = {}) {
  bed = await createBed({ nodes: 2, tag: 'wgi' });
  const [a, b] = bed.nodes as [typeof bed.nodes[0], typeof bed.nodes[0]];
  const keys = generateKeyPair();
  tulle = await startEncryptedNode({
    privateKey: keys.privateKey,
    address: '10.244.0.0/32',
    network: ['10.244.0.0/16'],
    mtu: MTU,
    netns: a.nsPath,
    netnsName: a.ns,
    port: 51820,
    timing,
    presharedKey: extra.psk,
    persistentKeepaliveMs: (extra.keepaliveS ?? 0) * 1000,
  });
  wggo = await startWireguardGo(bed, b, { address: '10.244.1.0/32', network: '10.244.0.0/16', port: 51820, mtu: MTU });
  await wggo.addPeer({
    publicKey: keys.publicKey,
    endpoint: `${a.underlayIp}:51820`,
    allowedIps: '10.244.0.0/24',
    presharedKey: extra.wgPsk ?? extra.psk,
  });
  tulle.addPeer({ id: 1, publicKey: wggo.publicKey, endpoint: { address: b.underlayIp, port: 51820 }, subnets: ['10.244.1.0/24'] });
  return { a, b };
}

function received(out: string): number {
  return Number(/(\d+) received/.exec(out)?.[1] ?? -1);
}

async function iperf(server: string, client: string, serverIp: string, seconds: number, reverse = false) {
  const srv = bed!.spawn(server, 'iperf3', ['-s', '-1', '-B', serverIp]);
  await waitFor('iperf3 server', async () => {
    const ss = await bed!.exec(server, 'ss', ['-ltn']);
    return ss.stdout.includes(`${serverIp}:5201`);
  });
  const args = ['timeout', String(seconds + 20), 'iperf3', '-c', serverIp, '-t', String(seconds), '-J'];
  if (reverse) args.push('-R');
  const { stdout } = await bed!.exec(client, args[0]!, args.slice(1), (seconds + 25) * 1000);
  await new Promise((r) => (srv.exitCode !== null ? r(null) : srv.once('exit', r)));
  const j = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
  return j.end.sum_received;
}

describe('interop with wireguard-go', () => {
  it('tulle initiates: ping and iperf3 both directions', async () => {
    const { a, b } = await setup();
    const out = await bed!.exec(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.1.0']);
    expect(received(out.stdout)).toBe(3);
    expect(tulle!.device.counters.initiations_sent).toBeGreaterThanOrEqual(1);
    expect(tulle!.device.counters.responses_received).toBe(1);
    const back = await bed!.exec(b.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.0.0']);
    expect(received(back.stdout)).toBe(3);
    const up = await iperf(b.ns, a.ns, '10.244.1.0', 3);
    const down = await iperf(b.ns, a.ns, '10.244.1.0', 3, true);
    console.log(`interop tulle→wireguard-go ${(up.bits_per_second / 1e6).toFixed(0)} Mbit/s, wireguard-go→tulle ${(down.bits_per_second / 1e6).toFixed(0)} Mbit/s`);
    expect(up.bytes).toBeGreaterThan(1_000_000);
    expect(down.bytes).toBeGreaterThan(1_000_000);
    const c = tulle!.dataPlane.counters();
    expect(c.inbound_drop_decrypt).toBe(0n);
    expect(c.inbound_drop_cryptokey_routing).toBe(0n);
    expect(c.inbound_drop_plaintext).toBe(0n);
    const dump = await wggo!.show();
    expect(dump).toMatch(/10\.244\.0\.0\/24/);
  });

  it("counts the peer's transfer as wireguard-go does, handshake messages included (wg show's numbers)", async () => {
    const { a, b } = await setup();
    expect(received((await bed!.exec(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.1.0'])).stdout)).toBe(3);
    expect(received((await bed!.exec(b.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '3', '-s', '1000', '10.244.0.0'])).stdout)).toBe(2);
    /** tulle's view (what `wg show` and `tulle status` add up) and wireguard-go's, swapped to tulle's side */
    const ours = () => addTraffic(tulle!.dataPlane.peerTraffic(1), tulle!.device.peerInfo(1)!.handshakes)!;
    const theirs = async () => {
      const [, , , , , rx, tx] = (await wggo!.show()).trim().split('\n')[1]!.split('\t');
      return { txBytes: Number(rx), rxBytes: Number(tx) };
    };
    // equal once nothing is in flight (a keepalive may be on its way when first read)
    let last: unknown;
    await waitFor('the same transfer on both sides', async () => {
      const o = ours(), t = await theirs();
      last = { ours: o, theirs: t };
      return o.txBytes === t.txBytes && o.rxBytes === t.rxBytes;
    }, 15_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(last)}`);
    });
    // the handshake is in it: one initiation out (148 bytes), one response in (92)
    expect(tulle!.device.peerInfo(1)!.handshakes).toEqual({ txPackets: 1, txBytes: 148, rxPackets: 1, rxBytes: 92 });
  });

  it('wireguard-go initiates: ping and iperf3 both directions', async () => {
    const { a, b } = await setup();
    const out = await bed!.exec(b.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.0.0']);
    expect(received(out.stdout)).toBe(3);
    expect(tulle!.device.counters.initiations_received).toBeGreaterThanOrEqual(1);
    expect(tulle!.device.counters.initiations_sent).toBe(0);
    const back = await bed!.exec(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.1.0']);
    expect(received(back.stdout)).toBe(3);
    const up = await iperf(a.ns, b.ns, '10.244.0.0', 3);
    const down = await iperf(a.ns, b.ns, '10.244.0.0', 3, true);
    expect(up.bytes).toBeGreaterThan(1_000_000);
    expect(down.bytes).toBeGreaterThan(1_000_000);
  });

  it('tulle as responder to repeated fresh handshakes from wireguard-go (its peer re-added)', async () => {
    const { a, b } = await setup();
    for (let round = 0; round < 3; round++) {
      if (round > 0) {
        await wggo!.removePeer(tulle!.device.publicKey);
        await wggo!.addPeer({ publicKey: tulle!.device.publicKey, endpoint: `${a.underlayIp}:51820`, allowedIps: '10.244.0.0/24' });
      }
      const out = await bed!.exec(b.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.0.0']);
      expect(received(out.stdout), `round ${round}`).toBe(3);
    }
    expect(tulle!.device.counters.initiations_received).toBe(3);
    expect(tulle!.device.counters.responses_sent).toBe(3);
    // each new session became current with wireguard-go's first packet on it; none is kept past three
    expect(tulle!.device.sessionsOf(1).length).toBe(3);
    const c = tulle!.dataPlane.counters();
    expect(c.inbound_drop_unknown_index).toBe(0n);
    expect(c.inbound_drop_decrypt).toBe(0n);
  });

  it('with the network PSK, and tulle\'s persistent keepalive', async () => {
    const { a } = await setup(undefined, { psk: randomBytes(32), keepaliveS: 1 });
    const out = await bed!.exec(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.244.1.0']);
    expect(received(out.stdout)).toBe(3);
    // with no traffic, tulle's keepalive (every second) still reaches wireguard-go: its rx grows
    const rx = async () => Number((await wggo!.show()).trim().split('\n')[1]!.split('\t')[5]);
    const rx0 = await rx();
    const sent0 = tulle!.device.counters.keepalives_requested;
    await waitFor('keepalives from tulle', async () => (await rx()) >= rx0 + 2 * 32, 8000);
    expect(tulle!.device.counters.keepalives_requested).toBeGreaterThanOrEqual(sent0 + 2);
  });

  it('a PSK mismatch fails the handshake, and nothing gets through', async () => {
    const { a } = await setup(undefined, { psk: randomBytes(32), wgPsk: randomBytes(32) });
    const out = await bed!.exec(a.ns, 'sh', ['-c', 'ping -c 2 -i 0.5 -W 1 10.244.1.0 || true']);
    expect(received(out.stdout)).toBe(0);
    expect(tulle!.device.counters.drop_bad_handshake).toBeGreaterThanOrEqual(1);
    expect(tulle!.device.counters.sessions_installed).toBe(0);
    expect(tulle!.dataPlane.counters().outbound_wg_staged).toBeGreaterThanOrEqual(1n);
  });

  it('keeps traffic flowing across rekeys (rekey after 2 s)', async () => {
    const { a, b } = await setup({ rekeyAfterTimeMs: 2000, rekeyTimeoutMs: 500 });
    const first = await bed!.exec(a.ns, 'ping', ['-c', '1', '-W', '3', '10.244.1.0']);
    expect(received(first.stdout)).toBe(1);
    const before = tulle!.device.counters.sessions_installed;
    const up = await iperf(b.ns, a.ns, '10.244.1.0', 7);
    const ping = await bed!.exec(a.ns, 'ping', ['-c', '25', '-i', '0.2', '-W', '2', '10.244.1.0']);
    const rekeys = tulle!.device.counters.sessions_installed - before;
    console.log(`rekeys during the run: ${rekeys}, iperf3 ${(up.bits_per_second / 1e6).toFixed(0)} Mbit/s`);
    expect(rekeys).toBeGreaterThanOrEqual(3);
    expect(up.bytes).toBeGreaterThan(1_000_000);
    expect(received(ping.stdout)).toBe(25);
    expect(tulle!.device.sessionsOf(1).length).toBeLessThanOrEqual(3);
    // nothing arrived on a session we had already let go of
    const c = tulle!.dataPlane.counters();
    expect(c.inbound_drop_decrypt).toBe(0n);
    expect(c.inbound_drop_unknown_index).toBe(0n);
    expect(c.inbound_drop_expired_session).toBe(0n);
    expect(c.outbound_drop_stage_full).toBe(0n);
  });
});
