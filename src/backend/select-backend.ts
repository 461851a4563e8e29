/**
 * Picks the backend named by the network config's Backend.Type: `udp` (plain mode) or
 * `wireguard` (encrypted mode; its static key lives in the state dir, created on first start).
 */
import type { Logger } from 'pino';
import type { BackendConfig } from '../config/network-config.js';
import { createWireguardBackend } from '../wireguard/wireguard-backend.js';
import { IPV4_ONLY, type Backend, type Stack } from './backend.js';
import { udpBackend } from './udp-backend.js';

export interface BackendContext {
  stateDir: string;
  log: Logger;
  /** the network's families and our IPv6 underlay address (default: IPv4 only) */
  stack?: Stack;
}

export async function selectBackend(config: BackendConfig, ctx: BackendContext): Promise<Backend> {
  switch (config.type) {
    case 'udp':
      return udpBackend(config.port, undefined, ctx.stack ?? IPV4_ONLY);
    case 'wireguard':
      return createWireguardBackend(config, ctx.stateDir, { logger: ctx.log.child({ component: 'wireguard' }), stack: ctx.stack ?? IPV4_ONLY });
  }
}
