/**
 * flanneld's masquerade and forward rules on this host, kept in place for the node's life:
 *
 *   start  → remove what a flanneld (or an earlier tulle) left in the tool this run does not
 *            use — iptables' FLANNEL-* chains when EnableNFTables, nftables' flannel-ipv4/-ipv6
 *            tables otherwise (flanneld's CleanUp) — and flanneld's IPv6 rules (tulle has no
 *            IPv6 overlay); then install the rule set in the tool used, replacing leftovers
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
import { flannelRuleSet, type ChainKind } from './rule-set.js';

export interface HostRulesConfig {
  /** the network config's EnableNFTables */
  readonly nftables: boolean;
  readonly network: string;
  readonly subnet: string;
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
  setSubnet(subnet: string): Promise<void>;
  stop(): Promise<void>;
  status(): HostRulesStatus;
}

export interface HostRulesDeps {
  log: Logger;
  clock?: Clock;
  /** the tool used, and the tools whose leftovers are removed at start (default: the real ones) */
  firewalls?: { own: Firewall; others: Firewall[] };
}

function realFirewalls(nftables: boolean): { own: Firewall; others: Firewall[] } {
  const ip6 = iptablesFirewall(6);
  return nftables
    ? { own: nftFirewall(), others: [iptablesFirewall(4), ip6, nftLeftovers([NFT_TABLE_V6])] }
    : { own: iptablesFirewall(4), others: [nftLeftovers([{ family: NFT_FAMILY, table: NFT_TABLE }, NFT_TABLE_V6]), ip6] };
}

export function createHostRules(cfg: HostRulesConfig, deps: HostRulesDeps): HostRules {
  const log = deps.log;
  const clock = deps.clock ?? realClock;
  const { own, others } = deps.firewalls ?? realFirewalls(cfg.nftables);
  const mode = cfg.nftables ? 'nftables' : 'iptables';
  const kinds: ChainKind[] = [...(cfg.ipMasq ? ['masq' as const] : []), ...(cfg.forwardRules ? ['forward' as const] : [])];
  let subnet = cfg.subnet;
  let randomFully: boolean | undefined;
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
    if (!(await own.available())) {
      if (!kinds.length) return;
      const hint = cfg.nftables ? 'install the nftables package' : 'install the iptables package, or set EnableNFTables';
      throw new TulleError('ERR_TULLE_HOST_RULES', `${own.tool} not found: cannot install the ${kinds.join(' and ')} rules (${hint})`);
    }
    if (cfg.ipMasq && randomFully === undefined) randomFully = !cfg.fullyRandomDisable && (await own.randomFully());
    await own.apply(flannelRuleSet({ network: cfg.network, subnet, ipMasq: cfg.ipMasq, forwardRules: cfg.forwardRules, randomFully: randomFully ?? false }));
    snapshot = await own.observe();
    error = undefined;
  };

  const resync = () =>
    serial(async () => {
      if (stopped) return;
      try {
        if (snapshot === undefined) {
          await install();
          log.info({ mode, chains: kinds, subnet }, 'host rules installed');
        } else if ((await own.observe()) !== snapshot) {
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
          if (kinds.length) log.info({ mode, chains: kinds, subnet, randomFully, ms: clock.now() - t0 }, 'host rules installed');
        } catch (e) {
          failed('install', e);
        }
        if (kinds.length && !stopped) cancelTimer = clock.setTimer(() => void resync(), cfg.resyncMs);
      }),
    setSubnet(s) {
      subnet = s;
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
          if (await own.available()) await own.apply([]);
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
