/**
 * The lease's BackendData in encrypted mode, exactly as flannel's wireguard backend writes it:
 *
 *   "BackendType": "wireguard",
 *   "BackendData": { "PublicKey": "<base64 X25519 public key>", "Port": 51820 }
 *
 * and the network config's wireguard options that concern the protocol (`PSK`,
 * `PersistentKeepaliveInterval` in seconds, `ListenPort`).
 */
import { goFields } from '../config/go-json.js';
import { TulleError } from '../util/errors.js';
import { decodeKey } from './key-file.js';
import { WIREGUARD_DEFAULT_PORT } from './encrypted-node.js';

export const WIREGUARD_BACKEND_TYPE = 'wireguard';

export interface WireGuardBackendData {
  PublicKey: string;
  Port: number;
}

export function encodeBackendData(publicKey: Uint8Array, port: number): WireGuardBackendData {
  return { PublicKey: Buffer.from(publicKey).toString('base64'), Port: port };
}

/**
 * A peer's lease data; throws ERR_TULLE_WG_LEASE naming what is wrong (the caller skips that lease).
 * A lease without `Port` (or with 0, older flanneld) means this node's own ListenPort, as flanneld reads it.
 */
export function decodeBackendData(
  data: unknown,
  lease: string,
  ownListenPort = WIREGUARD_DEFAULT_PORT,
  field: 'BackendData' | 'BackendV6Data' = 'BackendData',
): { publicKey: Uint8Array; port: number } {
  if (typeof data !== 'object' || data === null) {
    throw new TulleError('ERR_TULLE_WG_LEASE', `lease ${lease}: ${field} missing (is it a wireguard lease?)`);
  }
  const d = goFields(data as Record<string, unknown>, ['PublicKey', 'Port'] as const); // flanneld's wireguardLeaseAttrs, as Go matches keys
  if (typeof d.PublicKey !== 'string') throw new TulleError('ERR_TULLE_WG_LEASE', `lease ${lease}: ${field}.PublicKey missing`);
  let publicKey: Uint8Array;
  try {
    publicKey = decodeKey(d.PublicKey, `lease ${lease}: ${field}.PublicKey`);
  } catch (cause) {
    throw new TulleError('ERR_TULLE_WG_LEASE', `lease ${lease}: ${field}.PublicKey is not a base64 32-byte key`, { cause });
  }
  const port = d.Port === undefined || d.Port === null || d.Port === 0 ? ownListenPort : d.Port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TulleError('ERR_TULLE_WG_LEASE', `lease ${lease}: ${field}.Port must be 1..65535`);
  }
  return { publicKey, port };
}

export interface WireGuardNetworkOptions {
  presharedKey: Uint8Array | undefined;
  persistentKeepaliveMs: number;
  listenPort: number;
}

/** The protocol's part of `Backend` in the network config (flannel's names). */
export function parseWireGuardOptions(backend: Record<string, unknown>): WireGuardNetworkOptions {
  const psk = backend.PSK;
  if (psk !== undefined && typeof psk !== 'string') throw new TulleError('ERR_TULLE_CONFIG', 'config: Backend.PSK: must be a base64 string');
  const keepalive = backend.PersistentKeepaliveInterval ?? 0;
  if (typeof keepalive !== 'number' || keepalive < 0 || keepalive > 65535) {
    throw new TulleError('ERR_TULLE_CONFIG', 'config: Backend.PersistentKeepaliveInterval: must be 0..65535 seconds');
  }
  const port = backend.ListenPort ?? WIREGUARD_DEFAULT_PORT;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TulleError('ERR_TULLE_CONFIG', 'config: Backend.ListenPort: must be 1..65535');
  }
  let presharedKey: Uint8Array | undefined;
  try {
    presharedKey = psk === undefined || psk === '' ? undefined : decodeKey(psk, 'Backend.PSK');
  } catch (cause) {
    throw new TulleError('ERR_TULLE_CONFIG', 'config: Backend.PSK: not a base64 32-byte key (wg genpsk)', { cause });
  }
  return { presharedKey, persistentKeepaliveMs: keepalive * 1000, listenPort: port };
}
