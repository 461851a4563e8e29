/**
 * Pods made from a CNI conflist the way a container runtime's libcni runs one (containernetworking/
 * cni, libcni/api.go): ADD runs each plugin in order, its config being the plugin's entry with
 * the list's `name` and `cniVersion` injected, the previous plugin's result as `prevResult`, and
 * `runtimeConfig` for the capabilities it declares (portMappings); DEL runs them in reverse
 * with the same configs (no prevResult before CNI 0.4.0). Debian's real plugin binaries
 * (/usr/lib/cni) run inside the node's namespace, for a pod namespace of its own.
 *
 * One liberty: host-local gets a `dataDir` in the test's temp dir, so the allocations stay out
 * of the machine's /var/lib/cni (shared by every test on it); nothing else is changed.
 */
import { run } from '../../src/host/exec.js';
import type { Bed, BedNode } from '../bed/bed.js';
import { CNI_PATH, type Pod } from './pods.js';

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

interface Conflist {
  name: string;
  cniVersion: string;
  plugins: Array<Record<string, unknown> & { type: string; capabilities?: Record<string, boolean> }>;
}

async function invoke(node: BedNode, command: 'ADD' | 'DEL', containerId: string, podNs: string, conf: Record<string, unknown>): Promise<string> {
  const env = [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${containerId}`, `CNI_NETNS=/run/netns/${podNs}`, 'CNI_IFNAME=eth0', `CNI_PATH=${CNI_PATH}`];
  const type = String(conf.type);
  try {
    return (await run('ip', ['netns', 'exec', node.ns, 'env', ...env, `${CNI_PATH}/${type}`], { input: JSON.stringify(conf), timeoutMs: 30_000 })).stdout;
  } catch (e) {
    throw new Error(`CNI ${command} ${type} for ${containerId} failed: ${(e as Error).message} ${(e as { stdout?: string }).stdout ?? ''}`, { cause: e });
  }
}

/** The config libcni hands one plugin of the list. */
export function pluginConf(list: Conflist, plugin: Conflist['plugins'][number], o: { ipamDir: string; portMappings?: PortMapping[] }): Record<string, unknown> {
  const { capabilities, ...rest } = plugin;
  const conf: Record<string, unknown> = { ...rest, name: list.name, cniVersion: list.cniVersion };
  if (capabilities?.portMappings && o.portMappings?.length) conf.runtimeConfig = { portMappings: o.portMappings };
  if (conf.ipam && (conf.ipam as { type?: string }).type === 'host-local') conf.ipam = { ...(conf.ipam as object), dataDir: o.ipamDir };
  return conf;
}

/** Makes a pod namespace on `node` and runs the conflist's ADD for it. */
export async function addPodFromConflist(
  bed: Bed, node: BedNode, name: string, conflistText: string, o: { ipamDir: string; portMappings?: PortMapping[] },
): Promise<Pod> {
  const list = JSON.parse(conflistText) as Conflist;
  const ns = await bed.addNamespace(name);
  const containerId = `${bed.id}-${name}`;
  const confs = list.plugins.map((p) => pluginConf(list, p, o));
  let prev: unknown;
  for (const conf of confs) {
    const out = await invoke(node, 'ADD', containerId, ns, prev === undefined ? conf : { ...conf, prevResult: prev });
    prev = JSON.parse(out);
  }
  const result = prev as { ips?: Array<{ address: string }>; interfaces?: Array<{ name: string; sandbox?: string }> };
  const ip = result.ips?.[0]?.address.split('/')[0];
  const hostVeth = result.interfaces?.find((i) => !i.sandbox && i.name !== 'cni0')?.name;
  if (!ip || !hostVeth) throw new Error(`CNI ADD for ${name} returned no address or veth: ${JSON.stringify(prev)}`);
  return {
    name, ns, node, ip, containerId, hostVeth, conf: list as unknown as Record<string, unknown>,
    async del() {
      for (const conf of [...confs].reverse()) await invoke(node, 'DEL', containerId, ns, conf);
    },
  };
}
