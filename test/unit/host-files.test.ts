import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadState, saveState } from '../../src/host/state-dir.js';
import { formatSubnetEnv, readPreviousSubnet, writeSubnetFile } from '../../src/host/subnet-file.js';
import { formatLine } from '../../src/log/logger.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'tulle-host-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('subnet.env', () => {
  it("is flannel's format", () => {
    expect(formatSubnetEnv({ network: '10.244.0.0/16', subnet: '10.244.3.0/24', mtu: 1472, ipMasq: true })).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
    );
  });

  it('writes the IPv6 pair after the IPv4 one, as flanneld (and only it in an IPv6-only network)', () => {
    // flanneld's WriteSubnetFile, by hand: NETWORK, SUBNET, IPV6_NETWORK, IPV6_SUBNET, MTU, IPMASQ
    expect(formatSubnetEnv({ network: '10.244.0.0/16', subnet: '10.244.3.0/24', ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:3::/64', mtu: 1472, ipMasq: false })).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n',
    );
    expect(formatSubnetEnv({ ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:3::/64', mtu: 1452, ipMasq: true })).toBe(
      'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1452\nFLANNEL_IPMASQ=true\n',
    );
  });

  it('reads both previous subnets back (dual stack, IPv6 only)', async () => {
    const file = path.join(tmp(), 'subnet.env');
    await writeSubnetFile(file, { network: '10.244.0.0/16', subnet: '10.244.3.0/24', ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:3::/64', mtu: 1472, ipMasq: false });
    expect(await readPreviousSubnet(file)).toEqual({ subnet: '10.244.3.0/24', ipv6Subnet: 'fd00:10:244:3::/64' });
    await writeSubnetFile(file, { ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:7::/64', mtu: 1472, ipMasq: false });
    expect(await readPreviousSubnet(file)).toEqual({ subnet: 'fd00:10:244:7::/64', ipv6Subnet: 'fd00:10:244:7::/64' });
  });

  it('is written atomically (no temp file left) into a new directory, and read back as the previous subnet', async () => {
    const dir = tmp();
    const file = path.join(dir, 'flannel', 'subnet.env');
    await writeSubnetFile(file, { network: '10.244.0.0/16', subnet: '10.244.9.0/24', mtu: 1472, ipMasq: false });
    await writeSubnetFile(file, { network: '10.244.0.0/16', subnet: '10.244.3.0/24', mtu: 1472, ipMasq: false });
    expect(readdirSync(path.dirname(file))).toEqual(['subnet.env']);
    expect(await readPreviousSubnet(file)).toEqual({ subnet: '10.244.3.0/24', ipv6Subnet: undefined });
    expect(await readPreviousSubnet(path.join(dir, 'missing'))).toBeUndefined();
    writeFileSync(file, 'FLANNEL_SUBNET=garbage\n');
    expect(await readPreviousSubnet(file)).toBeUndefined();
  });
});

describe('state dir', () => {
  it('keeps the previous subnet in CBOR, mode 0600, and ignores junk', async () => {
    const dir = tmp();
    expect(await loadState(dir)).toBeUndefined();
    await saveState(dir, { network: '10.244.0.0/16', subnet: '10.244.3.0/24', publicIp: '198.18.0.10' });
    expect(await loadState(dir)).toEqual({ network: '10.244.0.0/16', subnet: '10.244.3.0/24', publicIp: '198.18.0.10' });
    writeFileSync(path.join(dir, 'state.cbor'), 'junk');
    expect(await loadState(dir)).toBeUndefined();
  });
});

describe('tty log format', () => {
  it('turns a JSON line into a readable one', () => {
    const line = JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1, 12, 3, 4, 5), pid: 1, component: 'lease', msg: 'lease acquired', subnet: '10.244.3.0/24', attempt: 1 });
    expect(formatLine(line, false)).toBe('12:03:04.005 INFO  lease: lease acquired subnet=10.244.3.0/24 attempt=1\n');
    expect(formatLine('not json', false)).toBe('not json');
  });
});
