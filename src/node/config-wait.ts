/**
 * Waiting for the network config, as flanneld does: a missing or invalid config is read again
 * every second (a store that cannot be reached: with backoff up to 5 s), the node is not ready
 * meanwhile, the reason is in /healthz, and each change of the reason is logged once.
 */
import type { Logger } from 'pino';
import { readNetworkConfig, type NetworkConfig } from '../config/network-config.js';
import type { Registry } from '../registry/registry.js';
import { sleep, type Clock } from '../util/clock.js';
import { ConfigError, TulleError } from '../util/errors.js';

/** how often a missing or invalid network config is read again (flanneld: every second) */
export const CONFIG_POLL_MS = 1000;

/** The store as the config fetch sees it, before the lease manager reports on it. */
export interface ConfigStoreHealth {
  etcd: 'connecting' | 'connected' | 'disconnected';
  since: number;
  lastError: string | undefined;
}

export interface ConfigWaitOptions {
  registry: Registry;
  log: Logger;
  clock: Clock;
  /** for messages: where the config lives */
  configKey: string;
  /** for messages: what holds it and how to put it there */
  store: { name: string; hint: string };
  /** ends the wait (stop()) */
  signal: AbortSignal;
}

export class ConfigWait {
  /** why the node is not ready yet (undefined once the config is usable) */
  error: string | undefined;
  health: ConfigStoreHealth;

  constructor(private readonly o: ConfigWaitOptions) {
    this.health = { etcd: 'connecting', since: o.clock.now(), lastError: undefined };
  }

  /** Resolves with the first usable config; rejects only when stopped (or on a non-config error). */
  async load(): Promise<NetworkConfig> {
    const { registry, log, clock, configKey, store, signal } = this.o;
    let said: string | undefined;
    const say = (why: string, level: 'warn' | 'error', fields: object = {}) => {
      this.error = why;
      if (said !== why) log[level](fields, `${why}; waiting for it to be fixed (not ready)`);
      said = why;
    };
    for (let failures = 0; ; ) {
      if (signal.aborted) throw new TulleError('ERR_TULLE_STOPPED', 'stopped while waiting for the network config');
      let text: string | undefined;
      try {
        text = await registry.getNetworkConfig();
        failures = 0;
        if (this.health.etcd !== 'connected') this.health = { etcd: 'connected', since: clock.now(), lastError: undefined };
        if (text === undefined) say(`no network config at ${configKey} (${store.hint})`, 'warn');
      } catch (e) {
        failures++;
        if (this.health.etcd !== 'disconnected') this.health = { etcd: 'disconnected', since: clock.now(), lastError: (e as Error).message };
        say(`cannot reach ${store.name} for the network config: ${(e as Error).message}`, 'warn');
      }
      if (text !== undefined) {
        try {
          const r = readNetworkConfig(text);
          for (const n of r.notices) log.warn({ key: configKey }, `network config: ${n}`);
          if (said !== undefined) log.info({ key: configKey }, 'network config is usable now');
          this.error = undefined;
          return r.config;
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          say(`invalid network config at ${configKey}: ${e.field}: ${e.message.replace(/^config: [^:]+: /, '')}`, 'error', { code: e.code, field: e.field });
        }
      }
      await sleep(clock, failures ? Math.min(5000, 250 * 2 ** Math.min(failures - 1, 5)) : CONFIG_POLL_MS, signal);
    }
  }
}
