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
import { loadAddon } from '../dataplane/native.js';
import { registerDataPlaneMetrics } from '../metrics/dataplane-metrics.js';
import { registerPeerMetrics } from '../metrics/peer-metrics.js';
import type { Backend, Stack } from '../backend/backend.js';
import { selectBackend } from '../backend/select-backend.js';
import { rangesOf, type NetworkConfig } from '../config/network-config.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import { LeaseManager, type OwnLease } from '../lease/lease-manager.js';
import type { LeaseTable } from '../lease/lease-diff.js';
import { PeerDirectory } from '../lease/peer-directory.js';
import { ipv4SubnetOf, NO_PUBLIC_IP, subnetsOf, type LeaseSubnets } from '../lease/lease.js';
import { storeHealth } from './store-health.js';
import { realClock } from '../util/clock.js';
import { ConfigError, TulleError } from '../util/errors.js';
import type { HostRules } from '../host/rules/host-rules.js';
import { realHost } from './host-ops.js';
import { addTraffic, dropsOf, plain, type PeerView } from '../control/status-snapshot.js';
import { PeerActivity } from '../control/peer-activity.js';
import { tulleVersion } from '../version.js';
import { formatEndpoint } from '../wireguard/uapi.js';
import { ConfigWait } from './config-wait.js';
import { SubnetMoves } from './subnet-moves.js';
import { publishLease } from './publish-lease.js';
import { startActivitySampling } from './activity-sampler.js';
import type { NodeConfig, NodeDeps, NodeHandle, NodeState } from './node-types.js';

export type { NodeConfig, NodeDeps, NodeHandle, NodeState, NodeStatus, SubnetMove } from './node-types.js';

export function createNode(cfg: NodeConfig, deps: NodeDeps): NodeHandle {
  const clock = deps.clock ?? realClock;
  const host = deps.host ?? realHost;
  const log = deps.log.child({ component: 'node' }); // children of the root, never of each other
  const t0 = clock.now();
  if (deps.metrics) registerDataPlaneMetrics(deps.metrics, loadAddon().counterNames(), () => dp);
  const moves = new SubnetMoves(clock, log);
  if (deps.metrics) moves.registerMetrics(deps.metrics);
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

  const publish = (l: OwnLease) => publishLease(host, cfg, network!, mtu!, l, log);

  // our subnet moved while running (see SubnetMoves): move the TUN address, rules and files
  const onOwnLease = (l: OwnLease) => {
    moves.record(lastSubnet, l.subnet);
    lastSubnet = l.subnet;
    if (state === 'running') state = 'subnet-moved';
    void (async () => {
      log.warn({ subnet: l.subnet }, 'our subnet changed; moving the TUN address and subnet.env');
      const addrs = tunAddressesOf(l);
      for (const [i, a] of addrs.entries()) await host.replaceTunAddress(dp?.tunName ?? cfg.tunName, tunAddresses[i], a);
      tunAddresses = addrs;
      await rules?.setSubnet(ipv4SubnetOf(l), l.ipv6Subnet);
      await publish(l);
      applyTable(lm!.leases);
    })().catch((e: Error) => log.error({ err: e.message }, 'cannot move to the new subnet'));
  };

  // before the lease manager exists, the config fetch says how the store is doing
  const configWait = new ConfigWait({
    registry: deps.registry, log, clock, configKey: cfg.configKey, signal: halt.signal,
    store: cfg.configStore ?? { name: 'etcd', hint: 'write it with etcdctl put' },
  });

  const start = async () => {
    network = await configWait.load();
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
    await publish(own);
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

  // plain mode's "last activity" (see activity-sampler.ts)
  const activity = new PeerActivity();
  let cancelSampling: (() => void) | undefined;
  void ready.then(() => {
    if (!stopping) cancelSampling = startActivitySampling({ clock, activity, directory: () => dir, dataPlane: () => dp });
  }, () => undefined);

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
        state, ready: state === 'running', error: error ?? configWait.error ?? ls?.lastError, network: network?.ipv4?.network ?? network?.ipv6?.network,
        ipv6Network: network?.ipv6?.network, backend: network?.backend.type, mtu,
        publicIp: cfg.publicIp, publicIpv6: cfg.publicIpv6,
        ...storeHealth(deps.registry.storeKey ?? 'etcd', ls ? { etcd: ls.etcd, since: ls.since, lastError: ls.lastError } : configWait.health),
        lease: ls?.lease, leases: ls?.leases ?? 0, revision: ls?.revision ?? 0, reacquiring: ls?.reacquiring ?? false,
        routes: dir?.snapshot() ?? {}, peers: dir?.peerCount ?? 0, timings,
        backendStatus: backend?.status?.(),
        hostRules: rules?.status(),
        subnetMoved: moves.moved,
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
