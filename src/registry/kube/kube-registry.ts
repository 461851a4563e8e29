/**
 * The registry on the Kubernetes API (flanneld's --kube-subnet-mgr, pkg/subnet/kube): a lease is
 * a Node — its subnet is spec.podCIDR, its value the node's flannel annotations (node-lease.ts).
 * Behind the same seam as the etcd registry; what differs is said by the Registry's optional
 * parts:
 *
 *   getNetworkConfig  the file at --net-config-path (net-conf.json), read as etcd's config key
 *   assignedSubnet    this node's podCIDR: the manager takes it instead of choosing one
 *   createSubnet      write this node's annotations (only those that differ, as flanneld's
 *   updateSubnet      two-way merge patch) on nodes/NAME/status; public-ip-overwrite honoured
 *   deleteSubnet      never needed: nothing here expires or is given back
 *   watchSubnets      the Node watch (node-watch.ts)
 *   nodeReady         NodeNetworkUnavailable=False (--set-node-network-unavailable)
 *
 * No TTL: a node's lease lives as long as the node. Compare-and-put has nothing to compare: the
 * node is this daemon's alone.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { decodeLeaseValue, encodeLeaseValue } from '../../lease/lease.js';
import { TulleError } from '../../util/errors.js';
import type { Assignment, Registry, RegistryEntry, WriteResult } from '../registry.js';
import type { KubeApi } from './kube-api.js';
import type { KubeSettings } from './kube-settings.js';
import { networkAvailablePatchBody } from './node-condition.js';
import { annotationPatchBody, ipv4PodCidr, nodeEntry, ownAnnotations, type KubeNode } from './node-lease.js';
import { rvNumber, startNodeWatch, type KnownLeases } from './node-watch.js';

export interface KubeRegistry extends Registry {
  assignedSubnet(): Promise<Assignment>;
  nodeReady(): Promise<void>;
  /** flanneld's GetStoredPublicIP: the node's node-public-ip annotation, read once at start */
  storedPublicIp(): Promise<string | undefined>;
  nodeName(): Promise<string>;
}

export function kubeRegistry(s: KubeSettings, api: KubeApi, log: Logger, now: () => Date = () => new Date(), listPage?: number): KubeRegistry {
  const { names } = s;
  let known: KnownLeases = new Map();
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
    const cidr = node && ipv4PodCidr(node);
    if (!node || !cidr?.ok || cidr.subnet.replace('/', '-') !== name) return { ok: false, modRevision: 0, leaseId: '0' };
    const d = decodeLeaseValue(value);
    if (!d.ok) throw new TulleError('ERR_TULLE_INTERNAL', `lease value for node ${me}: ${d.problem}`);
    const want = ownAnnotations(node, d.attrs, names);
    if (want.badOverwrite !== undefined) log.warn({ annotation: names.publicIpOverwrite, value: want.badOverwrite }, 'public-ip-overwrite is not an IPv4 address; not used');
    else if (want.stored.PublicIP !== d.attrs.PublicIP && names.publicIp in want.patch) {
      log.info({ publicIp: want.stored.PublicIP, annotation: names.publicIpOverwrite }, 'overriding public ip from the node annotation');
    }
    let rv = node.metadata?.resourceVersion;
    if (Object.keys(want.patch).length) {
      const after = await api.patchNodeStatus(me, annotationPatchBody(want.patch));
      rv = after.metadata?.resourceVersion;
      log.info({ node: me, annotations: want.patch }, 'annotated our node');
    }
    return { ok: true, modRevision: rvNumber(rv), leaseId: '0', value: encodeLeaseValue(want.stored) };
  };

  return {
    storeName: 'the Kubernetes API',
    nodeName,
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
        const e = nodeEntry(node, names);
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
      const cidr = ipv4PodCidr(node);
      if (!cidr) return { waiting: `node "${me}" has no spec.podCIDR yet (kube-controller-manager --allocate-node-cidrs assigns it)` };
      if (!cidr.ok) return { waiting: `node "${me}": ${cidr.problem}` };
      return { subnet: cidr.subnet };
    },
    createSubnet: (name, value) => claim(name, value),
    updateSubnet: (name, value) => claim(name, value),
    async deleteSubnet() {
      return false;
    },
    watchSubnets(fromRevision, sink) {
      // the manager asks for etcd's "from this revision on"; Kubernetes watches "after this one"
      const from = fromRevision - 1 === rvNumber(listedAt) ? listedAt : String(Math.max(0, fromRevision - 1));
      const w = startNodeWatch({ api, names, log, resourceVersion: from, known, sink, onBad: reportBad });
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
      const v = node?.metadata?.annotations?.[names.nodePublicIp];
      return v || undefined;
    },
    async close() {
      closed = true;
      await Promise.all([...watches].map((w) => w.cancel()));
      watches.clear();
    },
  };
}
