/**
 * flanneld's host rules: the one rule set rendered for iptables and for nftables, compared with
 * the exact text flanneld writes (pkg/trafficmngr/iptables/iptables.go masqRules/forwardRules,
 * pkg/trafficmngr/nftables/nftables.go through knftables' writer); reading leftovers out of an
 * iptables-save dump; and the driver (start, resync, new subnet, stop) over fake firewalls.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Firewall } from '../../src/host/rules/firewall.js';
import { iptablesHasRandomFully } from '../../src/host/rules/firewall.js';
import { createHostRules } from '../../src/host/rules/host-rules.js';
import { findRules, iptablesRules, restorePayload, ruleLine } from '../../src/host/rules/iptables-render.js';
import { nftScript } from '../../src/host/rules/nft-render.js';
import { flannelRuleSet, type Chain } from '../../src/host/rules/rule-set.js';
import { FakeClock } from './fake-clock.js';

const NET = '10.244.0.0/16';
const SUB = '10.244.7.0/24';
const all = (randomFully: boolean) => flannelRuleSet({ network: NET, subnet: SUB, ipMasq: true, forwardRules: true, randomFully });

// flanneld's rules, written out by hand from its source (not from tulle's code)
const FLANNELD_IPTABLES = (rf: string) => [
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.7.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.7.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.7.0/24 -m comment --comment "flanneld masq" -j RETURN',
  `-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`,
  `-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`,
  '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
];

const FLANNELD_NFT = (masq: string) =>
  [
    'add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }',
    'add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority 100 ; comment "chain to manage traffic masquerading by flannel" ; }',
    'flush chain ip flannel-ipv4 postrtg',
    'add rule ip flannel-ipv4 postrtg meta mark 0x4000 return',
    'add rule ip flannel-ipv4 postrtg ip saddr 10.244.7.0/24 ip daddr 10.244.0.0/16 return',
    'add rule ip flannel-ipv4 postrtg ip saddr 10.244.0.0/16 ip daddr 10.244.7.0/24 return',
    'add rule ip flannel-ipv4 postrtg ip saddr != 10.244.7.0/24 ip daddr 10.244.0.0/16 return',
    `add rule ip flannel-ipv4 postrtg ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 ${masq}`,
    `add rule ip flannel-ipv4 postrtg ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 ${masq}`,
    'add chain ip flannel-ipv4 forward { type filter hook forward priority 0 ; comment "chain to accept flannel traffic" ; }',
    'flush chain ip flannel-ipv4 forward',
    'add rule ip flannel-ipv4 forward ip saddr 10.244.0.0/16 accept',
    'add rule ip flannel-ipv4 forward ip daddr 10.244.0.0/16 accept',
  ].join('\n') + '\n';

describe("iptables: flanneld's chains and rules", () => {
  it('renders exactly what flanneld writes, in its order, with and without --random-fully', () => {
    expect(all(true).flatMap(iptablesRules).map(ruleLine)).toEqual(FLANNELD_IPTABLES(' --random-fully'));
    expect(all(false).flatMap(iptablesRules).map(ruleLine)).toEqual(FLANNELD_IPTABLES(''));
    expect(iptablesRules(all(true)[0]!)[0]).toEqual({ table: 'nat', chain: 'POSTROUTING', spec: ['-m', 'comment', '--comment', 'flanneld masq', '-j', 'FLANNEL-POSTRTG'] });
  });

  it('only the chains asked for: --ip-masq and --iptables-forward-rules', () => {
    expect(flannelRuleSet({ network: NET, subnet: SUB, ipMasq: false, forwardRules: true, randomFully: true }).map((c) => c.kind)).toEqual(['forward']);
    expect(flannelRuleSet({ network: NET, subnet: SUB, ipMasq: true, forwardRules: false, randomFully: true }).map((c) => c.kind)).toEqual(['masq']);
    expect(flannelRuleSet({ network: NET, subnet: SUB, ipMasq: false, forwardRules: false, randomFully: true })).toEqual([]);
  });

  it('--random-fully needs iptables 1.6.2 (go-iptables, as flanneld asks it)', () => {
    expect(iptablesHasRandomFully('iptables v1.8.9 (nf_tables)')).toBe(true);
    expect(iptablesHasRandomFully('iptables v1.6.2')).toBe(true);
    expect(iptablesHasRandomFully('iptables v1.6.1')).toBe(false);
    expect(iptablesHasRandomFully('iptables v1.4.21')).toBe(false);
    expect(iptablesHasRandomFully('nonsense')).toBe(false);
  });

  it('one restore transaction creates the chains and rules on a clean host', () => {
    const p = restorePayload(all(true), findRules(''));
    const lines = FLANNELD_IPTABLES(' --random-fully');
    expect(p).toBe(`*nat\n:FLANNEL-POSTRTG - [0:0]\n${lines.slice(0, 7).join('\n')}\nCOMMIT\n*filter\n:FLANNEL-FWD - [0:0]\n${lines.slice(7).join('\n')}\nCOMMIT\n`);
    expect(restorePayload([], findRules(''))).toBe('');
  });

  it("replaces what a previous flanneld left: its jumps and old-style rules go, its chains are flushed or deleted", () => {
    const save = [
      '# Generated by iptables-save v1.8.9 (nf_tables)',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':FLANNEL-POSTRTG - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
      '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 10.244.3.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
      'COMMIT',
      '*filter',
      ':FORWARD DROP [0:0]',
      ':FLANNEL-FWD - [0:0]',
      '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
      '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
      'COMMIT',
    ].join('\n');
    const found = findRules(save);
    expect(found.chains).toEqual({ nat: ['FLANNEL-POSTRTG'], filter: ['FLANNEL-FWD'] });
    expect(found.baseRules.nat).toHaveLength(3); // not kube-proxy's
    const masqOnly = flannelRuleSet({ network: NET, subnet: SUB, ipMasq: true, forwardRules: false, randomFully: true });
    const p = restorePayload(masqOnly, found).split('\n');
    expect(p.slice(0, 5)).toEqual([
      '*nat',
      '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-D POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
      ':FLANNEL-POSTRTG - [0:0]',
    ]);
    expect(p.filter((l) => l.startsWith('-A POSTROUTING'))).toHaveLength(1);
    // forward rules not wanted: flanneld's forward chain is unhooked and deleted
    expect(p.slice(p.indexOf('*filter'))).toEqual([
      '*filter', '-D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD', ':FLANNEL-FWD - [0:0]', '-X FLANNEL-FWD', 'COMMIT', '',
    ]);
    // removing everything (stop, or the tool not used)
    expect(restorePayload([], found)).toContain('-X FLANNEL-POSTRTG');
  });

  it('notices a deleted rule, a moved jump, an added rule: the observed part of the dump changes', () => {
    const base = `*nat\n:FLANNEL-POSTRTG - [0:0]\n${FLANNELD_IPTABLES('').slice(0, 7).join('\n')}\nCOMMIT\n`;
    const seen = findRules(base).observed;
    expect(findRules(base.replace(/^-A FLANNEL-POSTRTG -s 10\.244\.7.*\n/m, '')).observed).not.toBe(seen);
    expect(findRules(base.replace('COMMIT', '-A FLANNEL-POSTRTG -j ACCEPT\nCOMMIT')).observed).not.toBe(seen);
    expect(findRules(base.replace(/^-A POSTROUTING.*\n/m, '')).observed).not.toBe(seen);
    // other people's rules in POSTROUTING are not ours to watch
    expect(findRules(base.replace('COMMIT', '-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT')).observed).toBe(seen);
  });
});

describe("nftables: flanneld's table and chains", () => {
  it('renders the lines flanneld sends to nft, after emptying its table', () => {
    const prefix = 'add table ip flannel-ipv4\ndelete table ip flannel-ipv4\n';
    expect(nftScript(all(true))).toBe(prefix + FLANNELD_NFT('masquerade fully-random'));
    expect(nftScript(all(false))).toBe(prefix + FLANNELD_NFT('masquerade'));
    expect(nftScript([])).toBe(prefix);
  });

  it("keeps flanneld's one difference between its managers: the nft RETURN for outside traffic names the subnet first", () => {
    const masq = all(true)[0]!;
    const outside = masq.rules[3]!;
    expect(ruleLine(iptablesRules(masq)[4]!)).toContain('! -s 10.244.0.0/16 -d 10.244.7.0/24');
    expect(outside.nft).toEqual({ src: { cidr: SUB, not: true }, dst: { cidr: NET } });
  });
});

describe('dual stack: the same rule set for the IPv6 network (ip6tables, nft ip6 flannel-ipv6)', () => {
  const NET6 = 'fd00:10:244::/56';
  const SUB6 = 'fd00:10:244:7::/64';
  const dual = (randomFully: boolean) =>
    flannelRuleSet({ network: NET, subnet: SUB, ipv6Network: NET6, ipv6Subnet: SUB6, ipMasq: true, forwardRules: true, randomFully });

  it("orders chains as flanneld sets them up (masq v4, masq v6, forward v4, forward v6); IPv6 only has no IPv4 chain", () => {
    expect(dual(true).map((c) => `${c.kind}${c.family}`)).toEqual(['masq4', 'masq6', 'forward4', 'forward6']);
    const v6only = flannelRuleSet({ ipv6Network: NET6, ipv6Subnet: SUB6, ipMasq: true, forwardRules: true, randomFully: true });
    expect(v6only.map((c) => `${c.kind}${c.family}`)).toEqual(['masq6', 'forward6']);
  });

  it("renders flanneld's ip6tables rules (masqIP6Rules, forwardRules), multicast ff00::/8", () => {
    // flanneld's pkg/trafficmngr/iptables masqIP6Rules and forwardRules, written out by hand
    const rf = ' --random-fully';
    expect(dual(true).filter((c) => c.family === 6).flatMap(iptablesRules).map(ruleLine)).toEqual([
      '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s fd00:10:244:7::/64 -d fd00:10:244::/56 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s fd00:10:244::/56 -d fd00:10:244:7::/64 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG ! -s fd00:10:244::/56 -d fd00:10:244:7::/64 -m comment --comment "flanneld masq" -j RETURN',
      `-A FLANNEL-POSTRTG -s fd00:10:244::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`,
      `-A FLANNEL-POSTRTG ! -s fd00:10:244::/56 -d fd00:10:244::/56 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`,
      '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
      '-A FLANNEL-FWD -s fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT',
      '-A FLANNEL-FWD -d fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT',
    ]);
  });

  it("renders flanneld's nft table ip6 flannel-ipv6 after the IPv4 one, and empties both when nothing is wanted", () => {
    const script = nftScript(dual(false));
    expect(script.startsWith('add table ip flannel-ipv4\ndelete table ip flannel-ipv4\n' + FLANNELD_NFT('masquerade'))).toBe(true);
    expect(script.slice(script.indexOf('add table ip6 flannel-ipv6\n'))).toBe([
      'add table ip6 flannel-ipv6',
      'delete table ip6 flannel-ipv6',
      'add table ip6 flannel-ipv6 { comment "rules for flannel-ipv6" ; }',
      'add chain ip6 flannel-ipv6 postrtg { type nat hook postrouting priority 100 ; comment "chain to manage traffic masquerading by flannel" ; }',
      'flush chain ip6 flannel-ipv6 postrtg',
      'add rule ip6 flannel-ipv6 postrtg meta mark 0x4000 return',
      'add rule ip6 flannel-ipv6 postrtg ip6 saddr fd00:10:244:7::/64 ip6 daddr fd00:10:244::/56 return',
      'add rule ip6 flannel-ipv6 postrtg ip6 saddr fd00:10:244::/56 ip6 daddr fd00:10:244:7::/64 return',
      'add rule ip6 flannel-ipv6 postrtg ip6 saddr != fd00:10:244:7::/64 ip6 daddr fd00:10:244::/56 return',
      'add rule ip6 flannel-ipv6 postrtg ip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade',
      'add rule ip6 flannel-ipv6 postrtg ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade',
      'add chain ip6 flannel-ipv6 forward { type filter hook forward priority 0 ; comment "chain to accept flannel traffic" ; }',
      'flush chain ip6 flannel-ipv6 forward',
      'add rule ip6 flannel-ipv6 forward ip6 saddr fd00:10:244::/56 accept',
      'add rule ip6 flannel-ipv6 forward ip6 daddr fd00:10:244::/56 accept',
    ].join('\n') + '\n');
    expect(nftScript([], true)).toBe('add table ip flannel-ipv4\ndelete table ip flannel-ipv4\nadd table ip6 flannel-ipv6\ndelete table ip6 flannel-ipv6\n');
  });

  it('the driver gives each tool its family: iptables the IPv4 chains, ip6tables the IPv6 ones; a new lease moves both', async () => {
    const clock = new FakeClock();
    const log = pino({ level: 'silent' });
    const v4 = { ...fakeFirewall('iptables'), families: [4] as const };
    const v6 = { ...fakeFirewall('ip6tables'), families: [6] as const };
    const applied: Record<string, string[][]> = { iptables: [], ip6tables: [] };
    for (const fw of [v4, v6]) {
      const apply = fw.apply;
      fw.apply = async (want) => {
        applied[fw.tool]!.push(want.map((c) => `${c.kind}${c.family}`));
        await apply(want);
      };
    }
    const rules = createHostRules(
      { nftables: false, network: NET, subnet: SUB, ipv6Network: NET6, ipv6Subnet: SUB6, ipMasq: true, forwardRules: true, fullyRandomDisable: false, resyncMs: 5000 },
      { log, clock, firewalls: { own: [v4, v6], others: [] } },
    );
    await rules.start();
    expect(applied).toEqual({ iptables: [['masq4', 'forward4']], ip6tables: [['masq6', 'forward6']] });
    await rules.setSubnet('10.244.9.0/24', 'fd00:10:244:9::/64');
    expect(applied.ip6tables!.at(-1)).toEqual(['masq6', 'forward6']);
    await rules.stop();
    expect(applied).toMatchObject({ iptables: [[], [], []].map((_, i) => (i < 2 ? ['masq4', 'forward4'] : [])), ip6tables: [['masq6', 'forward6'], ['masq6', 'forward6'], []] });
  });
});

/** A firewall that keeps its rules as text: apply renders, observe reads back. */
function fakeFirewall(tool: string, o: { available?: boolean; randomFully?: boolean } = {}) {
  const fw = {
    tool,
    state: '',
    applied: [] as Chain[][],
    failNext: undefined as string | undefined,
    available: async () => o.available ?? true,
    randomFully: async () => o.randomFully ?? true,
    async apply(want: readonly Chain[]) {
      if (fw.failNext) {
        const m = fw.failNext;
        fw.failNext = undefined;
        throw new Error(m);
      }
      fw.applied.push([...want]);
      fw.state = want.flatMap(iptablesRules).map(ruleLine).join('\n');
    },
    observe: async () => fw.state,
  };
  return fw satisfies Firewall;
}

function driver(o: { ipMasq?: boolean; forward?: boolean; available?: boolean } = {}) {
  const clock = new FakeClock();
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const own = fakeFirewall('iptables', { available: o.available });
  const other = fakeFirewall('nft');
  const rules = createHostRules(
    { nftables: false, network: NET, subnet: SUB, ipMasq: o.ipMasq ?? true, forwardRules: o.forward ?? true, fullyRandomDisable: false, resyncMs: 5000 },
    { log, clock, firewalls: { own, others: [other] } },
  );
  return { clock, logs, own, other, rules };
}

describe('host rules driver', () => {
  it('start: removes the other tool’s leftovers, installs; resync puts back what someone deleted; stop removes all', async () => {
    const d = driver();
    await d.rules.start();
    expect(d.other.applied).toEqual([[]]);
    expect(d.own.applied.map((w) => w.map((c) => c.kind))).toEqual([['masq', 'forward']]);
    expect(d.rules.status()).toMatchObject({ mode: 'iptables', chains: ['masq', 'forward'], installed: true, restored: 0 });
    await d.clock.advance(20_000); // nothing changed: nothing re-applied
    expect(d.own.applied).toHaveLength(1);
    d.own.state = d.own.state.replace(/^-A FLANNEL-FWD -s.*$/m, '');
    await d.clock.advance(4_000);
    expect(d.own.applied).toHaveLength(1);
    await d.clock.advance(1_500); // within one resync period
    expect(d.own.applied).toHaveLength(2);
    expect(d.own.state).toContain('-A FLANNEL-FWD -s 10.244.0.0/16');
    expect(d.rules.status().restored).toBe(1);
    expect(d.logs.some((l) => /put(ting)? them back/.test(String(l.msg)))).toBe(true);
    await d.rules.stop();
    expect(d.own.applied.at(-1)).toEqual([]);
    expect(d.own.state).toBe('');
    await d.clock.advance(60_000); // no resync after stop
    expect(d.own.applied.at(-1)).toEqual([]);
  });

  it('a failed install is logged once, not fatal, and retried at each resync', async () => {
    const d = driver();
    d.own.failNext = 'iptables-restore: line 3 failed';
    await d.rules.start();
    expect(d.rules.status()).toMatchObject({ installed: false, error: expect.stringContaining('line 3 failed') });
    expect(d.logs.filter((l) => l.level === 50)).toHaveLength(1);
    await d.clock.advance(5_000);
    expect(d.rules.status()).toMatchObject({ installed: true, error: undefined });
  });

  it('no iptables binary: an error naming what to install, unless no rules are wanted', async () => {
    const d = driver({ available: false });
    await d.rules.start();
    expect(d.rules.status().error).toMatch(/iptables not found.*install the iptables package, or set EnableNFTables/);
    const quiet = driver({ available: false, ipMasq: false, forward: false });
    await quiet.rules.start();
    expect(quiet.rules.status().error).toBeUndefined();
    expect(quiet.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });

  it('a new subnet re-renders the masquerade rules', async () => {
    const d = driver();
    await d.rules.start();
    await d.rules.setSubnet('10.244.9.0/24');
    expect(d.own.state).toContain('-s 10.244.9.0/24 -d 10.244.0.0/16');
    expect(d.own.state).not.toContain('10.244.7.0/24');
    await d.rules.stop();
  });
});
