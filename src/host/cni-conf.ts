/**
 * The CNI conflist a node writes from its lease (--write-cni-conf-when-ready), so a cluster
 * needs no flannel binary. It is the configuration flannel's own CNI plugin (flannel-io/
 * cni-plugin, flannel_linux.go) would hand to the `bridge` plugin for kube-flannel's conflist
 * (name cbr0, delegate {hairpinMode, isDefaultGateway}), written out in full:
 *
 *   { "name": "cbr0", "cniVersion": "0.3.1", "generatedBy": "tulle",
 *     "plugins": [
 *       { "type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true,
 *         "hairpinMode": true, "ipMasq": <not --ip-masq>, "mtu": <the TUN's MTU>,
 *         "ipam": { "type": "host-local", "ranges": [[{ "subnet": <lease> }], [{ "subnet": <IPv6 lease> }]],
 *                   "routes": [{ "dst": <Network> }, { "dst": <IPv6Network> }] } },
 *
 * One range and one route per family the network has (flannel's getDelegateIPAM: IPv4 first).
 *       { "type": "portmap", "capabilities": { "portMappings": true } } ] }
 *
 * Same network name and bridge as kube-flannel's, so host-local's allocations
 * (/var/lib/cni/networks/cbr0) and the bridge of pods made under flannel carry over. ipMasq is
 * the opposite of the node's --ip-masq, as flannel's plugin decides it: when the host
 * masquerades, the bridge plugin must not add a second rule. `generatedBy` marks the file as
 * tulle's (container runtimes ignore unknown top-level keys): a file without it is the user's
 * and is not replaced unless --cni-conf-overwrite says so.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TulleError } from '../util/errors.js';

export const CNI_NETWORK_NAME = 'cbr0';
export const CNI_BRIDGE_NAME = 'cni0';
export const CNI_VERSION = '0.3.1';
export const CNI_MARKER = { generatedBy: 'tulle' } as const;

export interface CniLease {
  /** the flannel Network, e.g. 10.244.0.0/16 (absent in an IPv6-only network) */
  network?: string;
  /** this node's lease, e.g. 10.244.3.0/24 (with network) */
  subnet?: string;
  /** the IPv6Network and this node's IPv6 subnet, in a network with IPv6 */
  ipv6Network?: string;
  ipv6Subnet?: string;
  /** the TUN's MTU */
  mtu: number;
  /** the node's --ip-masq (the host masquerades) */
  ipMasq: boolean;
}

export interface CniConflist {
  name: string;
  cniVersion: string;
  generatedBy: string;
  plugins: Array<Record<string, unknown>>;
}

export function renderCniConflist(l: CniLease): CniConflist {
  const families = [
    l.network && l.subnet ? { network: l.network, subnet: l.subnet } : undefined,
    l.ipv6Network && l.ipv6Subnet ? { network: l.ipv6Network, subnet: l.ipv6Subnet } : undefined,
  ].filter((f) => f !== undefined);
  return {
    name: CNI_NETWORK_NAME,
    cniVersion: CNI_VERSION,
    ...CNI_MARKER,
    plugins: [
      {
        type: 'bridge', bridge: CNI_BRIDGE_NAME, isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: !l.ipMasq, mtu: l.mtu,
        ipam: { type: 'host-local', ranges: families.map((f) => [{ subnet: f.subnet }]), routes: families.map((f) => ({ dst: f.network })) },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function formatCniConflist(l: CniLease): string {
  return `${JSON.stringify(renderCniConflist(l), null, 2)}\n`;
}

/** Whether a file's text is a conflist tulle wrote (the marker), so it may be replaced. */
export function isTulleConflist(text: string): boolean {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && (v as Record<string, unknown>).generatedBy === CNI_MARKER.generatedBy;
  } catch {
    return false;
  }
}

export type CniWriteResult = 'written' | 'unchanged';

/**
 * Writes the conflist atomically (a temp file in the same directory, then rename: the runtime
 * never reads half a file). A file already there that tulle did not write is left alone and
 * reported (ERR_TULLE_CNI_CONF_FOREIGN) unless `overwrite`; identical content is not rewritten.
 */
export async function writeCniConf(file: string, l: CniLease, o: { overwrite?: boolean } = {}): Promise<CniWriteResult> {
  const text = formatCniConflist(l);
  let existing: string | undefined;
  try {
    existing = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TulleError('ERR_TULLE_CNI_CONF', `cannot read ${file} (--write-cni-conf-when-ready): ${(e as Error).message}`, { cause: e });
    }
  }
  if (existing === text) return 'unchanged';
  if (existing !== undefined && !o.overwrite && !isTulleConflist(existing)) {
    throw new TulleError(
      'ERR_TULLE_CNI_CONF_FOREIGN',
      `${file} exists and was not written by tulle (no "generatedBy": "tulle"): not replacing it; remove it, point --write-cni-conf-when-ready elsewhere, or pass --cni-conf-overwrite`,
    );
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new TulleError('ERR_TULLE_CNI_CONF', `cannot write ${file} (--write-cni-conf-when-ready): ${(e as Error).message}`, { cause: e });
  }
  return 'written';
}
