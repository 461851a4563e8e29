/**
 * npm run impairment -- [--mib 32] [--timeout 60] [--mode plain --mode encrypted] [--only 'loss 10 %'] [--out FILE]
 *
 * The impairment matrix: real daemons (default flags) on a real etcd, for plain (`udp`) and
 * encrypted (`wireguard`) mode. n0 sits on the bed's underlay bridge; n1's link to the bridge
 * runs through an impairment relay (test/bed/impair-relay.py: netem in userspace, because this
 * machine's kernel has no sch_netem) that impairs UDP in both directions. Each cell is one exact
 * TCP transfer of --mib MiB from n0 to n1 over the overlay, bounded by --timeout seconds,
 * checked end to end by SHA-256, with
 *   - goodput as the receiver saw it (noisy on a shared machine; a correctness matrix first);
 *   - kernel counters of both nodes: TcpInCsumErrors (a corrupted inner segment that reached a
 *     TUN with a bad checksum), UdpInCsumErrors and IpInHdrErrors (corruption caught on the
 *     underlay);
 *   - both daemons' inbound drop counters by reason (replay, decrypt, ...).
 * The MTU cells put a 1400-byte hop on the path: an L2 hop (the bridge drops oversize frames
 * silently), then the same with the nodes' underlay MTU set to 1400 (what a user does), then a
 * routed hop that answers with ICMP "fragmentation needed".
 * Prints the matrix as markdown. A benchmark, not a test; test/faults/ checks a few cells.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { run } from '../src/host/exec.js';
import type { BedNode } from '../test/bed/bed.js';
import { tunAddress, until, type Daemon } from '../test/bed/daemons.js';
import { startImpairedPair, type TransferReport } from '../test/bed/impaired-pair.js';
import { addRoutedHost, setPortMtu, type Impairment } from '../test/bed/netem.js';

const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '32' },
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
  imp: Impairment;
  /** what the path does, for the table */
  how: string;
  kind?: 'l2-mtu' | 'l2-mtu-fixed' | 'routed-mtu';
}

export const CELLS: Cell[] = [
  { name: 'none', imp: {}, how: 'through the relay, no impairment' },
  { name: 'loss 1 %', imp: { loss: 0.01 }, how: 'drop 1 %' },
  { name: 'loss 10 %', imp: { loss: 0.1 }, how: 'drop 10 %' },
  { name: 'reorder', imp: { reorder: 0.25, reorderMs: 2 }, how: '25 % held back 2 ms (later ones overtake)' },
  { name: 'duplicate', imp: { duplicate: 0.05 }, how: 'duplicate 5 %' },
  { name: 'corrupt', imp: { corrupt: 0.01 }, how: 'flip one bit in 1 %' },
  { name: 'delay + jitter', imp: { delayMs: 20, jitterMs: 5 }, how: 'delay normal(20 ms, 5 ms) each way (reorders)' },
  { name: 'MTU 1400 hop (L2)', imp: {}, how: 'n0\'s bridge port at MTU 1400, nodes at 1500: oversize frames dropped silently', kind: 'l2-mtu' },
  { name: 'MTU 1400 hop (L2), node MTU 1400', imp: {}, how: 'same hop; both nodes\' eth0 set to 1400 and the daemons restarted', kind: 'l2-mtu-fixed' },
  { name: 'MTU 1400 hop (routed)', imp: {}, how: 'a far node (eth0 1500) behind a router whose link to it has MTU 1400: ICMP frag-needed', kind: 'routed-mtu' },
];
const cells = args.only?.length ? CELLS.filter((c) => args.only!.includes(c.name)) : CELLS;

interface Row {
  cell: Cell;
  mode: string;
  r: TransferReport;
}

async function runMode(mode: 'plain' | 'encrypted', rows: Row[]) {
  const pair = await startImpairedPair(mode);
  const { bed, n0, n1, relay, ds } = pair;
  try {
    for (const cell of cells) {
      let to: { node: BedNode; daemon: Daemon; subnet: string } | undefined;
      await relay.set(cell.kind ? {} : { ...cell.imp, seed: 1 });
      if (cell.kind === 'l2-mtu') {
        // n0's port: frames over 1400 bytes die in both directions
        await setPortMtu(bed, n0, 1400);
      } else if (cell.kind === 'l2-mtu-fixed') {
        for (const n of [n0, n1]) await run('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'mtu', '1400']);
        await pair.restart();
      } else if (cell.kind === 'routed-mtu') {
        // undo the L2 hop; a far node (eth0 1500) sits behind a router whose link to it has MTU 1400
        await setPortMtu(bed, n0, 1500);
        await run('ip', ['-n', n0.ns, 'link', 'set', 'eth0', 'mtu', '1500']);
        await pair.restart();
        const far = await addRoutedHost(bed, 'far', 1400);
        await run('ip', ['-n', far.ns, 'link', 'set', 'eth0', 'gso_max_segs', '1']);
        const daemon = ds.start(far);
        const subnet = await daemon.readySubnet(60_000);
        await until('n0 to reach the far node', async () =>
          (await bed.exec(n0.ns, 'ping', ['-n', '-q', '-c', '1', '-W', '1', tunAddress(subnet)]), true), 60_000, 200);
        to = { node: far, daemon, subnet };
      }
      const cellTimeout = cell.kind === 'l2-mtu' ? Math.min(timeoutS, 20) : timeoutS;
      const r = await pair.transfer(bytes, cellTimeout, { ...(to ? { to } : {}), seed: `${mode}-${cell.name}` });
      rows.push({ cell, mode, r });
      process.stderr.write(`${mode.padEnd(9)} ${cell.name.padEnd(34)} ${r.ok ? 'sha ok' : `FAILED (${r.error})`} ${r.mbps.toFixed(1)} Mbit/s ${(r.ms / 1000).toFixed(1)} s; ${JSON.stringify(r.kernel)}; drops ${JSON.stringify(r.drops)}; relay ${JSON.stringify(r.relay)}; tun mtu ${r.mtu}\n`);
    }
  } finally {
    await pair.teardown();
  }
}

function relayText(row: Row): string {
  const x = row.r.relay;
  if (row.cell.kind) return '-';
  const parts = [`${x.udp ?? 0} udp`];
  for (const k of ['dropped', 'duplicated', 'corrupted', 'delayed'] as const) if (x[k]) parts.push(`${x[k]} ${k}`);
  return parts.join(', ');
}

function render(rows: Row[], wall: number): string {
  const md: string[] = [];
  md.push(`Transfer: ${args.mib} MiB over TCP from n0 to n1 (overlay), SHA-256 compared end to end, timeout ${timeoutS} s per cell.`);
  md.push('Impairments act on UDP in both directions of n1\'s link (the relay); kernel and tulle counters are summed over both nodes.');
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
  md.push('| impairment | mode | how | relay did (frames both ways) | TUN MTU | SHA-256 | goodput Mbit/s | seconds | TcpInCsumErrors | UdpInCsumErrors | IpInHdrErrors | IpReasmOKs | tulle inbound drops |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    md.push(`| ${row.cell.name} | ${row.mode} | ${row.cell.how} | ${relayText(row)} | ${row.r.mtu} | ${row.r.ok ? 'equal' : row.r.receivedSha && row.r.bytes === bytes ? 'DIFFERENT' : 'incomplete'} | ${row.r.mbps.toFixed(1)} | ${(row.r.ms / 1000).toFixed(1)} | ${row.r.kernel.TcpInCsumErrors} | ${row.r.kernel.UdpInCsumErrors} | ${row.r.kernel.IpInHdrErrors} | ${row.r.kernel.IpReasmOKs} | ${Object.entries(row.r.drops).map(([k, v]) => `${k} ${v}`).join(', ') || '-'} |`);
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
