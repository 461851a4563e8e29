/**
 * flanneld's --ip-blackhole-route: a `blackhole` route for this node's own subnet (one keeper per
 * family in dual stack, as flanneld runs one loop for each), so traffic
 * to addresses of the subnet that no pod holds is dropped here instead of following the
 * overlay route back out (useful when no bridge route covers the subnet, e.g. Canal). As
 * flanneld: added only when no blackhole route for the subnet exists, checked again every
 * --iptables-resync seconds; when a bridge route of the same prefix exists the kernel refuses
 * it (logged once). Unlike flanneld, what tulle added is removed when the subnet moves and on exit.
 */
import type { Logger } from 'pino';
import { run } from './exec.js';

export interface BlackholeRoute {
  stop(): Promise<void>;
}

export function keepBlackholeRoute(subnet: () => string | undefined, everySeconds: number, log: Logger): BlackholeRoute {
  let added: string | undefined;
  let lastError: string | undefined;
  let busy: Promise<void> = Promise.resolve();
  const remove = async (s: string) => {
    await run('ip', ['route', 'del', 'blackhole', s]).catch(() => undefined);
    log.info({ subnet: s }, 'blackhole route removed');
  };
  const check = async () => {
    const want = subnet();
    if (added && added !== want) {
      await remove(added);
      added = undefined;
    }
    if (!want) return;
    try {
      const have = (await run('ip', [want.includes(':') ? '-6' : '-4', 'route', 'show', 'type', 'blackhole', 'exact', want])).stdout.trim();
      if (have) return;
      await run('ip', ['route', 'add', 'blackhole', want]);
      added = want;
      lastError = undefined;
      log.info({ subnet: want }, 'blackhole route added (--ip-blackhole-route)');
    } catch (e) {
      if (lastError !== (e as Error).message) log.warn({ subnet: want, err: (e as Error).message }, 'cannot add the blackhole route; will retry');
      lastError = (e as Error).message;
    }
  };
  const tick = () => (busy = busy.then(check));
  void tick();
  const timer = setInterval(tick, everySeconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      if (added) await remove(added);
      added = undefined;
    },
  };
}
