/** What a tulle node is given (NodeConfig, NodeDeps) and what it shows (NodeStatus, NodeHandle). */
import type { Logger } from 'pino';
import type client from 'prom-client';
import type { Backend } from '../backend/backend.js';
import type { BackendContext } from '../backend/select-backend.js';
import type { NetworkConfig } from '../config/network-config.js';
import type { LeaseStatus } from '../lease/lease-manager.js';
import type { Registry } from '../registry/registry.js';
import type { StoreHealth } from './store-health.js';
import type { Clock } from '../util/clock.js';
import type { HostRulesStatus } from '../host/rules/host-rules.js';
import type { HostOps } from './host-ops.js';
import type { StatusSnapshot } from '../control/status-snapshot.js';
import type { UapiDevice } from '../wireguard/uapi.js';

export interface NodeConfig {
  tunName: string;
  /** this node's IPv4 underlay address (flanneld's PublicIP); unused in an IPv6-only network */
  publicIp: string;
  /** this node's IPv6 underlay address (flanneld's --public-ipv6 or the interface's), if any */
  publicIpv6?: string | undefined;
  underlayMtu: number;
  ipMasq: boolean;
  /** flanneld's --iptables-forward-rules (default true) */
  forwardRules?: boolean;
  /** flanneld's --ip-masq-fully-random-disable */
  ipMasqFullyRandomDisable?: boolean;
  /** flanneld's --iptables-resync, in ms (default 5 s) */
  rulesResyncMs?: number;
  subnetFile: string;
  /** --write-cni-conf-when-ready: the CNI conflist to write from the lease before going ready */
  cniConfPath?: string | undefined;
  /** --cni-conf-overwrite: replace a file there that tulle did not write */
  cniConfOverwrite?: boolean;
  stateDir: string;
  leaseTtlMs: number;
  renewMarginMs: number;
  /** for messages: where the config lives */
  configKey: string;
  /** for messages: what holds it and how to put it there (default etcd, "write it with etcdctl put") */
  configStore?: { name: string; hint: string };
}

export interface NodeDeps {
  registry: Registry;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  host?: HostOps;
  backendFor?: (c: NetworkConfig['backend'], ctx: BackendContext) => Backend | Promise<Backend>;
  /** Prometheus registry for the data plane's (and the backend's) counters; none: no metrics */
  metrics?: client.Registry;
}

/** `subnet-moved`: forwarding, but pods made from the old subnet.env must be recreated (not ready) */
export type NodeState = 'waiting-for-config' | 'acquiring' | 'starting' | 'running' | 'subnet-moved' | 'stopping' | 'stopped' | 'failed';

/** Our subnet changed while running: what /healthz says until tulle is restarted. */
export interface SubnetMove {
  from: string;
  to: string;
  at: number;
  action: string;
}

export interface NodeStatus {
  state: NodeState;
  ready: boolean;
  error: string | undefined;
  network: string | undefined;
  ipv6Network?: string | undefined;
  backend: string | undefined;
  mtu: number | undefined;
  publicIp: string;
  publicIpv6?: string | undefined;
  /**
   * The lease store's state, under the store's own name: `etcd` ({etcd: 'connected', since,
   * lastError}) in etcd mode, `kubeApi` ({kubeApi: 'connected', since, lastError}) with
   * --kube-subnet-mgr. Exactly one of the two is present.
   */
  etcd?: StoreHealth<'etcd'>;
  kubeApi?: StoreHealth<'kubeApi'>;
  lease: LeaseStatus['lease'];
  leases: number;
  revision: number;
  reacquiring: boolean;
  /** subnet → endpoint, as programmed into the data plane */
  routes: Record<string, string>;
  peers: number;
  timings: Record<string, number>;
  /** what the backend adds (wireguard: public key, handshake counters, sessions per peer) */
  backendStatus?: Record<string, unknown> | undefined;
  /** flanneld's masquerade / forward rules: which, in iptables or nftables, in place or not */
  hostRules?: HostRulesStatus | undefined;
  /** set when our subnet moved while running (state `subnet-moved`) */
  subnetMoved?: SubnetMove | undefined;
}

export interface NodeHandle {
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
  status(): NodeStatus;
  /** the node, its peers and the data plane's drops: what `tulle status` shows */
  snapshot(): StatusSnapshot;
  /** encrypted mode, once the data plane runs: the device as `wg show` sees it (keys included) */
  uapiDevice(): UapiDevice | undefined;
  stop(): Promise<void>;
}
