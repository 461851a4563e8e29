/** Picks the backend named by the network config's Backend.Type. */
import type { Logger } from 'pino';
import type { BackendConfig } from '../config/network-config.js';
import { createWireguardBackend } from '../wireguard/wireguard-backend.js';
import type { Backend } from './backend.js';
import { udpBackend } from './udp-backend.js';

export interface BackendContext {
  /** where the wireguard backend keeps the node's static key */
  stateDir: string;
  log?: Logger;
}

export function selectBackend(config: BackendConfig, ctx: BackendContext): Backend | Promise<Backend> {
  switch (config.type) {
    case 'udp':
      return udpBackend(config.port);
    case 'wireguard':
      return createWireguardBackend(config, ctx.stateDir, { logger: ctx.log?.child({ component: 'wireguard' }) });
  }
}
