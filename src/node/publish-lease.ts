/**
 * What a node writes from its lease for others on the host: flannel's subnet.env (for flannel's
 * CNI plugin), tulle's own CNI conflist if asked (for the standard plugins), and the local state
 * file that the next start reads its previous subnet from.
 */
import type { Logger } from 'pino';
import type { NetworkConfig } from '../config/network-config.js';
import type { OwnLease } from '../lease/lease-manager.js';
import { ipv4SubnetOf } from '../lease/lease.js';
import type { HostOps } from './host-ops.js';
import type { NodeConfig } from './node-types.js';

export async function publishLease(host: HostOps, cfg: NodeConfig, network: NetworkConfig, mtu: number, l: OwnLease, log: Logger): Promise<void> {
  const env = { network: network.ipv4?.network, subnet: ipv4SubnetOf(l), ipv6Network: network.ipv6?.network, ipv6Subnet: l.ipv6Subnet, mtu, ipMasq: cfg.ipMasq };
  await host.writeSubnetFile(cfg.subnetFile, env);
  if (cfg.cniConfPath) {
    const r = await host.writeCniConf(cfg.cniConfPath, { ...env }, { overwrite: cfg.cniConfOverwrite ?? false });
    log.info({ file: cfg.cniConfPath, subnet: l.subnet, ipv6Subnet: l.ipv6Subnet, mtu, result: r }, r === 'written' ? 'CNI config written' : 'CNI config already current');
  }
  const state = { network: network.ipv4?.network ?? '', subnet: l.subnet, publicIp: cfg.publicIp, ipv6Network: network.ipv6?.network, ipv6Subnet: l.ipv6Subnet };
  await host.saveState(cfg.stateDir, state).catch((e: Error) => log.warn({ err: e.message, stateDir: cfg.stateDir }, 'cannot save state'));
}
