/**
 * Pods as a flannel node gets them: flannel's CNI plugin (github.com/flannel-io/cni-plugin,
 * flannel_linux.go) reads subnet.env and delegates to the standard `bridge` plugin with
 * `host-local` IPAM. Here the test plays the flannel plugin's part (delegateConf: the same
 * mapping) and runs Debian's real plugin binaries (/usr/lib/cni) inside the node's namespace,
 * for a pod namespace of its own — ADD, and DEL with the very config ADD used (as the flannel
 * plugin replays its saved config).
 */
import { readFile } from 'node:fs/promises';
import { run } from '../../src/host/exec.js';
import { formatPrefix, maskPrefix, parsePrefix } from '../../src/util/ip.js';
import type { Bed, BedNode } from '../bed/bed.js';

export const CNI_PATH = '/usr/lib/cni';

export interface FlannelSubnetEnv {
  networks: string[];
  /** FLANNEL_SUBNET through Go's net.ParseCIDR: the subnet's network address ('' in an IPv6-only network) */
  subnet: string;
  /** FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET (network address), when the network has IPv6 */
  ipv6Networks: string[];
  ipv6Subnet: string | undefined;
  mtu: number;
  ipMasq: boolean;
}

/** Reads subnet.env as the flannel plugin's loadFlannelSubnetEnv does (IPv4 and IPv6 keys). */
export function parseSubnetEnv(text: string): FlannelSubnetEnv {
  const kv = new Map(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const need = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) throw new Error(`subnet.env is missing ${k}`);
    return v;
  };
  const masked = (cidr: string) => formatPrefix(maskPrefix(parsePrefix(cidr)));
  const v6 = kv.has('FLANNEL_IPV6_SUBNET');
  const v4 = kv.has('FLANNEL_SUBNET') || !v6;
  return {
    networks: v4 ? [...new Set(need('FLANNEL_NETWORK').split(',').map(masked))] : [],
    subnet: v4 ? masked(need('FLANNEL_SUBNET')) : '',
    ipv6Networks: v6 ? [...new Set(need('FLANNEL_IPV6_NETWORK').split(',').map(masked))] : [],
    ipv6Subnet: v6 ? masked(need('FLANNEL_IPV6_SUBNET')) : undefined,
    mtu: Number(need('FLANNEL_MTU')),
    ipMasq: need('FLANNEL_IPMASQ') === 'true',
  };
}

/**
 * The config flannel's plugin hands to the bridge plugin, for the usual flannel conflist
 * (`{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}`, name cbr0):
 * type bridge, ipMasq = not FLANNEL_IPMASQ, mtu = FLANNEL_MTU, isGateway true, and host-local
 * IPAM with the IPv4 subnet and the IPv6 subnet as its ranges (each one that subnet.env has) and a
 * route to each FLANNEL_NETWORK, then each FLANNEL_IPV6_NETWORK (getDelegateIPAM). `ipam` is the
 * conflist's own IPAM section (here: a dataDir, so the test's allocations stay in its temp dir).
 */
export function delegateConf(env: FlannelSubnetEnv, ipam: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hairpinMode: true,
    isDefaultGateway: true,
    name: 'cbr0',
    type: 'bridge',
    ipMasq: !env.ipMasq,
    mtu: env.mtu,
    isGateway: true,
    cniVersion: '0.3.1',
    ipam: {
      ...ipam, type: 'host-local',
      ranges: [...(env.subnet ? [[{ subnet: env.subnet }]] : []), ...(env.ipv6Subnet ? [[{ subnet: env.ipv6Subnet }]] : [])],
      routes: [...env.networks, ...env.ipv6Networks].map((dst) => ({ dst })),
    },
  };
}

export interface Pod {
  name: string;
  ns: string;
  node: BedNode;
  ip: string;
  /** its IPv6 address, when the node's subnet.env has an IPv6 subnet */
  ip6?: string | undefined;
  containerId: string;
  /** the host side of the pod's veth, in the node's namespace */
  hostVeth: string;
  conf: Record<string, unknown>;
  /** CNI DEL with the config ADD used */
  del(): Promise<void>;
}

async function cni(bed: Bed, node: BedNode, command: 'ADD' | 'DEL', containerId: string, podNs: string, conf: Record<string, unknown>) {
  const env = [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${containerId}`, `CNI_NETNS=/run/netns/${podNs}`, 'CNI_IFNAME=eth0', `CNI_PATH=${CNI_PATH}`];
  return run('ip', ['netns', 'exec', node.ns, 'env', ...env, `${CNI_PATH}/bridge`], { input: JSON.stringify(conf), timeoutMs: 30_000 });
}

/** Makes a pod namespace and runs CNI ADD for it in the node's namespace, from the node's subnet.env. */
export async function addPod(bed: Bed, node: BedNode, name: string, subnetFile: string, ipamDir: string): Promise<Pod> {
  const ns = await bed.addNamespace(name);
  const containerId = `${bed.id}-${name}`;
  const conf = delegateConf(parseSubnetEnv(await readFile(subnetFile, 'utf8')), { dataDir: ipamDir });
  const out = await cni(bed, node, 'ADD', containerId, ns, conf);
  const result = JSON.parse(out.stdout) as { ips?: Array<{ address: string }>; interfaces?: Array<{ name: string; sandbox?: string }> };
  const addrs = (result.ips ?? []).map((x) => x.address.split('/')[0]!);
  const ip = addrs[0];
  const ip6 = addrs.find((a) => a.includes(':'));
  const hostVeth = result.interfaces?.find((i) => !i.sandbox && i.name !== 'cni0')?.name;
  if (!ip || !hostVeth) throw new Error(`CNI ADD for ${name} returned no address or veth: ${out.stdout} ${out.stderr}`);
  return {
    name, ns, node, ip, ip6, containerId, hostVeth, conf,
    async del() {
      await cni(bed, node, 'DEL', containerId, ns, conf);
    },
  };
}

/**
 * Sends `bytes` random bytes over TCP from one pod to another and returns both SHA-256 sums
 * (with the count received). Both ends are node scripts in the pods' namespaces, bounded in time.
 * `via`: the client connects there instead (a host port that portmap forwards to the receiver).
 */
export async function tcpTransfer(
  bed: Bed, from: Pod, to: Pod, bytes: number, port = 5001, via?: { address: string; port: number }, toIp = to.ip,
): Promise<{ sent: string; received: string }> {
  const server = `
    const net = require('node:net'), h = require('node:crypto').createHash('sha256'); let n = 0;
    setTimeout(() => process.exit(3), 60000);
    const s = net.createServer((c) => {
      c.on('data', (d) => { h.update(d); n += d.length; });
      c.on('end', () => { process.stdout.write('got ' + h.digest('hex') + ' ' + n + '\\n'); c.end(); s.close(); process.exit(0); });
    });
    s.listen(${port}, '${toIp}', () => process.stdout.write('listening\\n'));`;
  const client = `
    const net = require('node:net'), crypto = require('node:crypto');
    const data = crypto.randomBytes(${bytes});
    setTimeout(() => process.exit(3), 60000);
    const c = net.connect(${via?.port ?? port}, '${via?.address ?? toIp}', () => c.end(data));
    c.on('close', () => { process.stdout.write(crypto.createHash('sha256').update(data).digest('hex') + ' ' + data.length + '\\n'); process.exit(0); });
    c.on('error', (e) => { console.error(e.message); process.exit(1); });`;
  const srv = bed.spawn(to.ns, process.execPath, ['-e', server]);
  let out = '';
  srv.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => srv.once('exit', (code) => r(code)));
  const deadline = Date.now() + 20_000;
  while (!out.includes('listening')) {
    if (Date.now() > deadline || srv.exitCode !== null) throw new Error(`receiver in ${to.name} did not listen: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const sent = (await bed.exec(from.ns, process.execPath, ['-e', client], 70_000)).stdout.trim();
  await exited;
  const received = /got (\S+ \d+)/.exec(out)?.[1] ?? `nothing (${out.trim()})`;
  return { sent, received };
}
