/**
 * flanneld's host rules, described once (pkg/trafficmngr): what they match and what they do,
 * in flanneld's order. Two renderers turn this into text: iptables-render.ts (iptables-restore
 * lines, as flanneld's iptables manager writes them) and nft-render.ts (an `nft -f` script, as
 * flanneld's nftables manager writes it).
 *
 *   masq (--ip-masq), hooked at postrouting:
 *     kube-proxy's mark 0x4000/0x4000   RETURN      (kube-proxy masquerades it: no double NAT)
 *     subnet  → Network                 RETURN      (our pods to the overlay: never NAT)
 *     Network → subnet                  RETURN      (the overlay to our pods: never NAT)
 *     !Network → subnet                 RETURN      (outside traffic to our pods keeps its source)
 *     Network → !224.0.0.0/4            MASQUERADE  (pods going out, not multicast)
 *     !Network → Network                MASQUERADE  (the host talking into the overlay)
 *   forward (--iptables-forward-rules, default true), hooked at forward:
 *     Network → any                     ACCEPT
 *     any → Network                     ACCEPT
 *
 * MASQUERADE is fully random when the tool supports it and --ip-masq-fully-random-disable is not
 * set. Where flanneld's two managers write a rule differently, the rule says so (`nft`).
 */

export interface AddrMatch {
  readonly cidr: string;
  readonly not?: boolean;
}

export type Verdict = 'RETURN' | 'MASQUERADE' | 'ACCEPT';

export interface Rule {
  readonly src?: AddrMatch;
  readonly dst?: AddrMatch;
  /** packet mark under a mask (kube-proxy's "masquerade me" bit) */
  readonly mark?: { readonly value: number; readonly mask: number };
  readonly verdict: Verdict;
  /** MASQUERADE only: pick source ports fully at random */
  readonly randomFully?: boolean;
  /** flanneld's nftables manager matches these addresses instead (its rule differs from iptables') */
  readonly nft?: { readonly src?: AddrMatch; readonly dst?: AddrMatch };
}

export type ChainKind = 'masq' | 'forward';

export interface Chain {
  readonly kind: ChainKind;
  readonly rules: readonly Rule[];
}

/** kube-proxy marks packets it wants masqueraded with this bit (flanneld's KubeProxyMark) */
export const KUBE_PROXY_MARK = { value: 0x4000, mask: 0x4000 } as const;
export const MULTICAST_V4 = '224.0.0.0/4';

export interface RuleSetInput {
  /** the whole overlay (FLANNEL_NETWORK) */
  readonly network: string;
  /** this node's lease */
  readonly subnet: string;
  readonly ipMasq: boolean;
  readonly forwardRules: boolean;
  /** MASQUERADE --random-fully: supported by the tool and not disabled */
  readonly randomFully: boolean;
}

export function masqChain(network: string, subnet: string, randomFully: boolean): Chain {
  const masq = randomFully ? { verdict: 'MASQUERADE' as const, randomFully: true } : { verdict: 'MASQUERADE' as const };
  return {
    kind: 'masq',
    rules: [
      { mark: KUBE_PROXY_MARK, verdict: 'RETURN' },
      { src: { cidr: subnet }, dst: { cidr: network }, verdict: 'RETURN' },
      { src: { cidr: network }, dst: { cidr: subnet }, verdict: 'RETURN' },
      // flanneld's nftables manager writes this one as "not from our subnet, to the Network"
      { src: { cidr: network, not: true }, dst: { cidr: subnet }, verdict: 'RETURN', nft: { src: { cidr: subnet, not: true }, dst: { cidr: network } } },
      { src: { cidr: network }, dst: { cidr: MULTICAST_V4, not: true }, ...masq },
      { src: { cidr: network, not: true }, dst: { cidr: network }, ...masq },
    ],
  };
}

export function forwardChain(network: string): Chain {
  return {
    kind: 'forward',
    rules: [
      { src: { cidr: network }, verdict: 'ACCEPT' },
      { dst: { cidr: network }, verdict: 'ACCEPT' },
    ],
  };
}

/** The chains tulle installs, in flanneld's order (masquerade first, then forward). */
export function flannelRuleSet(i: RuleSetInput): Chain[] {
  const chains: Chain[] = [];
  if (i.ipMasq) chains.push(masqChain(i.network, i.subnet, i.randomFully));
  if (i.forwardRules) chains.push(forwardChain(i.network));
  return chains;
}
