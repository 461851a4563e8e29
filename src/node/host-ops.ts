/** The host operations a node performs, as one record so tests can swap in fakes. */
import { writeCniConf } from '../host/cni-conf.js';
import { configureTun, removeRoutes } from '../host/link.js';
import { createHostRules } from '../host/rules/host-rules.js';
import { loadState, saveState } from '../host/state-dir.js';
import { readPreviousSubnet, writeSubnetFile } from '../host/subnet-file.js';
import { replaceTunAddress } from '../host/tun-address.js';

export interface HostOps {
  configureTun: typeof configureTun;
  replaceTunAddress: typeof replaceTunAddress;
  removeRoutes: typeof removeRoutes;
  /** flanneld's masquerade and forward rules (iptables or nftables), kept in place */
  hostRules: typeof createHostRules;
  writeSubnetFile: typeof writeSubnetFile;
  /** the CNI conflist from the lease (--write-cni-conf-when-ready) */
  writeCniConf: typeof writeCniConf;
  readPreviousSubnet: typeof readPreviousSubnet;
  loadState: typeof loadState;
  saveState: typeof saveState;
}

export const realHost: HostOps = {
  configureTun, replaceTunAddress, removeRoutes, hostRules: createHostRules, writeSubnetFile, writeCniConf, readPreviousSubnet, loadState, saveState,
};
