/**
 * Picks the backend named by the network config's Backend.Type: `udp` (plain mode) or
 * `wireguard` (encrypted mode; its static key lives in the state dir, created on first start).
 */
import type { Logger } from 'pino';
import type { BackendConfig } from '../config/network-config.js';
import { createWireguardBackend } from '../wireguard/wireguard-backend.js';
import type { Backend } from './backend.js';
import { udpBackend } from './udp-backend.js';

export interface BackendContext {
  stateDir: string;
  log: Logger;
}

export async function selectBackend(config: BackendConfig, ctx: BackendContext): Promise<Backend> {
  switch (config.type) {
    case 'udp':
      return udpBackend(config.port);
    case 'wireguard':
      return createWireguardBackend(config, ctx.stateDir, { logger: ctx.log.child({ component: 'wireguard' }) });
  }
}
