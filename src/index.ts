export { startDataPlane, type DataPlane, type DataPlaneOptions, type Counters } from './dataplane/dataplane.js';
export type { Command } from './dataplane/commands.js';
export { TulleError, ConfigError } from './util/errors.js';
export { startEncryptedNode, WIREGUARD_DEFAULT_PORT, WIREGUARD_OVERHEAD_IPV4, WIREGUARD_OVERHEAD_IPV6, type EncryptedNode, type EncryptedNodeOptions, type EncryptedPeer } from './wireguard/encrypted-node.js';
export { createWireguardBackend, wireguardBackend, type WireGuardBackend, type WireGuardBackendConfig } from './wireguard/wireguard-backend.js';
export { WireGuardDevice, type WireGuardPeerConfig, type HandshakeCounter } from './wireguard/device.js';
export { loadOrCreateKey, type StaticKey } from './wireguard/key-file.js';
export { encodeBackendData, decodeBackendData, parseWireGuardOptions } from './wireguard/backend-data.js';
export { registerHandshakeMetrics } from './wireguard/metrics.js';
