/**
 * A stock WireGuard peer for interop tests: Debian's wireguard-go in a bed namespace, set up
 * the way flannel sets up kernel WireGuard (device address = lease's first address /32, a route
 * for the whole network, each peer: public key, endpoint, allowed-ips = its lease subnet).
 * Its UAPI socket lives in /var/run/wireguard (shared by all namespaces): the interface name
 * carries the bed's unique id, and the socket is removed at stop.
 */
import { existsSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bed, BedNode } from '../bed/bed.js';
import { stopProcess } from '../bed/bed.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { identity } from '../../src/wireguard/noise.js';

export interface WgGoPeer {
  publicKey: Uint8Array;
  endpoint: string; // address:port
  allowedIps: string;
  persistentKeepalive?: number;
  presharedKey?: Uint8Array;
}

export interface WgGo {
  ifname: string;
  /** the wireguard-go process, for its CPU time */
  pid: number;
  publicKey: Uint8Array;
  addPeer(p: WgGoPeer): Promise<void>;
  show(): Promise<string>;
  removePeer(publicKey: Uint8Array): Promise<void>;
  stop(): Promise<void>;
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startWireguardGo(
  bed: Bed,
  node: BedNode,
  o: {
    address: string; network: string; port: number; mtu: number;
    /** a key of its own otherwise; flanneld's two devices (Mode "separate") share one */
    privateKey?: Uint8Array;
    /** appended to the interface name, for a second device in one bed (at most 7 characters) */
    suffix?: string;
  },
): Promise<WgGo> {
  // the UAPI socket directory is shared by every namespace: one name per device on the machine
  const ifname = `wg${bed.id.slice(-6)}${o.suffix ?? ''}`;
  const sock = `/var/run/wireguard/${ifname}.sock`;
  const keys = o.privateKey ? identity(o.privateKey) : generateKeyPair();
  const dir = mkdtempSync(path.join(tmpdir(), 'tulle-wggo-'));
  const keyFile = path.join(dir, 'key');
  writeFileSync(keyFile, Buffer.from(keys.privateKey).toString('base64') + '\n', { mode: 0o600 });
  const proc = bed.spawn(node.ns, 'wireguard-go', [ifname], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const cleanup = async () => {
    await stopProcess(proc);
    rmSync(sock, { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`wireguard-go socket ${sock}`, () => existsSync(sock) || proc.exitCode !== null);
    if (proc.exitCode !== null) throw new Error(`wireguard-go exited: ${stderr}`);
    await bed.exec(node.ns, 'wg', ['set', ifname, 'private-key', keyFile, 'listen-port', String(o.port)]);
    await bed.exec(node.ns, 'ip', ['addr', 'add', o.address, 'dev', ifname]);
    await bed.exec(node.ns, 'ip', ['link', 'set', ifname, 'mtu', String(o.mtu), 'up']);
    await bed.exec(node.ns, 'ip', ['route', 'add', o.network, 'dev', ifname]);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    ifname,
    pid: proc.pid!,
    publicKey: keys.publicKey,
    async addPeer(p) {
      const args = ['set', ifname, 'peer', Buffer.from(p.publicKey).toString('base64'), 'endpoint', p.endpoint, 'allowed-ips', p.allowedIps];
      if (p.persistentKeepalive) args.push('persistent-keepalive', String(p.persistentKeepalive));
      if (p.presharedKey) {
        const f = path.join(dir, 'psk');
        writeFileSync(f, Buffer.from(p.presharedKey).toString('base64') + '\n', { mode: 0o600 });
        args.push('preshared-key', f);
      }
      await bed.exec(node.ns, 'wg', args);
    },
    async removePeer(publicKey) {
      await bed.exec(node.ns, 'wg', ['set', ifname, 'peer', Buffer.from(publicKey).toString('base64'), 'remove']);
    },
    async show() {
      return (await bed.exec(node.ns, 'wg', ['show', ifname, 'dump'])).stdout;
    },
    stop: cleanup,
  };
}
