/**
 * `tulle status` as text, laid out like `wg show`: the node first, then one block per peer.
 * Colour (ANSI) only when asked — the CLI asks when stdout is a terminal. Pure: the snapshot and
 * the time in, the text out.
 *
 *   node: tulle0
 *     state: running
 *     backend: wireguard
 *     ...
 *
 *   peer: 10.244.88.0/24
 *     endpoint: 198.18.0.11:51820
 *     latest handshake: 1 minute, 3 seconds ago
 *     transfer: 1.20 MiB received, 3.40 MiB sent
 *     drops: inbound decrypt 2, outbound send_error 1
 */
import type { PeerView, StatusSnapshot } from './status-snapshot.js';
import { storeStateOf } from '../node/store-health.js';

const ANSI = { bold: '1', green: '32', yellow: '33', red: '31', cyan: '36' } as const;
type Tone = keyof typeof ANSI;

/** wg's units: B, then KiB/MiB/GiB/TiB with two decimals */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

/** wg's "1 hour, 2 minutes, 3 seconds" (years and days too) */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  if (s === 0) return 'Now';
  const parts: string[] = [];
  for (const [name, len] of [['year', 365 * 86400], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]] as const) {
    const n = Math.floor(s / len);
    s -= n * len;
    if (n) parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
  }
  return parts.join(', ');
}

/** "outbound no_route 7, inbound replay 3": most first, or "none" */
export function formatDrops(drops: Record<string, number>): string {
  const d = Object.entries(drops).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  return d.length ? d.map(([k, v]) => `${k.replace('_drop_', ' ')} ${v}`).join(', ') : 'none';
}

const ago = (at: number | undefined, now: number) => (at === undefined ? undefined : at > now - 1000 ? 'Now' : `${formatDuration(now - at)} ago`);

export function renderStatus(s: StatusSnapshot, o: { color: boolean; now?: number }): string {
  const now = o.now ?? s.at;
  const c = (tone: Tone, text: string) => (o.color ? `\x1b[${ANSI[tone]}m${text}\x1b[0m` : text);
  const key = (k: string) => (o.color ? `\x1b[${ANSI.bold}m${k}\x1b[0m` : k);
  const lines: string[] = [];
  const row = (k: string, v: string | undefined) => v !== undefined && lines.push(`  ${key(k)}: ${v}`);
  const n = s.node;

  lines.push(`${c('green', 'node')}: ${c('green', s.tun ?? '(no TUN yet)')}`);
  const stateTone: Tone = n.state === 'running' ? 'green' : n.state === 'failed' || n.state === 'subnet-moved' ? 'red' : 'yellow';
  row('state', `${c(stateTone, n.state)}${n.error ? ` (${n.error})` : ''}`);
  row('backend', n.backend);
  if (typeof n.backendStatus?.publicKey === 'string') row('public key', n.backendStatus.publicKey);
  row('listening port', s.listenPort !== undefined ? String(s.listenPort) : undefined);
  row('public ip', n.publicIp);
  if (n.publicIpv6) row('public ipv6', n.publicIpv6);
  row('network', n.network);
  if (n.ipv6Network && n.ipv6Network !== n.network) row('ipv6 network', n.ipv6Network);
  if (n.lease) {
    const v6 = n.lease.ipv6Subnet && n.lease.ipv6Subnet !== n.lease.subnet ? ` and ${n.lease.ipv6Subnet}` : '';
    row('subnet', `${n.lease.subnet}${v6} (lease expires in ${formatDuration(n.lease.expiresAt - now)})`);
  }
  if (n.subnetMoved) row('subnet moved', c('red', `${n.subnetMoved.from} → ${n.subnetMoved.to}: ${n.subnetMoved.action}`));
  const store = storeStateOf(n);
  if (store) {
    const tone: Tone = store.state === 'connected' ? 'green' : 'red';
    row(store.key === 'kubeApi' ? 'kubernetes api' : 'etcd', `${c(tone, store.state)} for ${formatDuration(now - store.since)}${store.lastError ? ` (${store.lastError})` : ''}`);
  }
  row('mtu', n.mtu !== undefined ? String(n.mtu) : undefined);
  row('peers', String(s.peers.length));
  row('drops', formatDrops(s.drops));

  for (const p of s.peers) lines.push('', ...peerBlock(p, now, c, key));
  return `${lines.join('\n')}\n`;
}

function peerBlock(p: PeerView, now: number, c: (t: Tone, s: string) => string, key: (k: string) => string): string[] {
  const lines = [`${c('yellow', 'peer')}: ${c('yellow', p.subnets.join(', ') || '(no route)')}`];
  const row = (k: string, v: string | undefined) => v !== undefined && lines.push(`  ${key(k)}: ${v}`);
  row('endpoint', p.endpoint);
  row('public key', p.publicKey);
  if (p.publicKey !== undefined) row('latest handshake', ago(p.lastHandshakeAt, now) ?? c('red', 'none yet'));
  if (p.traffic) {
    const t = p.traffic;
    row('transfer', `${formatBytes(t.rxBytes)} received, ${formatBytes(t.txBytes)} sent (${t.rxPackets} / ${t.txPackets} packets)`);
  }
  if (p.drops) {
    const d = formatDrops(p.drops);
    row('drops', d === 'none' ? d : c('red', d));
  }
  const last = Math.max(p.lastSentAt ?? -Infinity, p.lastReceivedAt ?? -Infinity);
  if (Number.isFinite(last)) row('last activity', `sent ${ago(p.lastSentAt, now) ?? 'never'}, received ${ago(p.lastReceivedAt, now) ?? 'never'}`);
  if (p.persistentKeepaliveSeconds) row('persistent keepalive', `every ${formatDuration(p.persistentKeepaliveSeconds * 1000)}`);
  return lines;
}
