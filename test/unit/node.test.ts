/** createNode() driven with fakes at every boundary: registry, data plane, host, clock. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { udpBackend } from '../../src/backend/udp-backend.js';
import type { Command } from '../../src/dataplane/commands.js';
import type { DataPlane } from '../../src/dataplane/dataplane.js';
import { encodeLeaseValue } from '../../src/lease/lease.js';
import type { HostOps } from '../../src/node/host-ops.js';
import { createNode, type NodeConfig } from '../../src/node/node.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { ConfigError } from '../../src/util/errors.js';
import { fakeDataPlane } from './fake-dataplane.js';
import { FakeClock } from './fake-clock.js';

function fakes(config: string | undefined) {
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock, config);
  const applied: Command[] = [];
  const calls: Array<[string, unknown]> = [];
  let stopped = false;
  const dp: DataPlane = fakeDataPlane({ apply: (c) => void applied.push(...c), stop: () => void (stopped = true) });
  const rec = (name: string) => async (...a: unknown[]) => void calls.push([name, a]);
  const host: HostOps = {
    configureTun: rec('configureTun'), replaceTunAddress: rec('replaceTunAddress'), removeRoutes: rec('removeRoutes'),
    hostRules: (c: unknown) => {
      calls.push(['hostRules', [c]]);
      return { start: rec('rules.start'), setSubnet: rec('rules.setSubnet'), stop: rec('rules.stop'), status: () => ({ mode: 'iptables' as const, chains: [], installed: true, restored: 0, error: undefined }) };
    },
    writeSubnetFile: rec('writeSubnetFile'),
    readPreviousSubnet: async () => undefined, loadState: async () => undefined, saveState: rec('saveState'),
  } as HostOps;
  const cfg: NodeConfig = {
    tunName: 'tulle0', publicIp: '198.18.0.10', underlayMtu: 1500, ipMasq: false, subnetFile: '/x/subnet.env', stateDir: '/x/state',
    leaseTtlMs: 3600_000, renewMarginMs: 600_000, configKey: '/coreos.com/network/config',
  };
  const node = createNode(cfg, {
    registry, clock, host, log: pino({ level: 'silent' }), random: () => 0.5,
    backendFor: (b) => udpBackend(b.type === 'udp' ? b.port : 0, () => dp),
  });
  return { node, registry, clock, applied, calls, isStopped: () => stopped };
}

describe('createNode', () => {
  it('gets a lease, sets up the TUN, subnet.env and peers, then follows leases', async () => {
    const f = fakes('{"Network":"10.244.0.0/16","SubnetMin":"10.244.5.0","SubnetMax":"10.244.5.0"}');
    f.registry.put('10.244.9.0-24', encodeLeaseValue({ PublicIP: '198.18.0.11', PublicIPv6: null, BackendType: 'udp' }));
    await f.clock.advance(0);
    await f.node.ready;
    expect(f.calls.find((c) => c[0] === 'configureTun')![1]).toEqual([{ name: 'tulle0', address: '10.244.5.0/32', mtu: 1472, routes: ['10.244.0.0/16'] }]);
    expect(f.calls.find((c) => c[0] === 'writeSubnetFile')![1]).toEqual(['/x/subnet.env', { network: '10.244.0.0/16', subnet: '10.244.5.0/24', mtu: 1472, ipMasq: false }]);
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

  it('waits for a missing config, then fails on an invalid one naming the key and field', async () => {
    const f = fakes(undefined);
    await f.clock.advance(1000);
    expect(f.node.status()).toMatchObject({ state: 'waiting-for-config', error: 'no network config at /coreos.com/network/config' });
    f.registry.config = '{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":"x"}}';
    await f.clock.advance(10_000);
    const err = await f.node.done.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('/coreos.com/network/config: Backend.Port');
    expect(f.node.status().state).toBe('failed');
  });
});
