/**
 * `tulle run` as a function: options → logger → underlay → etcd registry → node → health
 * server → signals. Resolves with the process exit code: 0 after SIGTERM/SIGINT, 1 on a fatal
 * error (bad network config, no free subnet), 2 on bad flags.
 */
import type { Logger } from 'pino';
import { parseRunOptions, type RunOptions } from '../config/run-options.js';
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

export async function runDaemon(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let opts: RunOptions;
  try {
    opts = parseRunOptions(argv, env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    createLogger('info').child({ component: 'main' }).fatal({ code: e.code, field: e.field }, e.message);
    return 2;
  }
  if (opts.version) {
    process.stderr.write(`${tulleVersion()}\n`); // flanneld prints its version on stderr
    return 0;
  }
  const root = createLogger(opts.logLevel);
  const log = root.child({ component: 'main' });
  let node: NodeHandle | undefined;
  let health: HealthServer | undefined;
  let blackhole: BlackholeRoute | undefined;
  let signalled = false;
  const onSignal = (sig: string) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal: sig }, 'stopping');
    void node?.stop();
  };
  // a stray rejection (say, from a client library's background retry) is logged, not fatal:
  // the data plane keeps forwarding; real faults still surface in /healthz
  process.on('unhandledRejection', (e) => log.error({ err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) }, 'unhandled rejection'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    for (const n of opts.notices) log.warn(n);
    const underlay = await resolveUnderlay(opts);
    log.info({ iface: underlay.iface, by: underlay.by, publicIp: underlay.publicIp, underlayMtu: underlay.mtu, etcd: opts.etcdEndpoints }, 'starting');
    const registry = etcdRegistry({
      endpoints: [...opts.etcdEndpoints], prefix: opts.etcdPrefix, caFile: opts.etcdCafile, certFile: opts.etcdCertfile, keyFile: opts.etcdKeyfile,
      username: opts.etcdUsername, password: opts.etcdPassword,
    });
    const metrics = new client.Registry();
    node = createNode(
      {
        tunName: opts.tunName, publicIp: underlay.publicIp, underlayMtu: underlay.mtu, ipMasq: opts.ipMasq, subnetFile: opts.subnetFile,
        forwardRules: opts.iptablesForwardRules, ipMasqFullyRandomDisable: opts.ipMasqFullyRandomDisable, rulesResyncMs: opts.iptablesResyncSeconds * 1000,
        stateDir: opts.stateDir, leaseTtlMs: opts.leaseTtlMs, renewMarginMs: opts.renewMarginMs, configKey: `${opts.etcdPrefix}/config`,
      },
      { registry, log: root, metrics },
    );
    if (opts.healthzPort) {
      health = await serveHealth(opts.healthzIp, opts.healthzPort, node.status, metrics);
      log.info({ healthz: `http://${health.address.ip}:${health.address.port}/healthz` }, 'health server listening');
    }
    if (signalled) void node.stop();
    void node.ready.then(() => {
      if (opts.ipBlackholeRoute) blackhole = keepBlackholeRoute(() => node?.status().lease?.subnet, opts.iptablesResyncSeconds, root.child({ component: 'host' }));
      const n = sdNotify('READY=1');
      if (n.sent) log.info({ socket: n.socket }, 'told systemd READY=1');
      else if (n.socket) log.warn({ socket: n.socket, err: n.error }, 'cannot tell systemd READY=1');
    }, () => undefined);
    await node.done;
    await blackhole?.stop();
    return 0;
  } catch (e) {
    fatal(log, e);
    await node?.stop().catch(() => undefined);
    await blackhole?.stop();
    return 1;
  } finally {
    await health?.close();
  }
}

function fatal(log: Logger, e: unknown): void {
  if (e instanceof ConfigError) log.fatal({ code: e.code, field: e.field }, e.message);
  else if (e instanceof TulleError) log.fatal({ code: e.code }, e.message);
  else log.fatal({ err: e }, (e as Error).message ?? String(e));
}
