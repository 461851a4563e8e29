/** `tulle status` text (src/control/status-render.ts): wg show's layout and units, colour only when asked. */
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, renderStatus } from '../../src/control/status-render.js';
import type { StatusSnapshot } from '../../src/control/status-snapshot.js';

const NOW = 1_800_000_000_000;

function snapshot(): StatusSnapshot {
  return {
    version: 'tulle 0.1.0', at: NOW, tun: 'tulle0', listenPort: 51820,
    node: {
      state: 'running', ready: true, error: undefined, network: '10.244.0.0/16', backend: 'wireguard', mtu: 1420, publicIp: '198.18.0.10',
      etcd: { etcd: 'connected', since: NOW - 65_000, lastError: undefined },
      lease: { subnet: '10.244.38.0/24', expiresAt: NOW + 3_600_000 + 120_000, renewedAt: NOW, renewals: 0 } as never,
      leases: 2, revision: 4, reacquiring: false, routes: { '10.244.88.0/24': '198.18.0.11:51820' }, peers: 1, timings: {},
      backendStatus: { publicKey: 'PUBKEY=' },
    },
    peers: [
      {
        id: 1, subnets: ['10.244.88.0/24'], endpoint: '198.18.0.11:51820', publicKey: 'PEERKEY=', lastHandshakeAt: NOW - 63_000,
        lastSentAt: NOW - 2000, lastReceivedAt: NOW - 500, persistentKeepaliveSeconds: 25,
        traffic: { rxPackets: 10, rxBytes: 1_258_291, txPackets: 20, txBytes: 512 },
        drops: { outbound_drop_send_error: 1, inbound_drop_decrypt: 2 },
      },
      { id: 2, subnets: ['10.244.99.0/24'], endpoint: '198.18.0.12:51820', publicKey: 'OTHER=', drops: {} },
    ],
    drops: { inbound_drop_replay: 3, outbound_drop_no_route: 7 },
  };
}

describe('status text', () => {
  it("uses wg's units and durations", () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(1_258_291)).toBe('1.20 MiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.00 GiB');
    expect(formatDuration(0)).toBe('Now');
    expect(formatDuration(63_000)).toBe('1 minute, 3 seconds');
    expect(formatDuration(86_400_000 + 7_201_000)).toBe('1 day, 2 hours, 1 second');
  });

  it('lays out the node then each peer, plain when not coloured', () => {
    const text = renderStatus(snapshot(), { color: false });
    expect(text).not.toMatch(/\x1b\[/);
    expect(text.split('\n').slice(0, 14)).toEqual([
      'node: tulle0',
      '  state: running',
      '  backend: wireguard',
      '  public key: PUBKEY=',
      '  listening port: 51820',
      '  public ip: 198.18.0.10',
      '  network: 10.244.0.0/16',
      '  subnet: 10.244.38.0/24 (lease expires in 1 hour, 2 minutes)',
      '  etcd: connected for 1 minute, 5 seconds',
      '  mtu: 1420',
      '  peers: 2',
      '  drops: outbound no_route 7, inbound replay 3',
      '',
      'peer: 10.244.88.0/24',
    ]);
    expect(text).toContain('  latest handshake: 1 minute, 3 seconds ago\n');
    expect(text).toContain('  transfer: 1.20 MiB received, 512 B sent (10 / 20 packets)\n');
    expect(text).toContain('  drops: inbound decrypt 2, outbound send_error 1\n');
    expect(text).toContain('  last activity: sent 2 seconds ago, received Now\n');
    expect(text).toContain('  persistent keepalive: every 25 seconds\n');
    // a peer with no handshake yet says so; no transfer line without counters
    const second = text.slice(text.indexOf('peer: 10.244.99.0/24'));
    expect(second).toContain('latest handshake: none yet');
    expect(second).not.toContain('transfer');
    expect(second).toContain('  drops: none\n');
  });

  it('colours on request, and says what is wrong', () => {
    const s = snapshot();
    s.node.state = 'waiting-for-config';
    s.node.error = 'no network config at /coreos.com/network/config';
    s.node.etcd = { etcd: 'disconnected', since: NOW - 1000, lastError: 'connect ECONNREFUSED' };
    const text = renderStatus(s, { color: true });
    expect(text).toMatch(/\x1b\[33mwaiting-for-config\x1b\[0m \(no network config/);
    expect(text).toMatch(/\x1b\[31mdisconnected\x1b\[0m for 1 second \(connect ECONNREFUSED\)/);
    expect(text).toMatch(/\x1b\[33mpeer\x1b\[0m/);
    expect(text).toMatch(/drops\x1b\[0m: \x1b\[31minbound decrypt 2, outbound send_error 1\x1b\[0m/); // a peer's drops stand out
  });

  it('names the store: etcd, or the Kubernetes API with --kube-subnet-mgr', () => {
    const s = snapshot();
    expect(renderStatus(s, { color: false })).toContain('  etcd: connected for 1 minute, 5 seconds\n');
    const { etcd: _, ...rest } = s.node;
    s.node = { ...rest, kubeApi: { kubeApi: 'disconnected', since: NOW - 2000, lastError: 'connect ECONNREFUSED' } };
    const text = renderStatus(s, { color: false });
    expect(text).toContain('  kubernetes api: disconnected for 2 seconds (connect ECONNREFUSED)\n');
    expect(text).not.toContain('etcd');
  });

  it('dual stack: the IPv6 underlay address, the IPv6 network and both subnets', () => {
    const s = snapshot();
    s.node = { ...s.node, publicIpv6: 'fd00:198:18::10', ipv6Network: 'fd00:10:244::/56', lease: { ...s.node.lease!, ipv6Subnet: 'fd00:10:244:26::/64' } };
    const text = renderStatus(s, { color: false });
    expect(text).toContain('  public ipv6: fd00:198:18::10\n  network: 10.244.0.0/16\n  ipv6 network: fd00:10:244::/56\n');
    expect(text).toContain('  subnet: 10.244.38.0/24 and fd00:10:244:26::/64 (lease expires in 1 hour, 2 minutes)\n');
  });
});
