/**
 * A Kubernetes Node as a lease, and a lease as a Node's annotations, the way flanneld's
 * pkg/subnet/kube/kube.go maps them (nodeToLease, AcquireLease). Pure.
 *
 *   Node                                              lease (design.md §3's value)
 *   spec.podCIDRs (1 or 2: one per family),     ──▶   subnet(s): 10.244.3.0-24,
 *     else spec.podCIDR                               10.244.3.0-24&fd00:10:244:3::-64, 0.0.0.0-0&fd00:…
 *   <prefix>/kube-subnet-manager: "true"        ──▶   counted at all (else not a peer)
 *   <prefix>/public-ip: "198.18.0.10"           ──▶   PublicIP         (read with IPv4 enabled)
 *   <prefix>/backend-data: JSON text | "null"   ──▶   BackendData      (read with IPv4 enabled)
 *   <prefix>/public-ipv6: "fd00:198:18::10"     ──▶   PublicIPv6       (read with IPv6 enabled)
 *   <prefix>/backend-v6-data: JSON | "null"     ──▶   BackendV6Data    (read with IPv6 enabled)
 *   <prefix>/backend-type: "wireguard" | ""     ──▶   BackendType ("" is flannel's udp)
 *
 * Which families are read is the network config's (flanneld's enableIPv4/enableIPv6): a family
 * enabled but missing from the node (its pod CIDR, or its public address) makes the node no
 * lease, as flanneld's nodeToLease errors. flanneld's udp backend sets no BackendType, so a
 * flanneld udp node carries backend-type "" and backend-data "null"; tulle writes the same.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { encodeLeaseValue, leaseKeyName, leaseSubnets, NO_PUBLIC_IP, type LeaseAttrs, type LeaseSubnets } from '../../lease/lease.js';
import { formatNet, maskNet, parseNet, parsePrefix } from '../../util/ip.js';
import type { AnnotationNames } from './annotations.js';

/** The parts of a v1.Node this module reads (the API's JSON, as the client returns it). */
export interface KubeNode {
  metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> | null | undefined } | undefined;
  spec?: { podCIDR?: string | undefined; podCIDRs?: string[] | null | undefined } | undefined;
}

/** The address families of the network config (flanneld's EnableIPv4 / EnableIPv6). */
export interface Families {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

export const IPV4_ONLY: Families = Object.freeze({ ipv4: true, ipv6: false });

/** A node's pod CIDRs by family, masked as Go's net.ParseCIDR masks them. */
export type PodCidrs = { ok: true; ipv4?: string | undefined; ipv6?: string | undefined } | { ok: false; problem: string };

/**
 * The node's pod CIDRs as flanneld reads them: spec.podCIDRs when it has entries (one or two;
 * three or more is flanneld's "pod cidrs should be IPv4/IPv6 only or dualstack"), else
 * spec.podCIDR; the first of each family. Undefined when the node has none yet.
 */
export function podCidrs(node: KubeNode): PodCidrs | undefined {
  const list = node.spec?.podCIDRs ?? [];
  const name = node.metadata?.name ?? '?';
  if (list.length > 2) {
    return { ok: false, problem: `node "${name}" pod cidrs should be IPv4/IPv6 only or dualstack (spec.podCIDRs has ${list.length} entries: ${list.join(', ')})` };
  }
  const candidates = list.length ? list : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  if (!candidates.length) return undefined;
  const out: { ok: true; ipv4?: string; ipv6?: string } = { ok: true };
  for (const c of candidates) {
    let family: 4 | 6;
    try {
      family = parsePrefix(c).family;
    } catch {
      return { ok: false, problem: `node "${name}": pod CIDR "${c}" is not a prefix` };
    }
    const key = family === 4 ? 'ipv4' : 'ipv6';
    out[key] ??= formatNet(maskNet(parseNet(c, family)));
  }
  return out;
}

/** The node's IPv4 pod CIDR (the first IPv4 entry of podCIDRs, else podCIDR), for IPv4-only callers. */
export function ipv4PodCidr(node: KubeNode): { ok: true; subnet: string } | { ok: false; problem: string } | undefined {
  const p = familyCidrs(node, IPV4_ONLY);
  return p && (p.ok ? { ok: true, subnet: p.subnets.subnet } : p);
}

/**
 * The node's lease subnets for the enabled families, or what is missing: flanneld's
 * "missing IPv4 address on n.Spec.PodCIDRs" / "missing IPv6 address …". Undefined: no pod CIDR yet.
 */
export function familyCidrs(node: KubeNode, f: Families): { ok: true; subnets: LeaseSubnets } | { ok: false; problem: string } | undefined {
  const p = podCidrs(node);
  if (!p || !p.ok) return p;
  for (const fam of [4, 6] as const) {
    const want = fam === 4 ? f.ipv4 : f.ipv6;
    const have = fam === 4 ? p.ipv4 : p.ipv6;
    if (want && !have) {
      return { ok: false, problem: `missing IPv${fam} address on spec.podCIDRs (node "${node.metadata?.name ?? '?'}" has ${[p.ipv4, p.ipv6].filter(Boolean).join(', ')}; the network config enables IPv${fam})` };
    }
  }
  return { ok: true, subnets: leaseSubnets(f.ipv4 ? p.ipv4 : undefined, f.ipv6 ? p.ipv6 : undefined) };
}

export type NodeEntry =
  /** not managed by flannel (no kube-subnet-manager "true") or no pod CIDR yet: not a lease */
  | { kind: 'none' }
  | { kind: 'lease'; subnets: LeaseSubnets; name: string; value: string; attrs: LeaseAttrs }
  | { kind: 'bad'; problem: string };

/** A backend-data annotation: undefined for absent, "" or "null"; a problem when not JSON. */
function backendData(a: Record<string, string>, key: string): { ok: true; data: unknown } | { ok: false; problem: string } {
  const text = a[key];
  if (text === undefined || text === '') return { ok: true, data: undefined };
  try {
    const v: unknown = JSON.parse(text);
    return { ok: true, data: v === null ? undefined : v };
  } catch {
    return { ok: false, problem: `annotation ${key} is not JSON` };
  }
}

/** What a node is to the lease table (flanneld's nodeToLease), for the network's families. */
export function nodeEntry(node: KubeNode, names: AnnotationNames, f: Families = IPV4_ONLY): NodeEntry {
  const a = node.metadata?.annotations ?? {};
  if (a[names.kubeSubnetManager] !== 'true') return { kind: 'none' };
  const cidrs = familyCidrs(node, f);
  if (!cidrs) return { kind: 'none' };
  if (!cidrs.ok) return { kind: 'bad', problem: cidrs.problem };
  // flanneld's lease of an IPv6-only network has the zero IPv4 address, and no PublicIPv6 without IPv6
  const attrs: LeaseAttrs = { PublicIP: NO_PUBLIC_IP, PublicIPv6: null, BackendType: a[names.backendType] ?? '' };
  if (f.ipv4) {
    const ip = a[names.publicIp];
    if (ip === undefined || !isIPv4(ip)) return { kind: 'bad', problem: `annotation ${names.publicIp} is not an IPv4 address: ${JSON.stringify(ip ?? null)}` };
    attrs.PublicIP = ip;
    const d = backendData(a, names.backendData);
    if (!d.ok) return { kind: 'bad', problem: d.problem };
    if (d.data !== undefined) attrs.BackendData = d.data;
  }
  if (f.ipv6) {
    const ip6 = a[names.publicIpv6];
    if (ip6 === undefined || !isIPv6(ip6)) return { kind: 'bad', problem: `annotation ${names.publicIpv6} is not an IPv6 address: ${JSON.stringify(ip6 ?? null)}` };
    attrs.PublicIPv6 = ip6;
    const d = backendData(a, names.backendV6Data);
    if (!d.ok) return { kind: 'bad', problem: d.problem };
    if (d.data !== undefined) attrs.BackendV6Data = d.data;
  }
  return { kind: 'lease', subnets: cidrs.subnets, name: leaseKeyName(cidrs.subnets), value: encodeLeaseValue(attrs), attrs };
}

/** The annotation value flanneld writes for a backend type: its udp backend sets none. */
export function backendTypeAnnotation(type: string): string {
  return type === 'udp' ? '' : type;
}

export interface OwnAnnotations {
  /** the annotations to change (a two-way merge of old and new, as flanneld sends): {} when all are right */
  patch: Record<string, string>;
  /** the lease as the node then says it: PublicIP / PublicIPv6 are the overwrites when set */
  stored: LeaseAttrs;
  /** public-ip-overwrite is set but not an IPv4 address: not used */
  badOverwrite?: string;
  /** public-ipv6-overwrite is set but not an IPv6 address: not used */
  badOverwriteV6?: string;
}

const json = (v: unknown) => (v === undefined ? 'null' : JSON.stringify(v));

/**
 * flanneld's AcquireLease: the annotations this node must carry for `attrs`. Which are written
 * depends on the backend, as flanneld's conditions say:
 *
 *   backend-type, kube-subnet-manager      always
 *   backend-data, public-ip                udp: always ("null", and 0.0.0.0 in an IPv6-only network);
 *                                          wireguard: when it has BackendData (IPv4 enabled)
 *   backend-v6-data, public-ipv6           wireguard: when it has BackendV6Data and a PublicIPv6
 *                                          udp: with IPv6 enabled ("null"; tulle's own: flanneld's
 *                                          udp backend is IPv4 only and writes neither)
 *
 * An overwrite annotation (public-ip-overwrite, public-ipv6-overwrite) replaces our address in
 * what is written. `f` is the network's families.
 */
export function ownAnnotations(node: KubeNode, attrs: LeaseAttrs, names: AnnotationNames, f: Families = IPV4_ONLY): OwnAnnotations {
  const cur = node.metadata?.annotations ?? {};
  const type = backendTypeAnnotation(attrs.BackendType);
  const want: Record<string, string> = { [names.backendType]: type };
  const stored: LeaseAttrs = { ...attrs };
  const out: Omit<OwnAnnotations, 'patch' | 'stored'> = {};

  const overwritten = (key: string, own: string, valid: (s: string) => boolean, bad: 'badOverwrite' | 'badOverwriteV6'): string => {
    const o = cur[key] ?? '';
    if (o === '') return own;
    if (valid(o)) return o;
    out[bad] = o;
    return own;
  };
  if (type !== 'wireguard' || attrs.BackendData !== undefined) {
    want[names.backendData] = json(attrs.BackendData);
    want[names.publicIp] = stored.PublicIP = overwritten(names.publicIpOverwrite, attrs.PublicIP, isIPv4, 'badOverwrite');
  }
  const v6 = type === 'wireguard' ? attrs.BackendV6Data !== undefined && attrs.PublicIPv6 !== null : type === '' && f.ipv6 && attrs.PublicIPv6 !== null;
  if (v6) {
    want[names.backendV6Data] = json(attrs.BackendV6Data);
    want[names.publicIpv6] = stored.PublicIPv6 = overwritten(names.publicIpv6Overwrite, attrs.PublicIPv6!, isIPv6, 'badOverwriteV6');
  }
  want[names.kubeSubnetManager] = 'true';
  const patch: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) if (cur[k] !== v) patch[k] = v;
  return { patch, stored, ...out };
}

/** The strategic-merge patch body for annotations (flanneld sends it to nodes/NAME/status). */
export function annotationPatchBody(patch: Record<string, string>): { metadata: { annotations: Record<string, string> } } {
  return { metadata: { annotations: patch } };
}
