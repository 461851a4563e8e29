/**
 * The rule set rendered as flanneld's nftables manager writes it (EnableNFTables): table
 * `ip flannel-ipv4` (IPv4 chains; `ip6 flannel-ipv6` for IPv6 ones, rules with `ip6 saddr`) with base chains `postrtg` (nat, postrouting, priority 100) and `forward`
 * (filter, forward, priority 0), each line as flanneld's nft library prints it:
 *
 *   add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }
 *   add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority 100 ; comment "…" ; }
 *   flush chain ip flannel-ipv4 postrtg
 *   add rule ip flannel-ipv4 postrtg meta mark 0x4000 return
 *   …
 *
 * Two lines in front of each table (`add table` + `delete table`) empty it first, so one `nft -f`
 * transaction replaces whatever was in both tables with exactly these rules, atomically.
 * flanneld matches kube-proxy's mark exactly here (`meta mark 0x4000`), not under the mask.
 */
import type { AddrMatch, Chain, ChainKind, Rule } from './rule-set.js';

export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'flannel-ipv4';
/** flanneld's IPv6 table */
export const NFT_TABLE_V6 = { family: 'ip6', table: 'flannel-ipv6' } as const;
/** each chain family's table */
export const NFT_TABLES = { 4: { family: NFT_FAMILY, table: NFT_TABLE }, 6: NFT_TABLE_V6 } as const;

export interface NftChainNames {
  readonly name: string;
  readonly type: 'nat' | 'filter';
  readonly hook: 'postrouting' | 'forward';
  readonly priority: number;
  readonly comment: string;
}

export const NFT_CHAINS: Record<ChainKind, NftChainNames> = {
  masq: { name: 'postrtg', type: 'nat', hook: 'postrouting', priority: 100, comment: 'chain to manage traffic masquerading by flannel' },
  forward: { name: 'forward', type: 'filter', hook: 'forward', priority: 0, comment: 'chain to accept flannel traffic' },
};

function addr(family: string, dir: 'saddr' | 'daddr', m: AddrMatch | undefined): string[] {
  if (!m) return [];
  return m.not ? [family, dir, '!=', m.cidr] : [family, dir, m.cidr];
}

/** A rule's statement, as flanneld writes it (`ip saddr …` in IPv4 chains, `ip6 saddr …` in IPv6 ones). */
export function nftRule(r: Rule, chainFamily: 4 | 6 = 4): string {
  const src = r.nft?.src ?? r.src;
  const dst = r.nft?.dst ?? r.dst;
  const fam = NFT_TABLES[chainFamily].family;
  const mark = r.mark ? ['meta mark', `0x${r.mark.value.toString(16)}`] : [];
  const verdict = r.verdict === 'MASQUERADE' ? (r.randomFully ? 'masquerade fully-random' : 'masquerade') : r.verdict.toLowerCase();
  return [...mark, ...addr(fam, 'saddr', src), ...addr(fam, 'daddr', dst), verdict].join(' ');
}

/** `add table` + `delete table`: removes the table if it is there, and is no error if not. */
export function nftDeleteTable(family: string, table: string): string {
  return `add table ${family} ${table}\ndelete table ${family} ${table}\n`;
}

/**
 * The `nft -f` script that leaves exactly `want` in flanneld's tables (no table at all for a
 * family without chains): the IPv4 table, then the IPv6 one when it has chains or `ipv6` is set
 * (tulle manages it in a dual-stack network; otherwise a flanneld's leftover is removed apart).
 */
export function nftScript(want: readonly Chain[], ipv6 = want.some((c) => c.family === 6)): string {
  let out = '';
  for (const family of ipv6 ? ([4, 6] as const) : ([4] as const)) {
    const { family: fam, table } = NFT_TABLES[family];
    out += nftDeleteTable(fam, table);
    const chains = want.filter((c) => c.family === family);
    if (!chains.length) continue;
    const t = `${fam} ${table}`;
    out += `add table ${t} { comment "rules for ${table}" ; }\n`;
    for (const c of chains) {
      const n = NFT_CHAINS[c.kind];
      out += `add chain ${t} ${n.name} { type ${n.type} hook ${n.hook} priority ${n.priority} ; comment "${n.comment}" ; }\n`;
      out += `flush chain ${t} ${n.name}\n`;
      for (const r of c.rules) out += `add rule ${t} ${n.name} ${nftRule(r, family)}\n`;
    }
  }
  return out;
}

/** For `nft --check`: does this kernel take `masquerade fully-random`? (flanneld's probe) */
export function nftRandomFullyProbe(): string {
  const t = `${NFT_FAMILY} ${NFT_TABLE}`;
  return (
    `add table ${t}\n` +
    `add chain ${t} masqueradeTest { type nat hook postrouting priority 100 ; }\n` +
    `add rule ${t} masqueradeTest ip saddr != 127.0.0.1 masquerade fully-random\n`
  );
}
