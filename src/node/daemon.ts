/**
 * `tulle run` as a function: options → logger → underlay → etcd registry → node → health
 * server → signals. Resolves with the exit status, and every way out logs why (README
 * "Exit codes"):
 *
 *   0  stopped by SIGTERM, SIGINT or SIGHUP    last line: info 'exiting' {signal, exitCode: 0}
 *   1  fatal: bad network config, no free subnet, cannot create the TUN or the health server,
 *      an uncaught exception, a stop that does not finish in time, a second signal while
 *      stopping                                  fatal {code, exitCode: 1}, then the cleanup
 *   2  bad flags                                 fatal {code: ERR_TULLE_CONFIG, field, exitCode: 2}
 *
 * Waiting is never a way out: for etcd, for the network config, to retry a lost race, the
 * daemon waits as long as it takes, until it is told to stop.
 */
import { parseRunOptions, type RunOptions } from '../config/run-options.js';
import { EXIT_BAD_FLAGS, EXIT_FATAL, EXIT_OK, logFatal } from '../cli/process-exit.js';
import { resolveUnderlay } from '../host/underlay.js';
import { createLogger } from '../log/logger.js';
import { etcdRegistry } from '../registry/etcd-registry.js';
import { ConfigError, TulleError } from '../util/errors.js';
import client from 'prom-client';
import { serveHealth, type HealthServer } from './health-server.js';
import { createNode, type NodeHandle } from './node.js';
import { sdNotify } from './sd-notify.js';
import { keepBlackholeRoute, type BlackholeRoute } from '../host/blackhole-route.js';
import { tulleVersion } from '../version.js';
import type { Logger } from 'pino';
import { kubeSettings, type KubeSettings } from '../registry/kube/kube-settings.js';
import { NO_PUBLIC_IP } from '../lease/lease.js';
import { controlSocketPath, serveControl, type ControlServer } from '../control/control-server.js';
import { serveUapi, uapiSocketPath, type UapiServer } from '../wireguard/uapi-server.js';

/** how long a stop (routes, TUN, masquerade rules, etcd client) may take before we exit anyway */
const STOP_DEADLINE_MS = 30_000;
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

export async function runDaemon(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let opts: RunOptions;
  let kube: KubeSettings | undefined;
  try {
    opts = parseRunOptions(argv, env);
    if (opts.kubeSubnetMgr) kube = kubeSettings(opts, env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    logFatal(createLogger('info').child({ component: 'main' }), e, EXIT_BAD_FLAGS);
    return EXIT_BAD_FLAGS;
  }
  if (opts.version) {
    process.stderr.write(`${tulleVersion()}\n`); // flanneld prints its version on stderr
    return 0;
  }
  const root = createLogger(opts.logLevel);
  const log = root.child({ component: 'main' });
  // The daemon's lifetime, deliberately: while this handle is open Node cannot end the process
  // for an empty event loop, whatever the node is waiting on — one of our timers, a gRPC call
  // whose socket the client unrefs between calls, anything. Released when runDaemon returns.
  const keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
  let node: NodeHandle | undefined;
  let health: HealthServer | undefined;
  let control: ControlServer | undefined;
  let uapi: Promise<UapiServer | undefined> = Promise.resolve(undefined);
  let signal: string | undefined;
  let stopDeadline: NodeJS.Timeout | undefined;
  // what ends the daemon from outside the node: an uncaught exception, a second signal, the stop deadline
  let interrupt = interruption();

  let blackholes: BlackholeRoute[] = [];
  const onSignal = (sig: string) => {
    if (signal) {
      interrupt.fire(new TulleError('ERR_TULLE_SIGNAL', `${sig} while stopping after ${signal}: exiting before the cleanup finished`));
      return;
    }
    signal = sig;
    log.info({ signal: sig }, 'stopping');
    stopDeadline = setTimeout(
      () => interrupt.fire(new TulleError('ERR_TULLE_STOP_TIMEOUT', `did not stop within ${STOP_DEADLINE_MS / 1000} s of ${sig}`)),
      STOP_DEADLINE_MS,
    );
    void node?.stop();
  };
  const onUncaught = (e: Error) => interrupt.fire(new TulleError('ERR_TULLE_UNCAUGHT', `uncaught exception: ${e?.message ?? String(e)}`, { cause: e }));
  // a stray rejection (say, from a client library's background retry) is logged, not fatal:
  // the data plane keeps forwarding; real faults still surface in /healthz
  const onRejection = (e: unknown) => log.error({ err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) }, 'unhandled rejection');
  const signalHandlers = STOP_SIGNALS.map((s) => [s, () => onSignal(s)] as const);
  for (const [s, h] of signalHandlers) process.on(s, h);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  try {
    for (const n of opts.notices) log.warn(n);
    const kubeReg = kube && (await openKubeRegistry(kube, root.child({ component: 'kube' })));
    // flanneld's GetStoredPublicIP: the node's node-public-ip annotation stands for --public-ip
    const stored = (kubeReg && (await kubeReg.storedPublicIp().catch((e: Error) => void log.warn({ err: e.message }, 'cannot read the node for node-public-ip')))) || {};
    if (stored.ipv4) log.info({ publicIp: stored.ipv4, annotation: kube!.names.nodePublicIp }, 'public ip from the node annotation');
    if (stored.ipv6) log.info({ publicIpv6: stored.ipv6, annotation: kube!.names.nodePublicIpv6 }, 'public ipv6 from the node annotation');
    const underlay = await resolveUnderlay({ ...opts, publicIp: stored.ipv4 ?? opts.publicIp, publicIpv6: stored.ipv6 ?? opts.publicIpv6 });
    log.info({ iface: underlay.iface, by: underlay.by, publicIp: underlay.publicIp, publicIpv6: underlay.publicIpv6, underlayMtu: underlay.mtu, ...(kubeReg ? { kubeApi: kubeReg.server } : { etcd: opts.etcdEndpoints }) }, 'starting');
    const registry = kubeReg ?? etcdRegistry({
      endpoints: [...opts.etcdEndpoints], prefix: opts.etcdPrefix, caFile: opts.etcdCafile, certFile: opts.etcdCertfile, keyFile: opts.etcdKeyfile,
      username: opts.etcdUsername, password: opts.etcdPassword,
    });
    const metrics = new client.Registry();
    node = createNode(
      {
        tunName: opts.tunName, publicIp: underlay.publicIp ?? NO_PUBLIC_IP, publicIpv6: underlay.publicIpv6, underlayMtu: underlay.mtu, ipMasq: opts.ipMasq, subnetFile: opts.subnetFile,
        cniConfPath: opts.cniConfPath, cniConfOverwrite: opts.cniConfOverwrite,
        forwardRules: opts.iptablesForwardRules, ipMasqFullyRandomDisable: opts.ipMasqFullyRandomDisable, rulesResyncMs: opts.iptablesResyncSeconds * 1000,
        stateDir: opts.stateDir, leaseTtlMs: opts.leaseTtlMs, renewMarginMs: opts.renewMarginMs,
        ...(kube
          ? { configKey: kube.netConfPath, configStore: { name: 'the net-conf.json file', hint: 'the kube-flannel-cfg ConfigMap mounts it' } }
          : { configKey: `${opts.etcdPrefix}/config` }),
      },
      { registry, log: root, metrics },
    );
    // `tulle status`: not fatal when it cannot be made (the node's job is forwarding)
    const live = node;
    control = await serveControl(controlSocketPath(opts.stateDir), { status: () => live.snapshot(), ping: () => 'pong' }, root.child({ component: 'control' })).then(
      (c) => (log.info({ socket: c.path }, 'control socket listening'), c),
      (e: Error & { code?: string }) => (log.error({ code: e.code, err: e.message }, 'no control socket: `tulle status` will not reach this daemon'), undefined),
    );
    if (opts.healthzPort) {
      health = await serveHealth(opts.healthzIp, opts.healthzPort, node.status, metrics).catch((e: Error) => {
        throw new TulleError('ERR_TULLE_HEALTHZ', `--healthz-ip/--healthz-port ${opts.healthzIp}:${opts.healthzPort}: ${e.message}`, { cause: e });
      });
      log.info({ healthz: `http://${health.address.ip}:${health.address.port}/healthz` }, 'health server listening');
    }
    if (signal) void node.stop();
    void node.ready.then(() => {
      const tun = live.snapshot().tun;
      if (live.status().backend === 'wireguard' && tun) {
        // `wg show`: not fatal when it cannot be served (say, another process holds the name)
        const ulog = root.child({ component: 'wireguard-uapi' });
        uapi = serveUapi(uapiSocketPath(tun), () => live.uapiDevice(), ulog).then(
          (u) => (ulog.info({ socket: u.path }, 'wireguard uapi socket listening (wg show)'), u),
          (e: Error & { code?: string }) => (ulog.warn({ code: e.code, err: e.message }, 'no wireguard uapi socket: `wg show` will not see this node'), undefined),
        );
      }
      if (opts.ipBlackholeRoute) {
        const hlog = root.child({ component: 'host' });
        const v4 = () => {
          const s = node?.status().lease?.subnet;
          return s && !s.includes(':') ? s : undefined;
        };
        blackholes = [keepBlackholeRoute(v4, opts.iptablesResyncSeconds, hlog), keepBlackholeRoute(() => node?.status().lease?.ipv6Subnet, opts.iptablesResyncSeconds, hlog)];
      }
      const n = sdNotify('READY=1');
      if (n.sent) log.info({ socket: n.socket }, 'told systemd READY=1');
      else if (n.socket) log.warn({ socket: n.socket, err: n.error }, 'cannot tell systemd READY=1');
    }, () => undefined);
    await Promise.race([node.done, interrupt.promise]);
    for (const b of blackholes) await b.stop();
    log.info({ signal, exitCode: EXIT_OK }, 'exiting');
    return EXIT_OK;
  } catch (e) {
    logFatal(log, e, EXIT_FATAL);
    const code = (e as { code?: unknown } | undefined)?.code;
    if (node && code !== 'ERR_TULLE_SIGNAL' && code !== 'ERR_TULLE_STOP_TIMEOUT') {
      // clean up as on a stop, but not forever, and a second signal or another exception ends it
      interrupt = interruption();
      const t = setTimeout(() => interrupt.fire(new TulleError('ERR_TULLE_STOP_TIMEOUT', 'cleanup did not finish')), STOP_DEADLINE_MS);
      await Promise.race([node.stop(), interrupt.promise]).catch((x: Error) => log.warn({ err: x.message }, 'cleanup after the fatal error did not finish'));
      clearTimeout(t);
    }
    for (const b of blackholes) await b.stop().catch(() => undefined);
    return EXIT_FATAL;
  } finally {
    clearTimeout(stopDeadline);
    for (const [s, h] of signalHandlers) process.off(s, h);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    await health?.close();
    await control?.close();
    await (await uapi)?.close();
    clearInterval(keepAlive);
  }
}

/** Loads the Kubernetes client only in --kube-subnet-mgr mode (it is large) and makes the registry. */
async function openKubeRegistry(s: KubeSettings, log: Logger) {
  const [{ kubeApi, kubeConfigFor }, { kubeRegistry }] = await Promise.all([import('../registry/kube/kube-api.js'), import('../registry/kube/kube-registry.js')]);
  let kc;
  try {
    kc = kubeConfigFor(s.access);
  } catch (e) {
    throw e instanceof TulleError ? e : new TulleError('ERR_TULLE_CONFIG', `config: Kubernetes client configuration (${s.access.kind}): ${(e as Error).message}`, { cause: e });
  }
  const api = kubeApi(kc);
  return Object.assign(kubeRegistry(s, api, log), { server: api.server });
}

/** A promise that rejects when fire() is first called; never settles otherwise. */
function interruption(): { promise: Promise<never>; fire(e: Error): void } {
  let fire!: (e: Error) => void;
  const promise = new Promise<never>((_, reject) => (fire = reject));
  promise.catch(() => undefined);
  return { promise, fire };
}
