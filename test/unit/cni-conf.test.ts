/**
 * The CNI conflist a node writes (--write-cni-conf-when-ready): rendered as flannel's plugin
 * would hand the bridge plugin its config, written atomically, rewritten when the lease
 * changes, a user's own file left alone unless --cni-conf-overwrite; and the node writes it
 * from its lease before it is ready, and again when its subnet moves.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { formatCniConflist, isTulleConflist, renderCniConflist, writeCniConf } from '../../src/host/cni-conf.js';
import { delegateConf, parseSubnetEnv } from '../cni/pods.js';
import { formatSubnetEnv } from '../../src/host/subnet-file.js';

const lease = { network: '10.244.0.0/16', subnet: '10.244.7.0/24', mtu: 1472, ipMasq: true };

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tulle-cni-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('renderCniConflist', () => {
  it('bridge + host-local + portmap from the lease; the bridge gets what flannel\'s plugin would give it', () => {
    const c = renderCniConflist(lease);
    expect(c).toEqual({
      name: 'cbr0', cniVersion: '0.3.1', generatedBy: 'tulle',
      plugins: [
        {
          type: 'bridge', bridge: 'cni0', isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: false, mtu: 1472,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.7.0/24' }]], routes: [{ dst: '10.244.0.0/16' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
    // what libcni hands the bridge plugin (the list's name and version injected) is what the
    // flannel plugin delegates for the same node's subnet.env (test/cni/pods.ts mirrors flannel_linux.go)
    for (const ipMasq of [true, false]) {
      const l = { ...lease, ipMasq };
      const bridge: Record<string, unknown> = { ...renderCniConflist(l).plugins[0], name: 'cbr0', cniVersion: '0.3.1' };
      const { bridge: bridgeName, ...rest } = bridge;
      expect(bridgeName).toBe('cni0'); // the bridge plugin's default, which flannel leaves in place
      expect(rest).toEqual(delegateConf(parseSubnetEnv(formatSubnetEnv(l))));
    }
  });

  it("a range and a route per family in a dual-stack or IPv6-only network, as flannel's plugin delegates them", () => {
    const dual = { ...lease, ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:7::/64' };
    const v6only = { mtu: 1452, ipMasq: true, ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:7::/64' };
    expect(renderCniConflist(dual).plugins[0]).toMatchObject({
      ipam: { ranges: [[{ subnet: '10.244.7.0/24' }], [{ subnet: 'fd00:10:244:7::/64' }]], routes: [{ dst: '10.244.0.0/16' }, { dst: 'fd00:10:244::/56' }] },
    });
    expect(renderCniConflist(v6only).plugins[0]).toMatchObject({ ipam: { ranges: [[{ subnet: 'fd00:10:244:7::/64' }]], routes: [{ dst: 'fd00:10:244::/56' }] } });
    for (const l of [dual, v6only]) {
      const { bridge: _, ...rest } = { ...renderCniConflist(l).plugins[0], name: 'cbr0', cniVersion: '0.3.1' } as Record<string, unknown>;
      expect(rest).toEqual(delegateConf(parseSubnetEnv(formatSubnetEnv(l))));
    }
  });

  it('follows the lease: another subnet, Network and MTU, and ipMasq the opposite of --ip-masq', () => {
    const c = renderCniConflist({ network: '10.200.0.0/14', subnet: '10.201.3.0/26', mtu: 1420, ipMasq: false });
    expect(c.plugins[0]).toMatchObject({ ipMasq: true, mtu: 1420, ipam: { ranges: [[{ subnet: '10.201.3.0/26' }]], routes: [{ dst: '10.200.0.0/14' }] } });
    expect(JSON.parse(formatCniConflist(lease))).toEqual(renderCniConflist(lease));
    expect(formatCniConflist(lease).endsWith('}\n')).toBe(true);
  });

  it('knows its own files by the marker, and nothing else', () => {
    expect(isTulleConflist(formatCniConflist(lease))).toBe(true);
    expect(isTulleConflist('{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel"}]}')).toBe(false);
    expect(isTulleConflist('{"generatedBy":"someone else"}')).toBe(false);
    expect(isTulleConflist('not json')).toBe(false);
    expect(isTulleConflist('null')).toBe(false);
  });
});

describe('writeCniConf', () => {
  it('writes atomically, leaves no temp file, rewrites when the lease changes and not when it does not', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'net.d', '10-tulle.conflist'); // the directory is made if missing
    expect(await writeCniConf(file, lease)).toBe('written');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(renderCniConflist(lease));
    expect(await writeCniConf(file, lease)).toBe('unchanged');
    const moved = { ...lease, subnet: '10.244.9.0/24' };
    expect(await writeCniConf(file, moved)).toBe('written');
    expect(readFileSync(file, 'utf8')).toBe(formatCniConflist(moved));
    expect(readdirSync(path.dirname(file))).toEqual(['10-tulle.conflist']);
  });

  it("leaves a file tulle did not write, naming it and the way out; replaces it with overwrite", async () => {
    const dir = tempDir();
    const file = path.join(dir, '10-tulle.conflist');
    const users = '{"name":"mine","cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}\n';
    writeFileSync(file, users);
    await expect(writeCniConf(file, lease)).rejects.toMatchObject({ code: 'ERR_TULLE_CNI_CONF_FOREIGN', message: expect.stringMatching(/10-tulle\.conflist exists and was not written by tulle.*--cni-conf-overwrite/) });
    expect(readFileSync(file, 'utf8')).toBe(users);
    expect(await writeCniConf(file, lease, { overwrite: true })).toBe('written');
    expect(isTulleConflist(readFileSync(file, 'utf8'))).toBe(true);
  });

  it('a path it cannot use (a directory there): an error naming the file, nothing left beside it', async () => {
    const dir = tempDir();
    const file = path.join(dir, '10-tulle.conflist');
    mkdirSync(file);
    await expect(writeCniConf(file, lease)).rejects.toMatchObject({ code: 'ERR_TULLE_CNI_CONF', message: expect.stringContaining(`cannot read ${file}`) });
    expect(readdirSync(dir)).toEqual(['10-tulle.conflist']);
  });
});
