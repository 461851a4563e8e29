/**
 * The registry on the Kubernetes API (flanneld's --kube-subnet-mgr, pkg/subnet/kube): a lease is
 * a Node — its subnets are spec.podCIDRs (one per enabled family), its value the node's flannel
 * annotations (node-lease.ts).
 * Behind the same seam as the etcd registry; what differs is said by the Registry's optional
 * parts:
 *
 *   getNetworkConfig  the file at --net-config-path (net-conf.json), read as etcd's config key
 *   useFamilies       the network's families: which pod CIDRs and annotations make a lease
 *   assignedSubnet    this node's pod CIDRs: the manager takes them instead of choosing
 *   createSubnet      write this node's annotations (only those that differ, as flanneld's
 *   updateSubnet      two-way merge patch) on nodes/NAME/status; the overwrites honoured
 *   deleteSubnet      never needed: nothing here expires or is given back
 *   watchSubnets      the Node watch (node-watch.ts)
 *   nodeReady         NodeNetworkUnavailable=False (--set-node-network-unavailable)
 *
 * No TTL: a node's lease lives as long as the node. Compare-and-put has nothing to compare: the
 * node is this daemon's alone.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { decodeLeaseValue, encodeLeaseValue, leaseKeyName } from '../../lease/lease.js';
import { TulleError } from '../../util/errors.js';
import type { Assignment, Registry, RegistryEntry, WriteResult } from '../registry.js';
import type { KubeApi } from './kube-api.js';
import type { KubeSettings } from './kube-settings.js';
import { networkAvailablePatchBody } from './node-condition.js';
import { annotationPatchBody, familyCidrs, IPV4_ONLY, nodeEntry, ownAnnotations, podCidrs, type Families, type KubeNode } from './node-lease.js';
import { rvNumber, startNodeWatch, type KnownLeases } from './node-watch.js';

export interface KubeRegistry extends Registry {
  assignedSubnet(): Promise<Assignment>;
  nodeReady(): Promise<void>;
  /** flanneld's GetStoredPublicIP: the node's node-public-ip and node-public-ipv6 annotations, read once at start */
  storedPublicIp(): Promise<{ ipv4?: string | undefined; ipv6?: string | undefined }>;
  nodeName(): Promise<string>;
}

export function kubeRegistry(s: KubeSettings, api: KubeApi, log: Logger, now: () => Date = () => new Date(), listPage?: number): KubeRegistry {
  const { names } = s;
  let known: KnownLeases = new Map();
  let families: Families = IPV4_ONLY; // the network config's, told by the lease manager (useFamilies)
  let listedAt = '0';
  const watches = new Set<{ cancel(): Promise<void> }>();
  const badSeen = new Map<string, string>(); // node → resourceVersion logged
  let closed = false;
  let nameP: Promise<string> | undefined;

  const reportBad = (node: KubeNode, problem: string) => {
    const n = node.metadata?.name ?? '?';
    const rv = node.metadata?.resourceVersion ?? '';
    if (badSeen.get(n) === rv) return;
    badSeen.set(n, rv);
    log.warn({ node: n, problem }, 'skipping node: its flannel annotations do not make a lease');
  };

  const nodeName = (): Promise<string> => {
    if (s.node.kind === 'node') return Promise.resolve(s.node.name);
    const pod = s.node;
    nameP ??= api.podNodeName(pod.namespace, pod.name).then((n) => {
      if (!n) throw new TulleError('ERR_TULLE_KUBE', `node name not present in pod spec '${pod.namespace}/${pod.name}'`);
      log.info({ pod: `${pod.namespace}/${pod.name}`, node: n }, 'found our node from the pod');
      return n;
    });
    nameP.catch(() => (nameP = undefined)); // looked up again on the next call
    return nameP;
  };

  const claim = async (name: string, value: string): Promise<WriteResult> => {
    const me = await nodeName();
    const node = await api.readNode(me);
    const cidrs = node && familyCidrs(node, families);
    if (!node || !cidrs?.ok || leaseKeyName(cidrs.subnets) !== name) return { ok: false, modRevision: 0, leaseId: '0' };
    const d = decodeLeaseValue(value);
    if (!d.ok) throw new TulleError('ERR_TULLE_INTERNAL', `lease value for node ${me}: ${d.problem}`);
    const want = ownAnnotations(node, d.attrs, names, families);
    if (want.badOverwrite !== undefined) log.warn({ annotation: names.publicIpOverwrite, value: want.badOverwrite }, 'public-ip-overwrite is not an IPv4 address; not used');
    else if (want.stored.PublicIP !== d.attrs.PublicIP && names.publicIp in want.patch) {
      log.info({ publicIp: want.stored.PublicIP, annotation: names.publicIpOverwrite }, 'overriding public ip from the node annotation');
    }
    if (want.badOverwriteV6 !== undefined) log.warn({ annotation: names.publicIpv6Overwrite, value: want.badOverwriteV6 }, 'public-ipv6-overwrite is not an IPv6 address; not used');
    else if (want.stored.PublicIPv6 !== d.attrs.PublicIPv6 && names.publicIpv6 in want.patch) {
      log.info({ publicIpv6: want.stored.PublicIPv6, annotation: names.publicIpv6Overwrite }, 'overriding public ipv6 from the node annotation');
    }
    let after: KubeNode = node;
    if (Object.keys(want.patch).length) {
      after = await api.patchNodeStatus(me, annotationPatchBody(want.patch));
      log.info({ node: me, annotations: want.patch }, 'annotated our node');
    }
    // our lease as the watch will read it back from the node (and peers do): the same value, so it
    // is not taken for someone else's
    const e = nodeEntry(after, names, families);
    return { ok: true, modRevision: rvNumber(after.metadata?.resourceVersion), leaseId: '0', value: e.kind === 'lease' ? e.value : encodeLeaseValue(want.stored) };
  };

  return {
    storeName: 'the Kubernetes API',
    storeKey: 'kubeApi',
    nodeName,
    useFamilies(f) {
      families = { ipv4: f.ipv4, ipv6: f.ipv6 };
    },
    async getNetworkConfig() {
      try {
        return await readFile(s.netConfPath, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new TulleError('ERR_TULLE_NET_CONF', `cannot read ${s.netConfPath}: ${(e as Error).message}`, { cause: e });
      }
    },
    async listSubnets() {
      const r = await api.listNodes(listPage);
      const entries: RegistryEntry[] = [];
      const next: KnownLeases = new Map();
      for (const node of r.items) {
        const e = nodeEntry(node, names, families);
        if (e.kind === 'bad') reportBad(node, e.problem);
        if (e.kind !== 'lease') continue;
        entries.push({ name: e.name, value: e.value, modRevision: rvNumber(node.metadata?.resourceVersion), leaseId: '0' });
        next.set(node.metadata?.name ?? '', { name: e.name, value: e.value });
      }
      known = next;
      listedAt = r.resourceVersion;
      return { entries, revision: rvNumber(r.resourceVersion) };
    },
    async assignedSubnet() {
      const me = await nodeName();
      const node = await api.readNode(me);
      if (!node) return { waiting: `node "${me}" does not exist in the Kubernetes API (${api.server})` };
      const p = podCidrs(node);
      if (!p) return { waiting: `node "${me}" has no spec.podCIDR yet (kube-controller-manager --allocate-node-cidrs assigns it)` };
      if (!p.ok) return { refused: p.problem };
      return { ipv4: p.ipv4, ipv6: p.ipv6 };
    },
    createSubnet: (name, value) => claim(name, value),
    updateSubnet: (name, value) => claim(name, value),
    async deleteSubnet() {
      return false;
    },
    watchSubnets(fromRevision, sink) {
      // the manager asks for etcd's "from this revision on"; Kubernetes watches "after this one"
      const from = fromRevision - 1 === rvNumber(listedAt) ? listedAt : String(Math.max(0, fromRevision - 1));
      const w = startNodeWatch({ api, names, families, log, resourceVersion: from, known, sink, onBad: reportBad });
      watches.add(w);
      return {
        async cancel() {
          watches.delete(w);
          await w.cancel();
        },
      };
    },
    async nodeReady() {
      if (!s.setNodeNetworkUnavailable) return;
      const me = await nodeName();
      for (let failures = 0; !closed; failures++) {
        try {
          await api.patchNodeStatus(me, networkAvailablePatchBody(now()));
          log.info({ node: me, condition: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' }, 'node condition set');
          return;
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'cannot set the NetworkUnavailable condition; retrying');
          await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** Math.min(failures, 6))).unref());
        }
      }
    },
    async storedPublicIp() {
      const node = await api.readNode(await nodeName());
      const a = node?.metadata?.annotations ?? {};
      return { ipv4: a[names.nodePublicIp] || undefined, ipv6: a[names.nodePublicIpv6] || undefined };
    },
    async close() {
      closed = true;
      await Promise.all([...watches].map((w) => w.cancel()));
      watches.clear();
    },
  };
}
