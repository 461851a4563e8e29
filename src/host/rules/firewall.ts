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

/** what ends one chain's listing in a batched observe (no rule line can be this) */
const CHAIN_END = '#tulle: end of chain';

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
  /** `-S` output of one chain in iptables-save's form */
  const saveForm = (text: string) => text.replace(/^-N (\S+)$/gm, ':$1 - [0:0]').replace(/^-P .*\n?/gm, '');
  /** `-S` of one chain ('' when the chain is missing) */
  const listChain = (table: string, chain: string) => exec(tool, ['-w', '5', '-t', table, '-S', chain]).then((r) => saveForm(r.stdout), () => '');
  /**
   * `-S` of each chain, all from one `sh`: every process the daemon starts forks all of its memory
   * (≈ 5.5 ms of CPU at 130 MiB RSS, 4 per resync = 0.45 % of a core at the default 5 s), the
   * shell's own children cost the daemon nothing. The names are our constants (IPTABLES_CHAINS).
   * Without a shell: one process per chain.
   */
  const listChains = async (chains: ReadonlyArray<readonly [table: string, chain: string]>): Promise<string[]> => {
    const script = chains.map(([t, c]) => `${tool} -w 5 -t ${t} -S ${c} 2>/dev/null; echo '${CHAIN_END}'`).join('\n');
    const parts = await exec('sh', ['-c', script]).then((r) => r.stdout.split(`${CHAIN_END}\n`), () => []);
    if (parts.length === chains.length + 1 && parts[chains.length] === '') return parts.slice(0, -1).map(saveForm);
    const out: string[] = [];
    for (const [t, c] of chains) out.push(await listChain(t, c));
    return out;
  };
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
      const names = installed.map((c) => IPTABLES_CHAINS[c.kind]);
      const lists = await listChains(names.flatMap((n) => [[n.table, n.base] as const, [n.table, n.chain] as const]));
      const text = names.map((n, i) => `*${n.table}\n${lists[2 * i]}${lists[2 * i + 1]}COMMIT\n`).join('');
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
