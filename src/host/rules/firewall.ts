/**
 * The I/O side of the host rules: one Firewall per tool (iptables, ip6tables, nft), each
 * driving its renderer. `apply([])` removes everything flanneld's from that tool.
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../exec.js';
import { findRules, IPTABLES_CHAINS, restorePayload } from './iptables-render.js';
import { NFT_TABLES, nftDeleteTable, nftRandomFullyProbe, nftScript } from './nft-render.js';
import type { Chain } from './rule-set.js';

export type Exec = typeof run;

export interface Firewall {
  /** the tool, for messages: iptables, ip6tables, nft */
  readonly tool: string;
  /** the chain families it holds (default [4]): ip6tables [6], nft in a dual-stack network [4, 6] */
  readonly families?: readonly (4 | 6)[];
  /** its binary is installed */
  available(): Promise<boolean>;
  /** MASQUERADE can be fully random */
  randomFully(): Promise<boolean>;
  /** leaves exactly `want` of flanneld's rules in this tool's tables */
  apply(want: readonly Chain[]): Promise<void>;
  /** our part of the tool's state, as text: equal text means nobody changed it */
  observe(): Promise<string>;
}

export async function onPath(bin: string, pathVar = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): Promise<boolean> {
  for (const dir of pathVar.split(':').filter(Boolean)) {
    if (await access(path.join(dir, bin), constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

/** go-iptables' test, which flanneld uses: --random-fully came with iptables 1.6.2 */
export function iptablesHasRandomFully(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText);
  if (!m) return false;
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)));
}

export function iptablesFirewall(family: 4 | 6, exec: Exec = run): Firewall {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const dump = async () => findRules((await exec(`${tool}-save`, [])).stdout);
  /** `-S` of one chain, in iptables-save's form ('' when the chain is missing) */
  const listChain = (table: string, chain: string) =>
    exec(tool, ['-w', '5', '-t', table, '-S', chain]).then(
      (r) => r.stdout.replace(/^-N (\S+)$/gm, ':$1 - [0:0]').replace(/^-P .*\n?/gm, ''),
      () => '',
    );
  let installed: readonly Chain[] = [];
  return {
    tool,
    families: [family],
    available: () => onPath(`${tool}-restore`),
    async randomFully() {
      return iptablesHasRandomFully((await exec(tool, ['--version'])).stdout);
    },
    async apply(want) {
      const payload = restorePayload(want, await dump());
      if (payload) await exec(`${tool}-restore`, ['--wait=10', '--noflush'], { input: payload });
      installed = [...want];
    },
    // only the base chains and our chains, not a whole dump: a host with kube-proxy's rules
    // would otherwise be dumped in full at every resync
    async observe() {
      let text = '';
      for (const c of installed) {
        const n = IPTABLES_CHAINS[c.kind];
        text += `*${n.table}\n${await listChain(n.table, n.base)}${await listChain(n.table, n.chain)}COMMIT\n`;
      }
      return findRules(text).observed;
    },
  };
}

/**
 * flanneld's nftables table `ip flannel-ipv4` (and `ip6 flannel-ipv6` with `ipv6`), as the tool
 * tulle uses (EnableNFTables).
 */
export function nftFirewall(exec: Exec = run, ipv6 = false): Firewall {
  const nft = (args: string[], input?: string) => exec('nft', args, input === undefined ? {} : { input });
  const families = ipv6 ? ([4, 6] as const) : ([4] as const);
  return {
    tool: 'nft',
    families,
    available: () => onPath('nft'),
    randomFully: () => nft(['--check', '-f', '-'], nftRandomFullyProbe()).then(() => true, () => false),
    async apply(want) {
      await nft(['-f', '-'], nftScript(want, ipv6));
    },
    async observe() {
      let text = '';
      for (const f of families) text += await nft(['list', 'table', NFT_TABLES[f].family, NFT_TABLES[f].table]).then((r) => r.stdout, () => '');
      return text;
    },
  };
}

/** flanneld's nftables tables as leftovers to remove (one `nft -f`); it writes nothing. */
export function nftLeftovers(tables: ReadonlyArray<{ family: string; table: string }>, exec: Exec = run): Firewall {
  return {
    tool: 'nft',
    available: () => onPath('nft'),
    randomFully: async () => false,
    async apply(want) {
      if (want.length) throw new Error('tulle writes no rules here: it only removes what flanneld left');
      await exec('nft', ['-f', '-'], { input: tables.map((t) => nftDeleteTable(t.family, t.table)).join('') });
    },
    observe: async () => '',
  };
}
