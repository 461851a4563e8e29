/** Picks the backend named by the network config's Backend.Type. */
import type { BackendConfig } from '../config/network-config.js';
import { TulleError } from '../util/errors.js';
import type { Backend } from './backend.js';
import { udpBackend } from './udp-backend.js';

export function selectBackend(config: BackendConfig): Backend {
  switch (config.type) {
    case 'udp':
      return udpBackend(config.port);
    case 'wireguard':
      throw new TulleError(
        'ERR_TULLE_BACKEND_UNAVAILABLE',
        'Backend.Type "wireguard": the config is valid, but this build of tulle has no encrypted data path yet; use "udp" for now',
      );
  }
}
