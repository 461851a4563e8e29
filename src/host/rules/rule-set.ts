/**
 * flanneld's host rules, described once (pkg/trafficmngr): what they match and what they do,
 * in flanneld's order. Two renderers turn this into text: iptables-render.ts (iptables-restore
 * lines, as flanneld's iptables manager writes them) and nft-render.ts (an `nft -f` script, as
 * flanneld's nftables manager writes it).
 *
 * One chain of each kind per enabled family (IPv4: iptables / `ip flannel-ipv4`; IPv6: ip6tables /
 * `ip6 flannel-ipv6`), the same rules with the family's Network, subnet and multicast range:
 *
 *   masq (--ip-masq), hooked at postrouting:
 *     kube-proxy's mark 0x4000/0x4000   RETURN      (kube-proxy masquerades it: no double NAT)
 *     subnet  → Network                 RETURN      (our pods to the overlay: never NAT)
 *     Network → subnet                  RETURN      (the overlay to our pods: never NAT)
 *     !Network → subnet                 RETURN      (outside traffic to our pods keeps its source)
 *     Network → !224.0.0.0/4            MASQUERADE  (pods going out, not multicast; IPv6: ff00::/8)
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
  /** 4: iptables / nft table ip flannel-ipv4; 6: ip6tables / nft table ip6 flannel-ipv6 */
  readonly family: 4 | 6;
  readonly rules: readonly Rule[];
}

/** kube-proxy marks packets it wants masqueraded with this bit (flanneld's KubeProxyMark) */
export const KUBE_PROXY_MARK = { value: 0x4000, mask: 0x4000 } as const;
export const MULTICAST_V4 = '224.0.0.0/4';
export const MULTICAST_V6 = 'ff00::/8';

export interface RuleSetInput {
  /** the whole IPv4 overlay (FLANNEL_NETWORK) and this node's IPv4 subnet; absent: IPv6 only */
  readonly network?: string | undefined;
  readonly subnet?: string | undefined;
  /** the IPv6 overlay (FLANNEL_IPV6_NETWORK) and this node's IPv6 subnet, when EnableIPv6 */
  readonly ipv6Network?: string | undefined;
  readonly ipv6Subnet?: string | undefined;
  readonly ipMasq: boolean;
  readonly forwardRules: boolean;
  /** MASQUERADE --random-fully: supported by the tool and not disabled */
  readonly randomFully: boolean;
}

const familyOf = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);

export function masqChain(network: string, subnet: string, randomFully: boolean): Chain {
  const masq = randomFully ? { verdict: 'MASQUERADE' as const, randomFully: true } : { verdict: 'MASQUERADE' as const };
  const family = familyOf(network);
  return {
    kind: 'masq',
    family,
    rules: [
      { mark: KUBE_PROXY_MARK, verdict: 'RETURN' },
      { src: { cidr: subnet }, dst: { cidr: network }, verdict: 'RETURN' },
      { src: { cidr: network }, dst: { cidr: subnet }, verdict: 'RETURN' },
      // flanneld's nftables manager writes this one as "not from our subnet, to the Network"
      { src: { cidr: network, not: true }, dst: { cidr: subnet }, verdict: 'RETURN', nft: { src: { cidr: subnet, not: true }, dst: { cidr: network } } },
      { src: { cidr: network }, dst: { cidr: family === 4 ? MULTICAST_V4 : MULTICAST_V6, not: true }, ...masq },
      { src: { cidr: network, not: true }, dst: { cidr: network }, ...masq },
    ],
  };
}

export function forwardChain(network: string): Chain {
  return {
    kind: 'forward',
    family: familyOf(network),
    rules: [
      { src: { cidr: network }, verdict: 'ACCEPT' },
      { dst: { cidr: network }, verdict: 'ACCEPT' },
    ],
  };
}

/** The chains tulle installs, in flanneld's order (masquerade IPv4, IPv6, then forward IPv4, IPv6). */
export function flannelRuleSet(i: RuleSetInput): Chain[] {
  const families = [
    ...(i.network !== undefined && i.subnet !== undefined ? [{ network: i.network, subnet: i.subnet }] : []),
    ...(i.ipv6Network !== undefined && i.ipv6Subnet !== undefined ? [{ network: i.ipv6Network, subnet: i.ipv6Subnet }] : []),
  ];
  const chains: Chain[] = [];
  if (i.ipMasq) for (const f of families) chains.push(masqChain(f.network, f.subnet, i.randomFully));
  if (i.forwardRules) for (const f of families) chains.push(forwardChain(f.network));
  return chains;
}
