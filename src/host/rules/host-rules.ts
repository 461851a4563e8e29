/**
 * flanneld's masquerade and forward rules on this host, kept in place for the node's life:
 *
 *   start  → remove what a flanneld (or an earlier tulle) left in the tool this run does not
 *            use — iptables' FLANNEL-* chains when EnableNFTables, nftables' flannel-ipv4/-ipv6
 *            tables otherwise (flanneld's CleanUp) — and flanneld's IPv6 rules when IPv6 is
 *            off; then install the rule set in the tools used (iptables and ip6tables, or nft
 *            with both tables), replacing leftovers
 *   resync → every --iptables-resync seconds: if our part of the tables is not what we left,
 *            install it again (flanneld does this for iptables; tulle for nftables too)
 *   subnet → a new lease: install again (the masquerade rules name the subnet)
 *   stop   → remove everything installed (flanneld leaves its rules behind; tulle does not)
 *
 * Failing to install is logged, not fatal (as in flanneld), and retried at each resync.
 */
import type { Logger } from 'pino';
import { realClock, type Clock } from '../../util/clock.js';
import { TulleError } from '../../util/errors.js';
import { iptablesFirewall, nftFirewall, nftLeftovers, type Firewall } from './firewall.js';
import { NFT_FAMILY, NFT_TABLE, NFT_TABLE_V6 } from './nft-render.js';
import type { Chain } from './rule-set.js';
import { flannelRuleSet, type ChainKind } from './rule-set.js';

export interface HostRulesConfig {
  /** the network config's EnableNFTables */
  readonly nftables: boolean;
  /** the IPv4 Network and our IPv4 subnet (absent in an IPv6-only network) */
  readonly network?: string | undefined;
  readonly subnet?: string | undefined;
  /** the IPv6 Network and our IPv6 subnet (EnableIPv6) */
  readonly ipv6Network?: string | undefined;
  readonly ipv6Subnet?: string | undefined;
  /** --ip-masq */
  readonly ipMasq: boolean;
  /** --iptables-forward-rules */
  readonly forwardRules: boolean;
  /** --ip-masq-fully-random-disable */
  readonly fullyRandomDisable: boolean;
  /** --iptables-resync, in ms */
  readonly resyncMs: number;
}

export interface HostRulesStatus {
  mode: 'iptables' | 'nftables';
  chains: ChainKind[];
  /** the rules are in place as last installed */
  installed: boolean;
  /** times a resync found them changed and put them back */
  restored: number;
  error: string | undefined;
}

export interface HostRules {
  start(): Promise<void>;
  setSubnet(subnet: string | undefined, ipv6Subnet?: string | undefined): Promise<void>;
  stop(): Promise<void>;
  status(): HostRulesStatus;
}

export interface HostRulesDeps {
  log: Logger;
  clock?: Clock;
  /** the tools used, and the tools whose leftovers are removed at start (default: the real ones) */
  firewalls?: { own: Firewall | Firewall[]; others: Firewall[] };
}

function realFirewalls(nftables: boolean, ipv6: boolean): { own: Firewall[]; others: Firewall[] } {
  const ip6 = iptablesFirewall(6);
  const nftTables = [{ family: NFT_FAMILY, table: NFT_TABLE }, NFT_TABLE_V6];
  if (nftables) return { own: [nftFirewall(undefined, ipv6)], others: [iptablesFirewall(4), ip6, ...(ipv6 ? [] : [nftLeftovers([NFT_TABLE_V6])])] };
  return ipv6 ? { own: [iptablesFirewall(4), ip6], others: [nftLeftovers(nftTables)] } : { own: [iptablesFirewall(4)], others: [nftLeftovers(nftTables), ip6] };
}

/** The chains a tool holds (iptables: IPv4, ip6tables: IPv6, nft: its families). */
function chainsFor(fw: Firewall, chains: readonly Chain[]): Chain[] {
  const families = fw.families ?? [4];
  return chains.filter((c) => families.includes(c.family));
}

export function createHostRules(cfg: HostRulesConfig, deps: HostRulesDeps): HostRules {
  const log = deps.log;
  const clock = deps.clock ?? realClock;
  const fws = deps.firewalls ?? realFirewalls(cfg.nftables, cfg.ipv6Network !== undefined);
  const own = Array.isArray(fws.own) ? fws.own : [fws.own];
  const others = fws.others;
  const mode = cfg.nftables ? 'nftables' : 'iptables';
  const kinds: ChainKind[] = [...(cfg.ipMasq ? ['masq' as const] : []), ...(cfg.forwardRules ? ['forward' as const] : [])];
  let subnet = cfg.subnet;
  let ipv6Subnet = cfg.ipv6Subnet;
  const randomFully = new Map<Firewall, boolean>();
  let snapshot: string | undefined; // our part of the tables as we left it; undefined: not installed
  let restored = 0;
  let error: string | undefined;
  let stopped = false;
  let cancelTimer: (() => void) | undefined;
  let queue: Promise<void> = Promise.resolve();
  const serial = (fn: () => Promise<void>) => (queue = queue.then(fn, fn));

  const failed = (what: string, e: unknown) => {
    const msg = `${what}: ${(e as Error).message}`;
    if (msg !== error) log.error({ code: (e as TulleError).code ?? 'ERR_TULLE_HOST_RULES', mode, err: msg }, "cannot keep flanneld's host rules in place; retrying at each resync");
    error = msg;
  };

  const install = async () => {
    snapshot = undefined;
    let seen = '';
    for (const fw of own) {
      if (!(await fw.available())) {
        if (!kinds.length) return;
        const hint = cfg.nftables ? 'install the nftables package' : 'install the iptables package, or set EnableNFTables';
        throw new TulleError('ERR_TULLE_HOST_RULES', `${fw.tool} not found: cannot install the ${kinds.join(' and ')} rules (${hint})`);
      }
      if (cfg.ipMasq && !randomFully.has(fw)) randomFully.set(fw, !cfg.fullyRandomDisable && (await fw.randomFully()));
      const rules = flannelRuleSet({
        network: cfg.network, subnet, ipv6Network: cfg.ipv6Network, ipv6Subnet,
        ipMasq: cfg.ipMasq, forwardRules: cfg.forwardRules, randomFully: randomFully.get(fw) ?? false,
      });
      await fw.apply(chainsFor(fw, rules));
      seen += await fw.observe();
    }
    snapshot = seen;
    error = undefined;
  };

  const observeAll = async () => {
    let text = '';
    for (const fw of own) text += await fw.observe();
    return text;
  };

  const resync = () =>
    serial(async () => {
      if (stopped) return;
      try {
        if (snapshot === undefined) {
          await install();
          log.info({ mode, chains: kinds, subnet }, 'host rules installed');
        } else if ((await observeAll()) !== snapshot) {
          log.warn({ mode, chains: kinds }, "flanneld's host rules were changed or removed; putting them back");
          await install();
          restored++;
        }
      } catch (e) {
        failed('resync', e);
      }
    }).finally(() => {
      if (!stopped) cancelTimer = clock.setTimer(() => void resync(), cfg.resyncMs);
    });

  return {
    start: () =>
      serial(async () => {
        const t0 = clock.now();
        for (const fw of others) {
          try {
            if (await fw.available()) await fw.apply([]);
          } catch (e) {
            log.debug({ tool: fw.tool, err: (e as Error).message }, "cannot remove flanneld's leftover rules");
          }
        }
        try {
          await install();
          if (kinds.length) log.info({ mode, chains: kinds, subnet, ipv6Subnet, randomFully: [...randomFully.values()], ms: clock.now() - t0 }, 'host rules installed');
        } catch (e) {
          failed('install', e);
        }
        if (kinds.length && !stopped) cancelTimer = clock.setTimer(() => void resync(), cfg.resyncMs);
      }),
    setSubnet(s, s6) {
      subnet = s;
      ipv6Subnet = s6;
      if (!cfg.ipMasq) return Promise.resolve();
      return serial(async () => {
        if (stopped) return;
        try {
          await install();
          log.info({ mode, subnet }, 'masquerade rules moved to the new subnet');
        } catch (e) {
          failed('new subnet', e);
        }
      });
    },
    stop() {
      stopped = true;
      cancelTimer?.();
      return serial(async () => {
        if (!kinds.length) return;
        try {
          for (const fw of own) if (await fw.available()) await fw.apply([]);
          snapshot = undefined;
          log.info({ mode }, 'host rules removed');
        } catch (e) {
          log.warn({ mode, err: (e as Error).message }, 'cannot remove host rules');
        }
      });
    },
    status: () => ({ mode, chains: kinds, installed: snapshot !== undefined, restored, error }),
  };
}
