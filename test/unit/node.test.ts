/** createNode() driven with fakes at every boundary: registry, data plane, host, clock. */
import pino from 'pino';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { udpBackend } from '../../src/backend/udp-backend.js';
import type { Command } from '../../src/dataplane/commands.js';
import type { DataPlane } from '../../src/dataplane/dataplane.js';
import { encodeLeaseValue } from '../../src/lease/lease.js';
import type { HostOps } from '../../src/node/host-ops.js';
import { createNode, type NodeConfig } from '../../src/node/node.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import type { StoreKey } from '../../src/registry/registry.js';
import { TulleError } from '../../src/util/errors.js';
import { fakeDataPlane } from './fake-dataplane.js';
import { FakeClock } from './fake-clock.js';

function fakes(config: string | undefined, logTo?: { write(s: string): void }, metrics?: client.Registry, more: Partial<NodeConfig> = {}, storeKey?: StoreKey) {
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock, config);
  if (storeKey) Object.assign(registry, { storeKey }); // as the Kubernetes registry names itself
  const applied: Command[] = [];
  const calls: Array<[string, unknown]> = [];
  let stopped = false;
  const moreSent = { packets: 0 }; // added to every peer's txPackets
  const trafficReads = { n: 0 }; // calls of peerTraffic
  const dp: DataPlane = fakeDataPlane({
    apply: (c) => void applied.push(...c), stop: () => void (stopped = true),
    // per-peer traffic: peer id n has sent n packets of 100 bytes and received 2n
    peerTraffic: (id) => (trafficReads.n++, { txPackets: id + moreSent.packets, txBytes: id * 100, rxPackets: 2 * id, rxBytes: 200 * id }),
    // per-peer drops: peer id n had n spoofed packets and one send error (id 0: none)
    peerDrops: (id): Record<string, number> => (id ? { inbound_drop_spoofed_source: id, outbound_drop_send_error: 1 } : {}),
    // (as in the real data plane, the global counters move whenever a peer's do)
    counters: () => ({ inbound_drop_replay: 0n, outbound_drop_no_route: 4n, outbound_sent_packets: 9n + BigInt(moreSent.packets) }),
  });
  const rec = (name: string) => async (...a: unknown[]) => void calls.push([name, a]);
  const host: HostOps = {
    configureTun: rec('configureTun'), replaceTunAddress: rec('replaceTunAddress'), removeRoutes: rec('removeRoutes'),
    hostRules: (c: unknown) => {
      calls.push(['hostRules', [c]]);
      return { start: rec('rules.start'), setSubnet: rec('rules.setSubnet'), stop: rec('rules.stop'), status: () => ({ mode: 'iptables' as const, chains: [], installed: true, restored: 0, error: undefined }) };
    },
    writeSubnetFile: rec('writeSubnetFile'),
    writeCniConf: async (...a: unknown[]) => (calls.push(['writeCniConf', a]), 'written' as const),
    readPreviousSubnet: async () => undefined, loadState: async () => undefined, saveState: rec('saveState'),
  } as HostOps;
  const cfg: NodeConfig = {
    tunName: 'tulle0', publicIp: '198.18.0.10', underlayMtu: 1500, ipMasq: false, subnetFile: '/x/subnet.env', stateDir: '/x/state',
    leaseTtlMs: 3600_000, renewMarginMs: 600_000, configKey: '/coreos.com/network/config', ...more,
  };
  const node = createNode(cfg, {
    registry, clock, host, log: logTo ? pino({ level: 'info' }, logTo) : pino({ level: 'silent' }), random: () => 0.5,
    backendFor: (b) => udpBackend(b.type === 'udp' ? b.port : 0, () => dp), metrics,
  });
  return { node, registry, clock, applied, calls, host, isStopped: () => stopped, moreSent, trafficReads };
}

describe('createNode', () => {
  it("reports the lease store's state under the store's own name: etcd by default, kubeApi for the Kubernetes registry", async () => {
    const CONFIG = '{"Network":"10.244.0.0/16"}';
    for (const [key, absent] of [[undefined, 'kubeApi'], ['kubeApi', 'etcd']] as const) {
      const f = fakes(CONFIG, undefined, undefined, {}, key);
      const before = f.node.status(); // still reading the config: the state from that
      await f.clock.advance(0);
      await f.node.ready;
      const s = f.node.status();
      const k = key ?? 'etcd';
      expect(before).toHaveProperty(k);
      expect(s).toMatchObject({ [k]: { [k]: 'connected' } });
      expect(s).not.toHaveProperty(absent);
      await f.node.stop();
    }
  });

  it('gets a lease, sets up the TUN, subnet.env and peers, then follows leases', async () => {
    const f = fakes('{"Network":"10.244.0.0/16","SubnetMin":"10.244.5.0","SubnetMax":"10.244.5.0"}');
    f.registry.put('10.244.9.0-24', encodeLeaseValue({ PublicIP: '198.18.0.11', PublicIPv6: null, BackendType: 'udp' }));
    await f.clock.advance(0);
    await f.node.ready;
    expect(f.calls.find((c) => c[0] === 'configureTun')![1]).toEqual([{ name: 'tulle0', addresses: ['10.244.5.0/32'], mtu: 1472, routes: ['10.244.0.0/16'] }]);
    expect(f.calls.find((c) => c[0] === 'writeSubnetFile')![1]).toEqual(['/x/subnet.env', { network: '10.244.0.0/16', subnet: '10.244.5.0/24', ipv6Network: undefined, ipv6Subnet: undefined, mtu: 1472, ipMasq: false }]);
    expect(f.applied).toEqual([{ op: 'setPeer', peer: 1, address: '198.18.0.11', port: 8285 }, { op: 'setRoute', subnet: '10.244.9.0/24', peer: 1 }]);
    expect(f.node.status()).toMatchObject({ state: 'running', ready: true, peers: 1, lease: { subnet: '10.244.5.0/24' } });
    f.registry.delete('10.244.9.0-24');
    await f.clock.advance(10);
    expect(f.applied.slice(2)).toEqual([{ op: 'deleteRoute', subnet: '10.244.9.0/24' }, { op: 'deletePeer', peer: 1 }]);
    await f.node.stop();
    expect(f.isStopped()).toBe(true);
    expect(f.calls.some((c) => c[0] === 'removeRoutes')).toBe(true);
    // flanneld's host rules: its defaults (forward rules on, resync 5 s, iptables), removed on stop
    expect(f.calls.find((c) => c[0] === 'hostRules')![1]).toEqual([{
      nftables: false, network: '10.244.0.0/16', subnet: '10.244.5.0/24', ipMasq: false, forwardRules: true, fullyRandomDisable: false, resyncMs: 5000,
    }]);
    expect(f.calls.map((c) => c[0]).filter((n) => n.startsWith('rules.'))).toEqual(['rules.start', 'rules.stop']);
    expect(f.registry.get('10.244.5.0-24')).toBeDefined(); // kept for the next start
    expect(f.node.status().state).toBe('stopped');
  });

  it('snapshot(): the node, its peers with their traffic, drops above zero; per-peer series in /metrics', async () => {
    const metrics = new client.Registry();
    const f = fakes('{"Network":"10.244.0.0/16","SubnetMin":"10.244.5.0","SubnetMax":"10.244.5.0"}', undefined, metrics);
    f.registry.put('10.244.9.0-24', encodeLeaseValue({ PublicIP: '198.18.0.11', PublicIPv6: null, BackendType: 'udp' }));
    f.registry.put('10.244.7.0-24', encodeLeaseValue({ PublicIP: '198.18.0.12', PublicIPv6: null, BackendType: 'udp' }));
    await f.clock.advance(0);
    await f.node.ready;
    const s = f.node.snapshot();
    expect(s).toMatchObject({ tun: 'tulle0', listenPort: 8285, version: expect.stringMatching(/^tulle /), node: { state: 'running', publicIp: '198.18.0.10' } });
    expect(s.drops).toEqual({ outbound_drop_no_route: 4 });
    const bySubnet = Object.fromEntries(s.peers.map((p) => [p.subnets[0], p]));
    expect(bySubnet['10.244.9.0/24']).toEqual({ id: expect.any(Number), subnets: ['10.244.9.0/24'], endpoint: '198.18.0.11:8285', traffic: expect.any(Object), drops: expect.any(Object) });
    const id = bySubnet['10.244.7.0/24']!.id;
    expect(id).toBeGreaterThan(0);
    expect(bySubnet['10.244.7.0/24']!.traffic).toEqual({ txPackets: id, txBytes: id * 100, rxPackets: 2 * id, rxBytes: 200 * id });
    expect(bySubnet['10.244.7.0/24']!.drops).toEqual({ inbound_drop_spoofed_source: id, outbound_drop_send_error: 1 });
    expect(f.node.uapiDevice()).toBeUndefined(); // plain mode: no `wg show`
    // last activity (plain mode): dated by the once-a-second sample in which a counter grew
    expect(bySubnet['10.244.7.0/24']).not.toHaveProperty('lastSentAt');
    await f.clock.advance(1000);
    f.moreSent.packets = 1;
    await f.clock.advance(1000);
    const sentAt = f.clock.now();
    // idle (no counter moved, no peer changed): the once-a-second sample reads no peer's counters
    const reads = f.trafficReads.n;
    await f.clock.advance(3000);
    expect(f.trafficReads.n).toBe(reads);
    const later = f.node.snapshot().peers.find((p) => p.id === id)!;
    expect(later.lastSentAt).toBe(sentAt);
    expect(later).not.toHaveProperty('lastReceivedAt');
    const text = await metrics.metrics();
    expect(text).toContain(`tulle_peer_packets_total{subnet="10.244.7.0/24",direction="outbound"} ${id + f.moreSent.packets}`);
    expect(text).toContain(`tulle_peer_bytes_total{subnet="10.244.7.0/24",direction="inbound"} ${200 * id}`);
    expect(text).toContain(`tulle_peer_drops_total{subnet="10.244.7.0/24",direction="inbound",reason="spoofed_source"} ${id}`);
    expect(text).toContain('tulle_peer_drops_total{subnet="10.244.7.0/24",direction="outbound",reason="send_error"} 1');
    await f.node.stop();
  });

  it('waits out a missing or invalid config (not ready, says why, one log line per change), then runs', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const f = fakes(undefined, { write: (s: string) => void lines.push(JSON.parse(s)) });
    await f.clock.advance(1000);
    expect(f.node.status()).toMatchObject({ state: 'waiting-for-config', ready: false, error: expect.stringMatching(/^no network config at \/coreos.com\/network\/config/) });
    f.registry.config = '{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":"x"}}';
    await f.clock.advance(10_000);
    expect(f.node.status()).toMatchObject({
      state: 'waiting-for-config', ready: false,
      error: 'invalid network config at /coreos.com/network/config: Backend.Port: must be a whole number, got "x"',
    });
    f.registry.config = '{"Network":"10.244.0.0/16","SubnetLen":33}';
    await f.clock.advance(10_000);
    expect(f.node.status().error).toMatch(/SubnetLen: must be at most 30/);
    // fixed: an unknown field is ignored with one line; the node runs
    f.registry.config = '{"network":"10.244.0.0/16","Backend":{"Type":"UDP","VNI":1},"SubnetMin":"10.244.5.0","SubnetMax":"10.244.5.0"}';
    await f.clock.advance(2000);
    await f.node.ready;
    expect(f.node.status()).toMatchObject({ state: 'running', ready: true, error: undefined, lease: { subnet: '10.244.5.0/24' } });
    const said = lines.filter((l) => l.level >= 40).map((l) => l.msg);
    expect(said).toEqual([
      expect.stringMatching(/^no network config at .*; waiting for it to be fixed \(not ready\)$/),
      expect.stringMatching(/^invalid network config at .*Backend\.Port/),
      expect.stringMatching(/^invalid network config at .*SubnetLen/),
      'network config: unknown field "Backend.VNI" ignored for Backend.Type "udp" (as flanneld does)',
    ]);
    await f.node.stop();
  });

  it('a subnet moved while running is not hidden: not ready, /healthz and a metric say pods must be recreated', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const metrics = new client.Registry();
    const f = fakes('{"Network":"10.244.0.0/16","SubnetMin":"10.244.5.0","SubnetMax":"10.244.6.0"}', { write: (s: string) => void lines.push(JSON.parse(s)) }, metrics);
    await f.clock.advance(0);
    await f.node.ready;
    const old = f.node.status().lease!.subnet;
    expect(await metrics.getSingleMetricAsString('tulle_subnet_moved')).toMatch(/^tulle_subnet_moved 0$/m);
    // another node writes our subnet: we move to the other one
    f.registry.put(old.replace('/', '-'), encodeLeaseValue({ PublicIP: '198.18.0.77', PublicIPv6: null, BackendType: 'udp' }));
    await f.clock.advance(5000);
    const s = f.node.status();
    expect(s.lease!.subnet).not.toBe(old);
    expect(s).toMatchObject({ state: 'subnet-moved', ready: false, subnetMoved: { from: old, to: s.lease!.subnet, action: expect.stringMatching(/recreate them/) } });
    expect(await metrics.getSingleMetricAsString('tulle_subnet_moved')).toMatch(/^tulle_subnet_moved 1$/m);
    expect(await metrics.getSingleMetricAsString('tulle_subnet_moves_total')).toMatch(/^tulle_subnet_moves_total 1$/m);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
      `our subnet moved from ${old} to ${s.lease!.subnet} while running: pods on ${old} must be recreated (not ready until restart)`,
    ]);
    await f.node.stop();
  });

  it('--write-cni-conf-when-ready: the conflist from the lease before ready, again when the subnet moves; none without it', async () => {
    const f = fakes('{"Network":"10.244.0.0/16","SubnetMin":"10.244.5.0","SubnetMax":"10.244.6.0"}', undefined, undefined, {
      cniConfPath: '/x/net.d/10-tulle.conflist', ipMasq: true,
    });
    let readyAt = -1;
    void f.node.ready.then(() => (readyAt = f.calls.length));
    await f.clock.advance(0);
    await f.node.ready;
    const cni = () => f.calls.filter((c) => c[0] === 'writeCniConf').map((c) => c[1]);
    const old = f.node.status().lease!.subnet;
    expect(cni()).toEqual([['/x/net.d/10-tulle.conflist', { network: '10.244.0.0/16', subnet: old, mtu: 1472, ipMasq: true }, { overwrite: false }]]);
    expect(f.calls.findIndex((c) => c[0] === 'writeCniConf')).toBeLessThan(readyAt);
    f.registry.put(old.replace('/', '-'), encodeLeaseValue({ PublicIP: '198.18.0.77', PublicIPv6: null, BackendType: 'udp' }));
    await f.clock.advance(5000);
    const now = f.node.status().lease!.subnet;
    expect(now).not.toBe(old);
    expect(cni().at(-1)).toEqual(['/x/net.d/10-tulle.conflist', { network: '10.244.0.0/16', subnet: now, mtu: 1472, ipMasq: true }, { overwrite: false }]);
    await f.node.stop();

    const g = fakes('{"Network":"10.244.0.0/16"}');
    await g.clock.advance(0);
    await g.node.ready;
    expect(g.calls.some((c) => c[0] === 'writeCniConf')).toBe(false);
    await g.node.stop();
  });

  it('a CNI config it may not write fails the start, naming the file', async () => {
    const f = fakes('{"Network":"10.244.0.0/16"}', undefined, undefined, { cniConfPath: '/x/10-tulle.conflist' });
    f.host.writeCniConf = async () => {
      throw new TulleError('ERR_TULLE_CNI_CONF_FOREIGN', '/x/10-tulle.conflist exists and was not written by tulle');
    };
    await f.clock.advance(0);
    await expect(f.node.ready).rejects.toMatchObject({ code: 'ERR_TULLE_CNI_CONF_FOREIGN' });
    expect(f.node.status()).toMatchObject({ state: 'failed', error: expect.stringContaining('/x/10-tulle.conflist') });
    await f.node.stop();
  });
});
