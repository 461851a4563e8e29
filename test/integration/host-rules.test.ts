/**
 * flanneld's host rules with real daemons in node namespaces (iptables and nftables are per
 * network namespace): what a previous flanneld left is cleaned at start, flanneld's exact rules
 * are installed, rules someone deletes come back within the resync period, and SIGTERM leaves
 * nothing. Both renderers: iptables (default) and nftables (EnableNFTables, no iptables binary).
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopDaemons } from '../cni/scenario.js';
import { createCluster, until, type Cluster, type Daemon } from './cluster.js';

let c: Cluster;
let noIptables: string;

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'hr', config: '' });
  // a PATH with nft and ip but no iptables at all (ip and node live in /usr/bin, iptables in /usr/sbin)
  noIptables = mkdtempSync(path.join(tmpdir(), 'tulle-nft-only-'));
  symlinkSync('/usr/sbin/nft', path.join(noIptables, 'nft'));
});

// a failed test must not leave its daemons running into the next one (one health port per node)
afterEach(async () => {
  if (c) await stopDaemons(c);
});

afterAll(async () => {
  await c?.teardown();
  if (noIptables) rmSync(noIptables, { recursive: true, force: true });
});

const put = (key: string, value: string) => c.etcd.etcdctl(['put', key, value]);
const sh = async (ns: string, cmd: string, args: string[], input?: string) =>
  (await c.bed.exec(ns, 'sh', ['-c', input === undefined ? `${cmd} ${args.join(' ')}` : `${cmd} ${args.join(' ')} <<'EOF'\n${input}EOF`])).stdout;
/** flanneld's lines (and anything else naming FLANNEL) in the iptables-save dump */
const flannelLines = async (ns: string, tool = 'iptables-save') =>
  (await c.bed.exec(ns, tool, [])).stdout.split('\n').filter((l) => /flannel/i.test(l));
/** flanneld's nftables tables (iptables-nft keeps its own `ip nat`/`ip filter` tables there too) */
const nftTables = async (ns: string) => (await c.bed.exec(ns, 'nft', ['list', 'tables'])).stdout.split('\n').filter((l) => /flannel/.test(l));

// what a flanneld of another subnet left behind, in both tools and in ip6tables
const OLD_IPTABLES = `*nat
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -s 10.244.99.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN
COMMIT
*filter
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.99.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
COMMIT
`;
const OLD_IP6TABLES = `*nat
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
COMMIT
`;
const OLD_NFT = `add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }
add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority 100 ; comment "chain to manage traffic masquerading by flannel" ; }
add rule ip flannel-ipv4 postrtg ip saddr 10.244.99.0/24 ip daddr 10.244.0.0/16 return
add table ip6 flannel-ipv6 { comment "rules for flannel-ipv6" ; }
`;

const iptablesExpected = (subnet: string) => [
  ':FLANNEL-POSTRTG - [0:0]',
  ':FLANNEL-FWD - [0:0]',
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  `-A FLANNEL-POSTRTG -s ${subnet} -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d ${subnet} -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d ${subnet} -m comment --comment "flanneld masq" -j RETURN`,
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
];

// `nft list table ip flannel-ipv4` of flanneld's rules, as nft prints them back
const nftExpected = (subnet: string) => `table ip flannel-ipv4 {
	comment "rules for flannel-ipv4"
	chain postrtg {
		comment "chain to manage traffic masquerading by flannel"
		type nat hook postrouting priority srcnat; policy accept;
		meta mark 0x00004000 return
		ip saddr ${subnet} ip daddr 10.244.0.0/16 return
		ip saddr 10.244.0.0/16 ip daddr ${subnet} return
		ip saddr != ${subnet} ip daddr 10.244.0.0/16 return
		ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
		ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random
	}

	chain forward {
		comment "chain to accept flannel traffic"
		type filter hook forward priority filter; policy accept;
		ip saddr 10.244.0.0/16 accept
		ip daddr 10.244.0.0/16 accept
	}
}
`;

const sorted = (xs: string[]) => [...xs].sort();
const restoredCount = async (d: Daemon) => Number((await c.health(d)).hostRules?.restored ?? -1);

describe("flanneld's host rules, iptables", () => {
  it('cleans a previous flanneld, installs its exact rules, puts deleted ones back, removes all on SIGTERM', async () => {
    const n = c.bed.nodes[0]!;
    await put('/t/ipt/config', '{"Network":"10.244.0.0/16"}');
    await sh(n.ns, 'iptables-restore', ['--noflush'], OLD_IPTABLES);
    await sh(n.ns, 'ip6tables-restore', ['--noflush'], OLD_IP6TABLES);
    await sh(n.ns, 'nft', ['-f', '-'], OLD_NFT);
    expect(await nftTables(n.ns)).toEqual(expect.arrayContaining(['table ip flannel-ipv4', 'table ip6 flannel-ipv6']));

    const d = c.startDaemon(n, ['--etcd-prefix=/t/ipt', '--ip-masq'], process.env, { health: true });
    const subnet = await d.readySubnet(60_000);
    expect(sorted(await flannelLines(n.ns))).toEqual(sorted(iptablesExpected(subnet)));
    // in order, within each chain
    const lines = await flannelLines(n.ns);
    expect(lines.filter((l) => l.startsWith('-A FLANNEL-POSTRTG'))).toEqual(iptablesExpected(subnet).filter((l) => l.startsWith('-A FLANNEL-POSTRTG')));
    expect(await flannelLines(n.ns, 'ip6tables-save')).toEqual([]);
    expect(await nftTables(n.ns)).toEqual([]);
    expect((await c.health(d)).hostRules).toMatchObject({ mode: 'iptables', chains: ['masq', 'forward'], installed: true, restored: 0 });

    // someone deletes a forward accept rule and flanneld's jump in POSTROUTING
    await c.bed.exec(n.ns, 'iptables', ['-D', 'FLANNEL-FWD', '-d', '10.244.0.0/16', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'ACCEPT']);
    await c.bed.exec(n.ns, 'iptables', ['-t', 'nat', '-D', 'POSTROUTING', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'FLANNEL-POSTRTG']);
    const deletedAt = Date.now();
    await until('the deleted rules to come back', async () => sorted(await flannelLines(n.ns)).join('\n') === sorted(iptablesExpected(subnet)).join('\n'), 60_000, 200);
    console.log(`[measure] deleted rules back after ${Date.now() - deletedAt} ms (--iptables-resync=5; noisy, shared machine)`);
    await d.waitLog((l) => /putting them back/.test(l.msg));
    // someone flushes the whole chain and adds a rule of their own into it
    await c.bed.exec(n.ns, 'iptables', ['-t', 'nat', '-F', 'FLANNEL-POSTRTG']);
    await c.bed.exec(n.ns, 'iptables', ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-j', 'ACCEPT']);
    await until('the chain to be flanneld\'s again', async () => sorted(await flannelLines(n.ns)).join('\n') === sorted(iptablesExpected(subnet)).join('\n'), 60_000, 200);
    await until('two restores counted', async () => (await restoredCount(d)) >= 2, 10_000, 200);
    expect(await restoredCount(d)).toBe(2); // put back twice, never re-applied while unchanged

    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await flannelLines(n.ns)).toEqual([]);
  });

  it('--ip-masq-fully-random-disable and --iptables-forward-rules=false', async () => {
    const n = c.bed.nodes[0]!;
    const d = c.startDaemon(n, ['--etcd-prefix=/t/ipt', '--ip-masq', '--ip-masq-fully-random-disable', '--iptables-forward-rules=false'], process.env, { health: true });
    const subnet = await d.readySubnet(60_000);
    const want = iptablesExpected(subnet)
      .filter((l) => !/FLANNEL-FWD|flanneld forward/.test(l))
      .map((l) => l.replace(' --random-fully', ''));
    expect(sorted(await flannelLines(n.ns))).toEqual(sorted(want));
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await flannelLines(n.ns)).toEqual([]);
  });

  it('no --ip-masq: the forward rules alone (flanneld adds them by default)', async () => {
    const n = c.bed.nodes[0]!;
    const d = c.startDaemon(n, ['--etcd-prefix=/t/ipt'], process.env, { health: true });
    await d.readySubnet(60_000);
    expect(sorted(await flannelLines(n.ns))).toEqual(sorted(iptablesExpected('x').filter((l) => /FLANNEL-FWD/.test(l))));
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await flannelLines(n.ns)).toEqual([]);
  });
});

describe("flanneld's host rules, nftables (EnableNFTables)", () => {
  it("with no iptables binary: installs flanneld's table (replacing a previous one), puts back deleted rules, removes it on SIGTERM", async () => {
    const n = c.bed.nodes[1]!;
    await put('/t/nft/config', '{"Network":"10.244.0.0/16","EnableNFTables":true}');
    await sh(n.ns, 'nft', ['-f', '-'], OLD_NFT);
    const d = c.startDaemon(n, ['--etcd-prefix=/t/nft', '--ip-masq'], { ...process.env, PATH: `${noIptables}:/usr/bin` }, { health: true });
    const subnet = await d.readySubnet(60_000);
    expect(await nftTables(n.ns)).toEqual(['table ip flannel-ipv4']); // flannel-ipv6 of the old flanneld is gone
    expect((await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4'])).stdout).toBe(nftExpected(subnet));
    const status = (await c.health(d)).hostRules;
    expect(status).toMatchObject({ mode: 'nftables', chains: ['masq', 'forward'], installed: true });
    expect(status.error).toBeUndefined();

    const handles = (await c.bed.exec(n.ns, 'nft', ['-a', 'list', 'chain', 'ip', 'flannel-ipv4', 'forward'])).stdout;
    const h = /ip daddr 10\.244\.0\.0\/16 accept # handle (\d+)/.exec(handles)![1]!;
    await c.bed.exec(n.ns, 'nft', ['delete', 'rule', 'ip', 'flannel-ipv4', 'forward', 'handle', h]);
    await until('the deleted nft rule to come back', async () => (await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4'])).stdout === nftExpected(subnet), 60_000, 200);
    await c.bed.exec(n.ns, 'nft', ['delete', 'table', 'ip', 'flannel-ipv4']);
    await until('the deleted nft table to come back', async () => (await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4'])).stdout === nftExpected(subnet), 60_000, 200);
    expect(await restoredCount(d)).toBe(2);

    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await nftTables(n.ns)).toEqual([]);
  });

  it('cleans the iptables rules a previous flanneld left, as flanneld does when it runs with nftables', async () => {
    const n = c.bed.nodes[1]!;
    await sh(n.ns, 'iptables-restore', ['--noflush'], OLD_IPTABLES);
    const d = c.startDaemon(n, ['--etcd-prefix=/t/nft'], process.env, { health: true });
    await d.readySubnet(60_000);
    expect(await flannelLines(n.ns)).toEqual([]);
    expect((await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4'])).stdout).toContain('chain forward');
    expect((await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4'])).stdout).not.toContain('postrtg');
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await nftTables(n.ns)).toEqual([]);
  });
});

describe("flanneld's host rules, dual stack (EnableIPv6): the same rules for the IPv6 network", () => {
  const DUAL = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}';
  // flanneld's masqIP6Rules and forwardRules for the IPv6 network, by hand
  const ip6Expected = (subnet: string) => [
    ':FLANNEL-POSTRTG - [0:0]',
    ':FLANNEL-FWD - [0:0]',
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    `-A FLANNEL-POSTRTG -s ${subnet} -d fd00:10:244::/56 -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s fd00:10:244::/56 -d ${subnet} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG ! -s fd00:10:244::/56 -d ${subnet} -m comment --comment "flanneld masq" -j RETURN`,
    '-A FLANNEL-POSTRTG -s fd00:10:244::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    '-A FLANNEL-POSTRTG ! -s fd00:10:244::/56 -d fd00:10:244::/56 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT',
    '-A FLANNEL-FWD -d fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT',
  ];
  const nft6Expected = (subnet: string) => `table ip6 flannel-ipv6 {
	comment "rules for flannel-ipv6"
	chain postrtg {
		comment "chain to manage traffic masquerading by flannel"
		type nat hook postrouting priority srcnat; policy accept;
		meta mark 0x00004000 return
		ip6 saddr ${subnet} ip6 daddr fd00:10:244::/56 return
		ip6 saddr fd00:10:244::/56 ip6 daddr ${subnet} return
		ip6 saddr != ${subnet} ip6 daddr fd00:10:244::/56 return
		ip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade fully-random
		ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade fully-random
	}

	chain forward {
		comment "chain to accept flannel traffic"
		type filter hook forward priority filter; policy accept;
		ip6 saddr fd00:10:244::/56 accept
		ip6 daddr fd00:10:244::/56 accept
	}
}
`;
  const ipv6SubnetOf = async (d: Daemon) => String((await d.waitLog((l) => l.msg === 'node ready', 60_000)).ipv6Subnet);

  it('iptables and ip6tables: both families installed, a deleted IPv6 rule comes back, SIGTERM removes both', async () => {
    const n = c.bed.nodes[0]!;
    await put('/t/ds4/config', DUAL);
    const d = c.startDaemon(n, ['--etcd-prefix=/t/ds4', '--ip-masq'], process.env, { health: true });
    const subnet = await d.readySubnet(60_000);
    const subnet6 = await ipv6SubnetOf(d);
    expect(subnet6).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
    expect(sorted(await flannelLines(n.ns))).toEqual(sorted(iptablesExpected(subnet)));
    expect(sorted(await flannelLines(n.ns, 'ip6tables-save'))).toEqual(sorted(ip6Expected(subnet6)));
    await c.bed.exec(n.ns, 'ip6tables', ['-D', 'FLANNEL-FWD', '-d', 'fd00:10:244::/56', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'ACCEPT']);
    await until('the deleted IPv6 rule to come back', async () => sorted(await flannelLines(n.ns, 'ip6tables-save')).join('\n') === sorted(ip6Expected(subnet6)).join('\n'), 60_000, 200);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await flannelLines(n.ns)).toEqual([]);
    expect(await flannelLines(n.ns, 'ip6tables-save')).toEqual([]);
  });

  it('nftables: tables ip flannel-ipv4 and ip6 flannel-ipv6 as flanneld writes them, removed on SIGTERM', async () => {
    const n = c.bed.nodes[1]!;
    await put('/t/ds6/config', DUAL.replace('{', '{"EnableNFTables":true,'));
    const d = c.startDaemon(n, ['--etcd-prefix=/t/ds6', '--ip-masq'], { ...process.env, PATH: `${noIptables}:/usr/bin` }, { health: true });
    const subnet = await d.readySubnet(60_000);
    const subnet6 = await ipv6SubnetOf(d);
    expect(sorted(await nftTables(n.ns))).toEqual(['table ip flannel-ipv4', 'table ip6 flannel-ipv6']);
    expect((await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4'])).stdout).toBe(nftExpected(subnet));
    expect((await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip6', 'flannel-ipv6'])).stdout).toBe(nft6Expected(subnet6));
    await c.bed.exec(n.ns, 'nft', ['delete', 'table', 'ip6', 'flannel-ipv6']);
    await until('the deleted IPv6 table to come back', async () => (await c.bed.exec(n.ns, 'nft', ['list', 'table', 'ip6', 'flannel-ipv6'])).stdout === nft6Expected(subnet6), 60_000, 200);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await nftTables(n.ns)).toEqual([]);
  });
});
