/**
 * A Kubernetes Node as a lease, and a lease as a Node's annotations, the way flanneld's
 * pkg/subnet/kube/kube.go maps them (nodeToLease, AcquireLease). Pure.
 *
 *   Node                                             lease (design.md §3's value)
 *   spec.podCIDR / spec.podCIDRs (first IPv4)   ──▶   subnet (the key name 10.244.3.0-24)
 *   <prefix>/kube-subnet-manager: "true"        ──▶   counted at all (else not a peer)
 *   <prefix>/public-ip: "198.18.0.10"           ──▶   PublicIP
 *   <prefix>/backend-type: "wireguard" | ""     ──▶   BackendType ("" is flannel's udp)
 *   <prefix>/backend-data: JSON text | "null"   ──▶   BackendData (wireguard: {"PublicKey","Port"})
 *
 * flanneld's udp backend sets no BackendType, so a flanneld udp node carries backend-type ""
 * and backend-data "null"; tulle writes the same for udp. IPv6 (public-ipv6, backend-v6-data)
 * is read by flanneld only with EnableIPv6, which tulle does not run yet: not mapped here.
 */
import { isIPv4 } from 'node:net';
import { encodeLeaseValue, leaseKeyName, leaseSubnets, type LeaseAttrs } from '../../lease/lease.js';
import { parsePrefix } from '../../util/ip.js';
import { formatNet, maskNet, parseNet } from '../../util/ip.js';
import type { AnnotationNames } from './annotations.js';

/** The parts of a v1.Node this module reads (the API's JSON, as the client returns it). */
export interface KubeNode {
  metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> | null | undefined } | undefined;
  spec?: { podCIDR?: string | undefined; podCIDRs?: string[] | null | undefined } | undefined;
}

export type PodCidr = { ok: true; subnet: string } | { ok: false; problem: string };

/** The node's IPv4 pod CIDR as flanneld picks it: podCIDRs' first IPv4 entry, else podCIDR; masked as Go's net.ParseCIDR masks. */
export function ipv4PodCidr(node: KubeNode): PodCidr | undefined {
  const list = node.spec?.podCIDRs ?? [];
  if (list.length > 2) return { ok: false, problem: `pod cidrs should be IPv4/IPv6 only or dualstack, got ${list.length}` };
  const candidates = list.length ? list : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  if (!candidates.length) return undefined;
  for (const c of candidates) {
    let family: number;
    try {
      family = parsePrefix(c).family;
    } catch {
      return { ok: false, problem: `pod CIDR "${c}" is not a prefix` };
    }
    if (family !== 4) continue;
    return { ok: true, subnet: formatNet(maskNet(parseNet(c, 4))) };
  }
  return { ok: false, problem: 'missing IPv4 address on spec.podCIDRs' };
}

export type NodeEntry =
  /** not managed by flannel (no kube-subnet-manager "true") or no pod CIDR yet: not a lease */
  | { kind: 'none' }
  | { kind: 'lease'; subnet: string; name: string; value: string; attrs: LeaseAttrs }
  | { kind: 'bad'; problem: string };

/** What a node is to the lease table (flanneld's nodeToLease). */
export function nodeEntry(node: KubeNode, names: AnnotationNames): NodeEntry {
  const a = node.metadata?.annotations ?? {};
  if (a[names.kubeSubnetManager] !== 'true') return { kind: 'none' };
  const cidr = ipv4PodCidr(node);
  if (!cidr) return { kind: 'none' };
  if (!cidr.ok) return { kind: 'bad', problem: cidr.problem };
  const ip = a[names.publicIp];
  if (ip === undefined || !isIPv4(ip)) return { kind: 'bad', problem: `annotation ${names.publicIp} is not an IPv4 address: ${JSON.stringify(ip ?? null)}` };
  const attrs: LeaseAttrs = { PublicIP: ip, PublicIPv6: null, BackendType: a[names.backendType] ?? '' };
  const data = a[names.backendData];
  if (data !== undefined && data !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return { kind: 'bad', problem: `annotation ${names.backendData} is not JSON` };
    }
    if (parsed !== null) attrs.BackendData = parsed;
  }
  return { kind: 'lease', subnet: cidr.subnet, name: leaseKeyName(leaseSubnets(cidr.subnet, undefined)), value: encodeLeaseValue(attrs), attrs };
}

/** The annotation value flanneld writes for a backend type: its udp backend sets none. */
export function backendTypeAnnotation(type: string): string {
  return type === 'udp' ? '' : type;
}

export interface OwnAnnotations {
  /** the annotations to change (a two-way merge of old and new, as flanneld sends): {} when all are right */
  patch: Record<string, string>;
  /** the lease as the node then says it: PublicIP is the overwrite when one is set */
  stored: LeaseAttrs;
  /** public-ip-overwrite is set but not an IPv4 address: not used */
  badOverwrite?: string;
}

/** flanneld's AcquireLease: the annotations this node must carry for `attrs`. */
export function ownAnnotations(node: KubeNode, attrs: LeaseAttrs, names: AnnotationNames): OwnAnnotations {
  const cur = node.metadata?.annotations ?? {};
  const overwrite = cur[names.publicIpOverwrite] ?? '';
  const usable = overwrite !== '' && isIPv4(overwrite);
  const publicIp = usable ? overwrite : attrs.PublicIP;
  const want: Record<string, string> = {
    [names.backendType]: backendTypeAnnotation(attrs.BackendType),
    [names.backendData]: attrs.BackendData === undefined ? 'null' : JSON.stringify(attrs.BackendData),
    [names.publicIp]: publicIp,
    [names.kubeSubnetManager]: 'true',
  };
  const patch: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) if (cur[k] !== v) patch[k] = v;
  return {
    patch,
    stored: { ...attrs, PublicIP: publicIp },
    ...(overwrite !== '' && !usable ? { badOverwrite: overwrite } : {}),
  };
}

/** The strategic-merge patch body for annotations (flanneld sends it to nodes/NAME/status). */
export function annotationPatchBody(patch: Record<string, string>): { metadata: { annotations: Record<string, string> } } {
  return { metadata: { annotations: patch } };
}
