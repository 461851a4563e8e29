/**
 * The rule set rendered as flanneld's iptables manager writes it: chain FLANNEL-POSTRTG in
 * `nat` jumped to from POSTROUTING ("flanneld masq"), chain FLANNEL-FWD in `filter` jumped to
 * from FORWARD ("flanneld forward"), each rule with flanneld's comment, in flanneld's order.
 *
 * Pure text in, text out: an iptables-save dump is read for what flanneld (or an earlier tulle)
 * left, and one iptables-restore --noflush payload makes the host hold exactly our rules:
 *
 *   *nat
 *   -D POSTROUTING <each rule of flanneld's found there>
 *   :FLANNEL-POSTRTG - [0:0]            (declaring a chain creates or flushes it)
 *   -A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
 *   -A FLANNEL-POSTRTG ...
 *   COMMIT
 *
 * A chain we no longer want is flushed and deleted (-X) in the same transaction.
 */
import type { Chain, ChainKind, Rule } from './rule-set.js';

export interface IptablesChainNames {
  readonly table: 'nat' | 'filter';
  readonly base: 'POSTROUTING' | 'FORWARD';
  readonly chain: string;
  readonly comment: string;
}

export const IPTABLES_CHAINS: Record<ChainKind, IptablesChainNames> = {
  masq: { table: 'nat', base: 'POSTROUTING', chain: 'FLANNEL-POSTRTG', comment: 'flanneld masq' },
  forward: { table: 'filter', base: 'FORWARD', chain: 'FLANNEL-FWD', comment: 'flanneld forward' },
};

const KINDS = Object.keys(IPTABLES_CHAINS) as ChainKind[];
const TABLES = ['nat', 'filter'] as const;

/** One of flanneld's rules: a chain of a table and its rulespec (iptables argv). */
export interface IptablesRule {
  readonly table: string;
  readonly chain: string;
  readonly spec: readonly string[];
}

function addr(flag: '-s' | '-d', m: Rule['src']): string[] {
  if (!m) return [];
  return m.not ? ['!', flag, m.cidr] : [flag, m.cidr];
}

/** A rule's rulespec, argument for argument as flanneld builds it. */
export function ruleSpec(r: Rule, comment: string): string[] {
  const mark = r.mark ? ['-m', 'mark', '--mark', `0x${r.mark.value.toString(16)}/0x${r.mark.mask.toString(16)}`] : [];
  const jump = r.randomFully ? ['-j', r.verdict, '--random-fully'] : ['-j', r.verdict];
  return [...mark, ...addr('-s', r.src), ...addr('-d', r.dst), '-m', 'comment', '--comment', comment, ...jump];
}

/** flanneld's rules for a chain: the jump from the base chain, then the chain's own rules. */
export function iptablesRules(c: Chain): IptablesRule[] {
  const n = IPTABLES_CHAINS[c.kind];
  return [
    { table: n.table, chain: n.base, spec: ['-m', 'comment', '--comment', n.comment, '-j', n.chain] },
    ...c.rules.map((r) => ({ table: n.table, chain: n.chain, spec: ruleSpec(r, n.comment) })),
  ];
}

/** A rulespec as iptables-save prints it and iptables-restore reads it: the comment quoted. */
export function specText(spec: readonly string[]): string {
  return spec.map((a, i) => (spec[i - 1] === '--comment' ? `"${a}"` : a)).join(' ');
}

/** `-A CHAIN spec`, the line iptables -S / iptables-save print for the rule. */
export function ruleLine(r: IptablesRule): string {
  return `-A ${r.chain} ${specText(r.spec)}`;
}

/** What of flanneld's an iptables-save dump holds. */
export interface FoundRules {
  /** per table: our chains that exist */
  readonly chains: Record<string, string[]>;
  /** per table: rules in POSTROUTING / FORWARD that are flanneld's (its comment, or a jump to its chain), as "-A BASE spec" */
  readonly baseRules: Record<string, string[]>;
  /** our part of the dump, in order: to notice when someone changes it */
  readonly observed: string;
}

const OUR_CHAINS = new Set(KINDS.map((k) => IPTABLES_CHAINS[k].chain));
const BASES = new Set<string>(KINDS.map((k) => IPTABLES_CHAINS[k].base));
const isOursInBase = (rest: string) =>
  KINDS.some((k) => rest.includes(`--comment "${IPTABLES_CHAINS[k].comment}"`) || new RegExp(`-j ${IPTABLES_CHAINS[k].chain}( |$)`).test(rest));

export function findRules(save: string): FoundRules {
  const chains: Record<string, string[]> = {};
  const baseRules: Record<string, string[]> = {};
  const observed: string[] = [];
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      continue;
    }
    const decl = /^:(\S+) /.exec(line);
    if (decl && OUR_CHAINS.has(decl[1]!)) {
      (chains[table] ??= []).push(decl[1]!);
      observed.push(`${table} :${decl[1]}`);
      continue;
    }
    const rule = /^-A (\S+) (.*)$/.exec(line);
    if (!rule) continue;
    const [, chain, rest] = rule as unknown as [string, string, string];
    if (OUR_CHAINS.has(chain)) observed.push(`${table} ${line}`);
    else if (BASES.has(chain) && isOursInBase(rest)) {
      (baseRules[table] ??= []).push(line);
      observed.push(`${table} ${line}`);
    }
  }
  return { chains, baseRules, observed: observed.join('\n') };
}

/**
 * The iptables-restore --noflush payload that leaves exactly `want` of flanneld's rules on a host
 * whose dump showed `found`; '' when there is nothing to do (nothing found, nothing wanted).
 */
export function restorePayload(want: readonly Chain[], found: FoundRules): string {
  let out = '';
  for (const table of TABLES) {
    const lines: string[] = [];
    for (const line of found.baseRules[table] ?? []) lines.push(line.replace(/^-A /, '-D '));
    const wanted = want.filter((c) => IPTABLES_CHAINS[c.kind].table === table);
    const wantedNames = new Set(wanted.map((c) => IPTABLES_CHAINS[c.kind].chain));
    for (const name of found.chains[table] ?? []) {
      if (!wantedNames.has(name)) lines.push(`:${name} - [0:0]`, `-X ${name}`);
    }
    for (const c of wanted) {
      lines.push(`:${IPTABLES_CHAINS[c.kind].chain} - [0:0]`);
      for (const r of iptablesRules(c)) lines.push(ruleLine(r));
    }
    if (lines.length) out += `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
  }
  return out;
}
