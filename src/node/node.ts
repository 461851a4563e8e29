/**
 * A tulle node: the library face that `tulle run` and the tests both drive.
 *
 *   config (etcd) → backend → lease (acquire) → data plane + TUN → peers → host rules → subnet.env
 *   (and the CNI conflist, if asked) → ready; then the lease manager watches and renews, and the
 *   peer directory turns every new lease table into data-plane commands.
 *
 * createNode() returns at once; `ready` resolves when the node forwards, `done` rejects on a
 * fatal error (bad config, no free subnet). stop() removes routes, TUN and host rules and
 * keeps the lease in etcd for the next start (as flannel does).
 */
import type { Logger } from 'pino';
import client from 'prom-client';
import { loadAddon } from '../dataplane/native.js';
import { registerDataPlaneMetrics } from '../metrics/dataplane-metrics.js';
import { registerPeerMetrics } from '../metrics/peer-metrics.js';
import type { Backend } from '../backend/backend.js';
import { selectBackend, type BackendContext } from '../backend/select-backend.js';
import { rangesOf, readNetworkConfig, type NetworkConfig } from '../config/network-config.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import { LeaseManager, type LeaseStatus, type OwnLease } from '../lease/lease-manager.js';
import type { LeaseTable } from '../lease/lease-diff.js';
import { PeerDirectory } from '../lease/peer-directory.js';
import { ipv4SubnetOf, NO_PUBLIC_IP, subnetsOf, type LeaseSubnets } from '../lease/lease.js';
import type { Stack } from '../backend/backend.js';
import type { Registry } from '../registry/registry.js';
import { storeHealth, type StoreHealth } from './store-health.js';
import { realClock, sleep, type Clock } from '../util/clock.js';
import { ConfigError, TulleError } from '../util/errors.js';
import type { HostRules, HostRulesStatus } from '../host/rules/host-rules.js';
import { realHost, type HostOps } from './host-ops.js';
import { addTraffic, dropsOf, plain, type PeerView, type StatusSnapshot } from '../control/status-snapshot.js';
import { ACTIVITY_SAMPLE_MS, countersTotal, PeerActivity } from '../control/peer-activity.js';
import { tulleVersion } from '../version.js';
import { formatEndpoint, type UapiDevice } from '../wireguard/uapi.js';

/** how often a missing or invalid network config is read again (flanneld: every second) */
const CONFIG_POLL_MS = 1000;

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

export function createNode(cfg: NodeConfig, deps: NodeDeps): NodeHandle {
  const clock = deps.clock ?? realClock;
  const host = deps.host ?? realHost;
  const log = deps.log.child({ component: 'node' }); // children of the root, never of each other
  const t0 = clock.now();
  if (deps.metrics) registerDataPlaneMetrics(deps.metrics, loadAddon().counterNames(), () => dp);
  if (deps.metrics) {
    new client.Gauge({
      name: 'tulle_subnet_moved', registers: [deps.metrics],
      help: "1 while this node's subnet has moved since start: pods on the old subnet must be recreated (see /healthz subnetMoved)",
      collect() {
        this.set(moved ? 1 : 0);
      },
    });
    new client.Counter({
      name: 'tulle_subnet_moves_total', registers: [deps.metrics], help: "times this node's subnet moved while running",
      collect() {
        this.reset();
        this.inc(moves);
      },
    });
  }
  const timings: Record<string, number> = {};
  let state: NodeState = 'waiting-for-config';
  let error: string | undefined;
  let network: NetworkConfig | undefined;
  let backend: Backend | undefined;
  let dp: DataPlane | undefined;
  let lm: LeaseManager | undefined;
  let dir: PeerDirectory | undefined;
  let mtu: number | undefined;
  let tunAddresses: string[] = [];
  let rules: HostRules | undefined;
  let stopping = false;
  const halt = new AbortController(); // stop() ends the wait for the config at once
  let lastSubnet: string | undefined;
  let resolveReady!: () => void;
  let rejectReady!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => ((resolveReady = res), (rejectReady = rej)));
  ready.catch(() => undefined);

  const mark = (what: string) => (timings[what] = clock.now() - t0);

  // before the data plane exists the table is only kept; the first call after compares it all
  const applyTable = (table: LeaseTable, changed?: ReadonlySet<string>) => {
    if (!dp || !dir || !lm) return;
    const u = dir.update(table, lm.lease?.subnet, changed);
    for (const s of u.skipped) log.warn({ subnet: s.lease.subnet, publicIp: s.lease.attrs.PublicIP, reason: s.reason }, 'skipping lease');
    if (u.commands.length) {
      dp.apply(u.commands);
      log.info({ routes: dir.routeCount, peers: dir.peerCount, changes: u.commands.length }, 'peers updated');
    }
  };

  // subnet.env for flannel's CNI plugin, and tulle's own conflist for the standard plugins;
  // both from whatever registry supplied the lease
  const publishLease = async (l: OwnLease) => {
    const n = network!;
    await host.writeSubnetFile(cfg.subnetFile, {
      network: n.ipv4?.network, subnet: ipv4SubnetOf(l), ipv6Network: n.ipv6?.network, ipv6Subnet: l.ipv6Subnet, mtu: mtu!, ipMasq: cfg.ipMasq,
    });
    if (cfg.cniConfPath) {
      const cni = { network: n.ipv4?.network, subnet: ipv4SubnetOf(l), ipv6Network: n.ipv6?.network, ipv6Subnet: l.ipv6Subnet, mtu: mtu!, ipMasq: cfg.ipMasq };
      const r = await host.writeCniConf(cfg.cniConfPath, cni, { overwrite: cfg.cniConfOverwrite ?? false });
      log.info({ file: cfg.cniConfPath, subnet: l.subnet, ipv6Subnet: l.ipv6Subnet, mtu, result: r }, r === 'written' ? 'CNI config written' : 'CNI config already current');
    }
    const state = { network: n.ipv4?.network ?? '', subnet: l.subnet, publicIp: cfg.publicIp, ipv6Network: n.ipv6?.network, ipv6Subnet: l.ipv6Subnet };
    await host.saveState(cfg.stateDir, state).catch((e: Error) =>
      log.warn({ err: e.message, stateDir: cfg.stateDir }, 'cannot save state'),
    );
  };

  // flanneld exits when its lease is revoked; tulle takes a new subnet and keeps forwarding,
  // but pods on the bridge still hold addresses of the old one: say so until restarted
  let moved: SubnetMove | undefined;
  let moves = 0;
  const onOwnLease = (l: OwnLease) => {
    const from = moved?.from ?? lastSubnet;
    moved = {
      from: from ?? '(unknown)', to: l.subnet, at: clock.now(),
      action: `pods with addresses in ${from} (made from the old subnet.env) cannot be reached any more: recreate them so they get addresses in ${l.subnet}, then restart tulle to clear this state`,
    };
    moves++;
    lastSubnet = l.subnet;
    if (state === 'running') state = 'subnet-moved';
    log.error({ from, to: l.subnet, action: moved.action }, `our subnet moved from ${from} to ${l.subnet} while running: pods on ${from} must be recreated (not ready until restart)`);
    void (async () => {
      log.warn({ subnet: l.subnet }, 'our subnet changed; moving the TUN address and subnet.env');
      const addrs = tunAddressesOf(l);
      for (const [i, a] of addrs.entries()) await host.replaceTunAddress(dp?.tunName ?? cfg.tunName, tunAddresses[i], a);
      tunAddresses = addrs;
      await rules?.setSubnet(ipv4SubnetOf(l), l.ipv6Subnet);
      await publishLease(l);
      applyTable(lm!.leases);
    })().catch((e: Error) => log.error({ err: e.message }, 'cannot move to the new subnet'));
  };

  // before the lease manager exists, the config fetch says how etcd is doing
  let configEtcd: { etcd: 'connecting' | 'connected' | 'disconnected'; since: number; lastError: string | undefined } = {
    etcd: 'connecting', since: clock.now(), lastError: undefined,
  };

  // a missing or invalid config is waited out, as flanneld does (it retries every second):
  // not ready, the reason in /healthz, one log line per change of the reason
  const store = cfg.configStore ?? { name: 'etcd', hint: 'write it with etcdctl put' };
  const loadConfig = async (): Promise<NetworkConfig> => {
    let said: string | undefined;
    const say = (why: string, level: 'warn' | 'error', fields: object = {}) => {
      error = why;
      if (said !== why) log[level](fields, `${why}; waiting for it to be fixed (not ready)`);
      said = why;
    };
    for (let failures = 0; ; ) {
      if (stopping) throw new TulleError('ERR_TULLE_STOPPED', 'stopped while waiting for the network config');
      let text: string | undefined;
      try {
        text = await deps.registry.getNetworkConfig();
        failures = 0;
        if (configEtcd.etcd !== 'connected') configEtcd = { etcd: 'connected', since: clock.now(), lastError: undefined };
        if (text === undefined) say(`no network config at ${cfg.configKey} (${store.hint})`, 'warn');
      } catch (e) {
        failures++;
        if (configEtcd.etcd !== 'disconnected') configEtcd = { etcd: 'disconnected', since: clock.now(), lastError: (e as Error).message };
        say(`cannot reach ${store.name} for the network config: ${(e as Error).message}`, 'warn');
      }
      if (text !== undefined) {
        try {
          const r = readNetworkConfig(text);
          for (const n of r.notices) log.warn({ key: cfg.configKey }, `network config: ${n}`);
          if (said !== undefined) log.info({ key: cfg.configKey }, 'network config is usable now');
          return r.config;
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          say(`invalid network config at ${cfg.configKey}: ${e.field}: ${e.message.replace(/^config: [^:]+: /, '')}`, 'error', { code: e.code, field: e.field });
        }
      }
      await sleep(clock, failures ? Math.min(5000, 250 * 2 ** Math.min(failures - 1, 5)) : CONFIG_POLL_MS, halt.signal);
    }
  };

  const start = async () => {
    network = await loadConfig();
    error = undefined;
    mark('config');
    const stack: Stack = { ipv4: network.ipv4 !== undefined, ipv6: network.ipv6 !== undefined, publicIpv6: cfg.publicIpv6 };
    if (network.ipv4 && cfg.publicIp === NO_PUBLIC_IP) {
      throw new ConfigError('EnableIPv4', 'is true (the default) but this node has no IPv4 underlay address: give --public-ip or an --iface with an IPv4 address');
    }
    if (!network.ipv4 && cfg.publicIpv6 === undefined) {
      throw new ConfigError('EnableIPv4', 'is false (an IPv6-only network) but this node has no IPv6 underlay address: give --public-ipv6 or an --iface with an IPv6 address');
    }
    backend = await (deps.backendFor ?? selectBackend)(network.backend, { stateDir: cfg.stateDir, log: deps.log, stack });
    if (deps.metrics) backend.registerMetrics?.(deps.metrics);
    // wireguard's Backend.MTU is the underlay MTU, as in flanneld (the TUN gets it minus the overhead)
    mtu = backend.mtuFor(network.backend.type === 'wireguard' && network.backend.mtu !== undefined ? network.backend.mtu : cfg.underlayMtu);
    const prevState = await host.loadState(cfg.stateDir);
    const sameNetworks = prevState && prevState.network === (network.ipv4?.network ?? '') && prevState.ipv6Network === network.ipv6?.network;
    const previous: LeaseSubnets | undefined = sameNetworks ? { subnet: prevState.subnet, ipv6Subnet: prevState.ipv6Subnet } : await host.readPreviousSubnet(cfg.subnetFile);
    state = 'acquiring';
    lm = new LeaseManager({
      registry: deps.registry, config: network, clock, log: deps.log.child({ component: 'lease' }), random: deps.random ?? Math.random,
      // as flanneld: no IPv4 underlay address in an IPv6-only network (PublicIP 0.0.0.0); PublicIPv6 when
      // this node has one and either IPv6 is enabled or the backend is wireguard (flanneld's ExtV6Addr)
      attrs: {
        PublicIP: network.ipv4 ? cfg.publicIp : NO_PUBLIC_IP,
        PublicIPv6: network.ipv6 || backend.type === 'wireguard' ? (cfg.publicIpv6 ?? null) : null,
        BackendType: backend.type, ...backend.leaseData(),
      },
      previous, ttlMs: cfg.leaseTtlMs, renewMarginMs: cfg.renewMarginMs,
      onTable: applyTable, onOwnLease,
    });
    const own = await lm.acquire();
    lastSubnet = own.subnet;
    mark('lease');
    if (stopping) return;
    state = 'starting';
    dp = backend.startDataPlane({ tunName: cfg.tunName, mtu });
    tunAddresses = tunAddressesOf(own);
    await host.configureTun({ name: dp.tunName, addresses: tunAddresses, mtu, routes: rangesOf(network).map((r) => r.network) });
    dir = new PeerDirectory(backend);
    applyTable(lm.leases);
    // every lease (the routes) is listed while the host rules go in; the watch starts from there
    const listed = lm.start();
    rules = host.hostRules(
      {
        nftables: network.enableNFTables, network: network.ipv4?.network, subnet: ipv4SubnetOf(own), ipv6Network: network.ipv6?.network, ipv6Subnet: own.ipv6Subnet, ipMasq: cfg.ipMasq,
        forwardRules: cfg.forwardRules ?? true, fullyRandomDisable: cfg.ipMasqFullyRandomDisable ?? false, resyncMs: cfg.rulesResyncMs ?? 5000,
      },
      { log: deps.log.child({ component: 'host-rules' }), clock },
    );
    await rules.start();
    if (stopping) return void (await rules.stop()); // stop() may have run before `rules` was set
    await publishLease(own);
    await listed;
    if (stopping) return;
    mark('ready');
    if (state !== 'starting') return; // stopping, or moved before we were ready
    state = 'running';
    log.info({ subnet: own.subnet, ipv6Subnet: own.ipv6Subnet, network: network.ipv4?.network, ipv6Network: network.ipv6?.network, mtu, tun: dp.tunName, peers: dir.peerCount, ms: timings.ready }, 'node ready');
    resolveReady();
    void deps.registry.nodeReady?.(); // Kubernetes: NodeNetworkUnavailable=False, as flanneld once it is up
  };

  const done = start().then(
    () => new Promise<void>(() => undefined), // runs until stop(); stop() settles `stopped`
    (e: unknown) => {
      if (stopping) return;
      state = 'failed';
      error = (e as Error).message;
      rejectReady(e);
      throw e;
    },
  );
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const doneOrStopped = Promise.race([done, stopped]);
  doneOrStopped.catch(() => undefined);

  // plain mode's "last activity": when each peer's counters last grew, sampled every second.
  // The sample is O(peers), so it is taken only when something can have changed: a peer's
  // counters grow only when the data plane's own counters do, and peers come and go only with
  // the directory. An idle node (10,000 peers: 3 % of a core before) then does O(1) a second.
  const activity = new PeerActivity();
  let cancelSampling: (() => void) | undefined;
  let sampledAt: { revision: number; moved: bigint } | undefined;
  const sample = () => {
    if (stopping) return;
    const revision = dir?.revision ?? -1;
    const moved = dp ? countersTotal(dp.counters()) : -1n;
    if (!sampledAt || sampledAt.revision !== revision || sampledAt.moved !== moved) {
      activity.observe((dir?.peerList() ?? []).map((p) => ({ id: p.id, traffic: dp?.peerTraffic(p.id) })), clock.now());
      sampledAt = { revision, moved };
    }
    cancelSampling = clock.setTimer(sample, ACTIVITY_SAMPLE_MS);
  };
  void ready.then(sample, () => undefined);

  const peerViews = (): PeerView[] =>
    (dir?.peerList() ?? []).map((p) => {
      const d = backend?.peerDetails?.(p.id);
      const ep = d?.endpoint ?? p.endpoint;
      const seen = activity.last(p.id);
      return {
        id: p.id, subnets: p.subnets, endpoint: formatEndpoint(ep.address, ep.port),
        publicKey: d?.publicKey, lastHandshakeAt: d?.lastHandshakeAt, lastSentAt: d ? d.lastSentAt : seen.sentAt,
        lastReceivedAt: d ? d.lastReceivedAt : seen.receivedAt,
        persistentKeepaliveSeconds: d?.persistentKeepaliveSeconds, traffic: addTraffic(dp?.peerTraffic(p.id), d?.handshakes), drops: dp?.peerDrops(p.id),
      };
    });

  if (deps.metrics) registerPeerMetrics(deps.metrics, peerViews);

  const handle: NodeHandle = {
    ready,
    done: doneOrStopped,
    snapshot() {
      return plain({
        version: tulleVersion(), at: Date.now(), tun: dp?.tunName, listenPort: dp?.port,
        node: handle.status(), peers: peerViews(), drops: dropsOf(dp?.counters()),
      });
    },
    uapiDevice() {
      return dp ? backend?.uapiDevice?.(peerViews()) : undefined;
    },
    status() {
      const ls = lm?.status();
      return {
        state, ready: state === 'running', error: error ?? ls?.lastError, network: network?.ipv4?.network ?? network?.ipv6?.network,
        ipv6Network: network?.ipv6?.network, backend: network?.backend.type, mtu,
        publicIp: cfg.publicIp, publicIpv6: cfg.publicIpv6,
        ...storeHealth(deps.registry.storeKey ?? 'etcd', ls ? { etcd: ls.etcd, since: ls.since, lastError: ls.lastError } : configEtcd),
        lease: ls?.lease, leases: ls?.leases ?? 0, revision: ls?.revision ?? 0, reacquiring: ls?.reacquiring ?? false,
        routes: dir?.snapshot() ?? {}, peers: dir?.peerCount ?? 0, timings,
        backendStatus: backend?.status?.(),
        hostRules: rules?.status(),
        subnetMoved: moved,
      };
    },
    async stop() {
      if (stopping) return stopped;
      stopping = true;
      halt.abort();
      cancelSampling?.();
      if (state !== 'failed') state = 'stopping';
      rejectReady(new TulleError('ERR_TULLE_STOPPED', 'node stopped before it was ready'));
      await lm?.stop();
      await rules?.stop();
      if (dp && network) await host.removeRoutes({ name: dp.tunName, routes: rangesOf(network).map((r) => r.network) });
      dp?.stop(); // closing the TUN removes the device
      await deps.registry.close().catch(() => undefined);
      if (state !== 'failed') state = 'stopped';
      log.info('node stopped; lease kept for the next start');
      resolveStopped();
    },
  };
  return handle;
}

/**
 * The TUN's addresses: each subnet's network address as a host route (10.244.3.0/32,
 * fd00:10:244:3::/128), as flanneld puts the lease's address on its device.
 */
function tunAddressesOf(l: LeaseSubnets): string[] {
  return subnetsOf(l).map((s) => `${s.split('/')[0]}/${s.includes(':') ? 128 : 32}`);
}
