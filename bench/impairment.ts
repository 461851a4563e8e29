/**
 * npm run impairment -- [--mib 16] [--timeout 60] [--mode plain --mode encrypted] [--only 'loss 10 %'] [--out FILE]
 *
 * The impairment matrix: real daemons (default flags) on a real etcd, two nodes on the bed's
 * underlay bridge, `tc netem` on the bridge ports (UDP only, both directions: see
 * test/bed/netem.ts), for plain (`udp`) and encrypted (`wireguard`) mode. Each cell is one exact
 * TCP transfer of --mib MiB from n0 to n1 over the overlay, bounded by --timeout seconds,
 * checked end to end by SHA-256, with
 *   - goodput as the receiver saw it (noisy on a shared machine; a correctness matrix first);
 *   - the receiver's kernel counters: TcpInCsumErrors (a corrupted inner segment that reached
 *     the TUN with a bad checksum) and UdpInCsumErrors (corruption caught on the underlay);
 *   - the receiving daemon's drop counters by reason (replay, decrypt, ...).
 * The MTU cells put a 1400-byte hop on the path: an L2 hop (the bridge drops oversize frames
 * silently), then the same with the nodes' underlay MTU set to 1400 (what a user does), then a
 * routed hop that answers with ICMP "fragmentation needed".
 * Prints the matrix as markdown. A benchmark, not a test; test/faults/ checks a few cells.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { run } from '../src/host/exec.js';
import { createBed, type Bed, type BedNode } from '../test/bed/bed.js';
import { startEtcd, type EtcdServer } from '../test/bed/etcd.js';
import { startDaemons, tunAddress, until, type Daemon, type Daemons } from '../test/bed/daemons.js';
import { addRoutedHost, clearImpairment, impairUdpTo, nstat, setPortMtu } from '../test/bed/netem.js';
import { tcpTransfer, type TransferResult } from '../test/bed/transfer.js';

const PREFIX = '/coreos.com/network';

const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '16' },
    timeout: { type: 'string', default: '60' },
    mode: { type: 'string', multiple: true },
    only: { type: 'string', multiple: true },
    out: { type: 'string' },
  },
});
const bytes = Math.round(Number(args.mib) * 2 ** 20);
const timeoutS = Number(args.timeout);
const modes = (args.mode?.length ? args.mode : ['plain', 'encrypted']) as ('plain' | 'encrypted')[];

interface Cell {
  name: string;
  netem: string[];
  /** what the path does, for the table */
  how: string;
  kind?: 'l2-mtu' | 'l2-mtu-fixed' | 'routed-mtu';
}

export const CELLS: Cell[] = [
  { name: 'none', netem: [], how: 'no impairment' },
  { name: 'loss 1 %', netem: ['loss', '1%'], how: 'netem loss 1%' },
  { name: 'loss 10 %', netem: ['loss', '10%'], how: 'netem loss 10%' },
  { name: 'reorder', netem: ['delay', '5ms', 'reorder', '25%', '50%'], how: 'netem delay 5ms reorder 25% 50%' },
  { name: 'duplicate', netem: ['duplicate', '5%'], how: 'netem duplicate 5%' },
  { name: 'corrupt', netem: ['corrupt', '1%'], how: 'netem corrupt 1%' },
  { name: 'delay + jitter', netem: ['delay', '20ms', '5ms', 'distribution', 'normal'], how: 'netem delay 20ms 5ms distribution normal' },
  { name: 'MTU 1400 hop (L2)', netem: [], how: 'bridge ports at MTU 1400, nodes at 1500: oversize frames dropped silently', kind: 'l2-mtu' },
  { name: 'MTU 1400 hop (L2), node MTU 1400', netem: [], how: 'same hop; the nodes\' eth0 set to 1400 and the daemons restarted', kind: 'l2-mtu-fixed' },
  { name: 'MTU 1400 hop (routed)', netem: [], how: 'a router with a 1400-byte link to n1 that sends ICMP frag-needed', kind: 'routed-mtu' },
];
const cells = args.only?.length ? CELLS.filter((c) => args.only!.includes(c.name)) : CELLS;

interface Row {
  cell: Cell;
  mode: string;
  r: TransferResult;
  tcpCsumErr: number;
  udpCsumErr: number;
  drops: string;
  mtu: number;
}

const KERNEL = ['TcpInCsumErrors', 'UdpInCsumErrors', 'IpReasmOKs'];

async function runMode(mode: 'plain' | 'encrypted', rows: Row[]) {
  const bed = await createBed({ nodes: 2, tag: 'imp' });
  let etcd: EtcdServer | undefined;
  let ds: Daemons | undefined;
  try {
    const etcdNode = await bed.addHost('etcd', 2);
    etcd = await startEtcd({ bed, ns: etcdNode.ns, ip: etcdNode.underlayIp });
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: mode === 'plain' ? 'udp' : 'wireguard' } })]);
    ds = startDaemons(bed, [etcd.endpoint]);
    const [n0, n1] = bed.nodes as [BedNode, BedNode];
    let d: Daemon[] = [ds.start(n0), ds.start(n1)];
    let subnets = await Promise.all(d.map((x) => x.readySubnet(60_000)));
    const meshUp = async (from: BedNode, to: string) =>
      until(`${from.ns} to reach ${to}`, async () => (await bed.exec(from.ns, 'ping', ['-n', '-q', '-c', '1', '-W', '1', to]), true), 60_000, 200);
    await meshUp(n0, tunAddress(subnets[1]!));

    for (const cell of cells) {
      let to = n1;
      let toDaemon = d[1]!;
      let toAddr = tunAddress(subnets[1]!);
      if (cell.kind === 'l2-mtu') {
        await setPortMtu(bed, n0, 1400);
        await setPortMtu(bed, n1, 1400);
      } else if (cell.kind === 'l2-mtu-fixed') {
        for (const n of [n0, n1]) await run('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'mtu', '1400']);
        await ds.stopAll();
        d = [ds.start(n0), ds.start(n1)];
        subnets = await Promise.all(d.map((x) => x.readySubnet(60_000)));
        toDaemon = d[1]!;
        toAddr = tunAddress(subnets[1]!);
        await meshUp(n0, toAddr);
      } else if (cell.kind === 'routed-mtu') {
        // undo the L2 hop; the far node sits behind a router whose link to it has MTU 1400
        for (const n of [n0, n1]) {
          await setPortMtu(bed, n, 1500);
          await run('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'mtu', '1500']);
        }
        await ds.stopAll();
        const far = await addRoutedHost(bed, 'far', 1400);
        d = [ds.start(n0), ds.start(far)];
        subnets = await Promise.all(d.map((x) => x.readySubnet(60_000)));
        to = far;
        toDaemon = d[1]!;
        toAddr = tunAddress(subnets[1]!);
        await meshUp(n0, toAddr);
      } else {
        for (const n of [n0, n1]) await impairUdpTo(bed, n, cell.netem.length ? cell.netem : ['delay', '0ms']);
      }
      const k0 = await nstat(to.ns, KERNEL);
      const m0 = await ds.metrics(toDaemon);
      const cellTimeout = cell.kind === 'l2-mtu' ? Math.min(timeoutS, 20) : timeoutS;
      const r = await tcpTransfer(bed, n0, to, toAddr, bytes, cellTimeout, `${mode}-${cell.name}`);
      const k1 = await nstat(to.ns, KERNEL);
      const m1 = await ds.metrics(toDaemon);
      const drops = [...m1].filter(([k, v]) => k.startsWith('tulle_drops_total{direction="inbound"') && v - (m0.get(k) ?? 0) > 0)
        .map(([k, v]) => `${/reason="(\w+)"/.exec(k)?.[1]} ${v - (m0.get(k) ?? 0)}`).join(', ');
      const h = await ds.health(toDaemon);
      const row: Row = { cell, mode, r, tcpCsumErr: k1.TcpInCsumErrors! - k0.TcpInCsumErrors!, udpCsumErr: k1.UdpInCsumErrors! - k0.UdpInCsumErrors!, drops, mtu: Number(h.mtu) };
      rows.push(row);
      process.stderr.write(`${mode.padEnd(9)} ${cell.name.padEnd(34)} ${r.ok ? 'sha ok' : `FAILED (${r.error})`} ${r.mbps.toFixed(1)} Mbit/s ${(r.ms / 1000).toFixed(1)} s; tcp csum err ${row.tcpCsumErr}, udp csum err ${row.udpCsumErr}; drops: ${drops || '-'}; tun mtu ${row.mtu}\n`);
      if (!cell.kind) for (const n of [n0, n1]) await clearImpairment(bed, n);
    }
  } finally {
    await ds?.destroy();
    await etcd?.destroy();
    await bed.teardown();
  }
}

function render(rows: Row[], wall: number): string {
  const md: string[] = [];
  md.push(`Transfer: ${args.mib} MiB over TCP from n0 to n1 (overlay), SHA-256 compared end to end, timeout ${timeoutS} s per cell.`);
  md.push('Goodput is what the receiver saw (payload bits / time from accept to FIN), on a shared 2-core machine: noisy.');
  md.push('');
  md.push(`| impairment (UDP on the underlay, both directions) | ${modes.join(' | ')} |`);
  md.push(`|---|${modes.map(() => '---').join('|')}|`);
  for (const cell of cells) {
    const cols = modes.map((m) => {
      const row = rows.find((r) => r.cell === cell && r.mode === m);
      if (!row) return 'not run';
      return row.r.ok ? `✓ ${row.r.mbps.toFixed(1)} Mbit/s` : `✗ ${row.r.error === 'digest or length differs' ? 'DIGEST MISMATCH' : row.r.error ?? 'failed'} (${(row.r.bytes / 2 ** 20).toFixed(1)} MiB)`;
    });
    md.push(`| ${cell.name} | ${cols.join(' | ')} |`);
  }
  md.push('');
  md.push('| impairment | mode | how | TUN MTU | SHA-256 | goodput Mbit/s | seconds | TcpInCsumErrors | UdpInCsumErrors | receiver drops (tulle) |');
  md.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    md.push(`| ${row.cell.name} | ${row.mode} | ${row.cell.how} | ${row.mtu} | ${row.r.ok ? 'equal' : row.r.receivedSha && row.r.bytes === bytes ? 'DIFFERENT' : 'incomplete'} | ${row.r.mbps.toFixed(1)} | ${(row.r.ms / 1000).toFixed(1)} | ${row.tcpCsumErr} | ${row.udpCsumErr} | ${row.drops || '-'} |`);
  }
  md.push('');
  md.push(`Wall time ${(wall / 1000).toFixed(0)} s.`);
  return md.join('\n');
}

const t0 = Date.now();
const rows: Row[] = [];
for (const mode of modes) await runMode(mode, rows);
const out = render(rows, Date.now() - t0);
process.stdout.write(`${out}\n`);
if (args.out) writeFileSync(args.out, `${out}\n`);
// a digest mismatch is a failure of tulle; a stalled MTU cell is a finding, not an error
process.exit(rows.some((r) => r.r.receivedSha && r.r.bytes === bytes && !r.r.ok) ? 1 : 0);
