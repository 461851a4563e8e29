/**
 * WireGuard's cross-platform userspace API (wireguard.com/xplatform), the text protocol `wg`
 * speaks to wireguard-go over /var/run/wireguard/<interface>.sock. Pure: bytes in, actions out,
 * and the text of a `get` answer.
 *
 *   request  "get=1\n\n"                      → key=value lines, then "errno=0\n\n"
 *            "set=1\n" key=value lines "\n"   → "errno=-1\n\n" (EPERM: peers come from the leases)
 *   any other first line                      → the connection is closed (as wireguard-go does)
 *
 * A `get` answer, as wireguard-go writes it (device/uapi.go IpcGetOperation): keys hex,
 * device keys first, then per peer public_key first:
 *
 *   private_key=<hex>          listen_port=<port>
 *   public_key=<hex>           preshared_key=<hex, zeros for none>     protocol_version=1
 *   endpoint=<ip:port | [ip6]:port>
 *   last_handshake_time_sec=<s since the epoch, 0 never>   last_handshake_time_nsec=<ns>
 *   tx_bytes=<n>  rx_bytes=<n>  persistent_keepalive_interval=<s>   allowed_ip=<prefix>...
 *
 * Like wireguard-go and the kernel (to root over netlink), tulle includes private_key: it is how
 * `wg show` learns the public key it prints, and the socket is root-only like the key file.
 * Errors are negative errnos, as wireguard-go sends them.
 */

export const ERRNO_EPERM = -1;
export const ERRNO_EINVAL = -22;
/** one line of a request; `wg` writes at most a key and a hostname:port */
export const MAX_LINE_BYTES = 8192;

export interface UapiPeer {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array | undefined;
  /** "a.b.c.d:port" or "[v6]:port" */
  endpoint?: string | undefined;
  allowedIps: readonly string[];
  /** wall-clock ms since the epoch; undefined: no handshake yet */
  lastHandshakeAt?: number | undefined;
  rxBytes: number | bigint;
  txBytes: number | bigint;
  persistentKeepaliveSeconds: number;
}

export interface UapiDevice {
  privateKey: Uint8Array;
  listenPort: number;
  peers: readonly UapiPeer[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The answer to `get=1`, status line included. */
export function formatGet(d: UapiDevice): string {
  const out: string[] = [`private_key=${hex(d.privateKey)}`, `listen_port=${d.listenPort}`];
  for (const p of d.peers) {
    out.push(`public_key=${hex(p.publicKey)}`, `preshared_key=${hex(p.presharedKey ?? new Uint8Array(32))}`, 'protocol_version=1');
    if (p.endpoint) out.push(`endpoint=${p.endpoint}`);
    const ms = p.lastHandshakeAt ?? 0;
    out.push(`last_handshake_time_sec=${Math.floor(ms / 1000)}`, `last_handshake_time_nsec=${(ms % 1000) * 1_000_000}`);
    out.push(`tx_bytes=${p.txBytes}`, `rx_bytes=${p.rxBytes}`, `persistent_keepalive_interval=${p.persistentKeepaliveSeconds}`);
    for (const a of p.allowedIps) out.push(`allowed_ip=${a}`);
  }
  return `${out.join('\n')}\nerrno=0\n\n`;
}

export function formatErrno(errno: number): string {
  return `errno=${errno}\n\n`;
}

/** "ip:port", or "[ip]:port" for IPv6 (as `wg` parses an endpoint) */
export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export type UapiAction =
  | { kind: 'get' }
  /** a set request read to its end; keys only (values may hold keys) */
  | { kind: 'set'; keys: string[] }
  /** answered with an errno, the connection stays */
  | { kind: 'error'; errno: number; reason: string }
  /** the connection is closed */
  | { kind: 'close'; reason: string };

/** Splits a connection's bytes into requests. After a 'close' action it returns nothing more. */
export class UapiReader {
  private buf = '';
  private state: 'op' | 'get-end' | 'set' = 'op';
  private setKeys: string[] = [];
  private closed = false;

  push(chunk: Buffer): UapiAction[] {
    if (this.closed) return [];
    this.buf += chunk.toString('latin1');
    const out: UapiAction[] = [];
    for (;;) {
      if (this.state === 'get-end') {
        // wireguard-go reads exactly one byte after "get=1\n": it must end the request
        if (!this.buf.length) break;
        const c = this.buf[0];
        this.buf = this.buf.slice(1);
        this.state = 'op';
        out.push(c === '\n' ? { kind: 'get' } : { kind: 'error', errno: ERRNO_EINVAL, reason: `trailing character in get: ${JSON.stringify(c)}` });
        continue;
      }
      const nl = this.buf.indexOf('\n');
      if (nl < 0) {
        if (this.buf.length > MAX_LINE_BYTES) return this.close(out, `line over ${MAX_LINE_BYTES} bytes`);
        break;
      }
      if (nl > MAX_LINE_BYTES) return this.close(out, `line over ${MAX_LINE_BYTES} bytes`);
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (this.state === 'op') {
        if (line === 'get=1') this.state = 'get-end';
        else if (line === 'set=1') (this.state = 'set'), (this.setKeys = []);
        else return this.close(out, `invalid operation ${JSON.stringify(line.slice(0, 64))}`);
      } else if (line === '') {
        this.state = 'op';
        out.push({ kind: 'set', keys: this.setKeys });
      } else if (this.setKeys.length < 64) {
        this.setKeys.push(line.split('=')[0]!.slice(0, 64));
      }
    }
    return out;
  }

  private close(out: UapiAction[], reason: string): UapiAction[] {
    this.closed = true;
    out.push({ kind: 'close', reason });
    return out;
  }
}
