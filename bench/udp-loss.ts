/**
 * npm run bench:udp-loss [-- --seconds 5 --rounds 3 --pps 100000 --row 'tulle plain' --row 'tulle plain|txqueuelen=8000' --out FILE]
 *
 * Where small UDP datagrams (iperf3 -u -l 64, node 0 → node 1) are lost: for each row, one unpaced
 * run and one paced run (at --pps, default the rate kernel VXLAN delivered unpaced in the same
 * round), each bounded, with the drop counters of every place on the path read before and after
 * (loss-places.ts). Rows are interleaved round by round, so a shared machine's load falls on all
 * of them alike. Prints, per mode, a table place → datagrams lost (median over rounds, and the
 * range), and the counts along the path; writes it to FILE when given. A benchmark, not a test.
 *
 * A row is a system of bench/systems.ts by name, optionally with knobs after '|', comma-separated:
 *   txqueuelen=N   the TUN's (or vx0's) txqueuelen on both nodes, set after start
 *   window=SIZE    iperf3 -w SIZE: the socket buffers of iperf3's client and server sockets
 *   nice=N         every thread of this process but the main one (tulle's packet threads: both
 *                  nodes run here) reniced to N after start: does the receiving app lose to them?
 */
import { readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createBed, type Bed } from '../test/bed/bed.js';
import { pollUntil, waitForOutput } from '../test/bed/proc.js';
import { run } from '../src/host/exec.js';
import { iperfUdp, pingStats } from './iperf.js';
import { allSystems, extraSystems, kernelVxlan, type System } from './systems.js';
import { median } from './table.js';
import { lossByPlace, PLACES, snapshot, STAGES, type PlaceKey, type StageKey } from './loss-places.js';

const DEFAULT_ROWS = ['kernel VXLAN', 'tulle plain', 'tulle plain, 2 queues', 'tulle encrypted'];

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    pps: { type: 'string' },
    mtu: { type: 'string', default: '1440' },
    row: { type: 'string', multiple: true },
    out: { type: 'string' },
  },
});
const seconds = Number(args.seconds), rounds = Number(args.rounds), mtu = Number(args.mtu);
const fixedPps = args.pps === undefined ? undefined : Number(args.pps);
for (const [k, v] of [['seconds', seconds], ['rounds', rounds], ['mtu', mtu], ['pps', fixedPps ?? 1]] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k}: want a positive number, got '${args[k]}'`);
}

interface Row {
  label: string;
  system: System;
  txqueuelen?: number;
  nice?: number;
  iperfExtra: string[];
}

function parseRow(spec: string, systems: readonly System[]): Row {
  const [name, knobs = ''] = spec.split('|', 2) as [string, string?];
  const system = systems.find((s) => s.name === name.trim());
  if (!system) throw new Error(`--row '${spec}': no system '${name.trim()}'; one of: ${systems.map((s) => s.name).join(', ')}`);
  const row: Row = { label: spec.trim(), system, iperfExtra: [] };
  for (const knob of knobs.split(',').map((k) => k.trim()).filter(Boolean)) {
    const [k, v] = knob.split('=', 2) as [string, string?];
    if (k === 'txqueuelen' && v && /^\d+$/.test(v)) row.txqueuelen = Number(v);
    else if (k === 'window' && v && /^\d+[KMG]?$/i.test(v)) row.iperfExtra.push('-w', v);
    else if (k === 'nice' && v && /^-?\d+$/.test(v) && Math.abs(Number(v)) <= 19) row.nice = Number(v);
    else throw new Error(`--row '${spec}': unknown or malformed knob '${knob}' (want txqueuelen=N, window=SIZE or nice=N)`);
  }
  return row;
}

type Mode = 'unpaced' | 'paced';
interface Result { places: Record<PlaceKey, number>; stages: Partial<Record<StageKey, number>>; drops: Record<string, number>; sent: number; lost: number; rxKpps: number; pps: number }

async function measureRow(bed: Bed, row: Row, ppsFor: (unpacedKpps: number) => number): Promise<Record<Mode, Result>> {
  const running = await row.system.up(bed, mtu);
  try {
    const devices = running.devices;
    if (!devices) throw new Error(`${row.system.name}: no devices to read counters from`);
    if (row.txqueuelen !== undefined)
      for (const d of devices) await run('ip', ['-n', d.ns, 'link', 'set', 'dev', d.dev, 'txqueuelen', String(row.txqueuelen)]);
    const threads = () => readdirSync('/proc/self/task').filter((t) => t !== String(process.pid));
    if (row.nice !== undefined) await run('renice', ['-n', String(row.nice), '-p', ...threads()]);
    await pingStats(bed, bed.nodes[0]!.ns, running.target, 20); // neighbours, path, sessions
    const once = async (pps: number): Promise<Result> => {
      const before = await snapshot(bed, devices);
      const r = await iperfUdp(bed, bed.nodes[0]!.ns, running.target, seconds, pps, 64, row.iperfExtra);
      // what is still in tulle's queues arrives within moments: wait until node 1's count stands still
      const inbound = () => devices[1]!.counters?.().inbound_packets ?? 0n;
      let last = -1n;
      await pollUntil(() => {
        const now = inbound();
        const still = now === last;
        last = now;
        return still || undefined;
      }, 'node 1 inbound counters to settle', 5_000, 200);
      const after = await snapshot(bed, devices);
      const { places, stages, drops } = lossByPlace(before, after, devices, r);
      return { places, stages, drops, sent: r.sent, lost: r.lost, rxKpps: r.receivedPps / 1000, pps };
    };
    const unpaced = await once(0);
    const paced = await once(ppsFor(unpaced.rxKpps));
    return { unpaced, paced };
  } finally {
    await running.down();
    // the threads of the next row start at this process's own priority; the idle ones left back
    if (row.nice !== undefined) await run('renice', ['-n', '0', '-p', ...readdirSync('/proc/self/task').filter((t) => t !== String(process.pid))]).catch(() => undefined);
  }
}

const fmtCell = (xs: number[]) => {
  if (!xs.length) return '—';
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number) => (Number.isInteger(x) || Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
  return s.length === 1 ? f(s[0]!) : `${f(median(s))} (${f(s[0]!)}–${f(s[s.length - 1]!)})`;
};

function report(rows: Row[], results: Map<string, Array<Record<Mode, Result>>>, mode: Mode): string {
  const head = ['place (datagrams lost, node 0 → node 1)', ...rows.map((r) => r.label.replaceAll('|', '\\|'))];
  const line = (name: string, get: (r: Result) => number | undefined) =>
    `| ${name} | ${rows.map((row) => fmtCell(results.get(row.label)!.map((x) => get(x[mode])).filter((v): v is number => v !== undefined))).join(' | ')} |`;
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    line('offered (pps; 0 = unpaced)', (r) => r.pps),
    line('received (kpps)', (r) => r.rxKpps),
    line('loss (%)', (r) => (r.sent ? (100 * r.lost) / r.sent : 0)),
    line('**lost (iperf3)**', (r) => r.lost),
    ...PLACES.map((p) => line(p.title, (r) => r.places[p.key])),
    ...STAGES.map((s) => line(`*path:* ${s.title}`, (r) => r.stages[s.key])),
    '',
    ...rows.flatMap((row) => {
      const names = [...new Set(results.get(row.label)!.flatMap((x) => Object.keys(x[mode].drops)))];
      return names.length ? [`${row.label}: tulle drop counters that moved, per round: ${names.map((n) => `${n} ${results.get(row.label)!.map((x) => x[mode].drops[n] ?? 0).join('/')}`).join(', ')}  `] : [];
    }),
  ].join('\n');
}

async function main() {
  const systems = [...allSystems, ...extraSystems];
  const rows = (args.row?.length ? args.row : DEFAULT_ROWS).map((r) => parseRow(r, systems));
  const results = new Map<string, Array<Record<Mode, Result>>>(rows.map((r) => [r.label, []]));
  const load0 = os.loadavg();
  const bed = await createBed({ nodes: 2, tag: 'ul' });
  try {
    const server = bed.spawn(bed.nodes[1]!.ns, 'iperf3', ['-s', '--forceflush']);
    await waitForOutput(server, /Server listening/);
    for (let round = 1; round <= rounds; round++) {
      let vxlanKpps: number | undefined;
      for (const row of rows) {
        process.stderr.write(`round ${round}/${rounds}: ${row.label} ...`);
        const r = await measureRow(bed, row, (kpps) => fixedPps ?? Math.round(1000 * (vxlanKpps ?? kpps)));
        if (row.system === kernelVxlan && !row.txqueuelen && !row.iperfExtra.length) vxlanKpps ??= r.unpaced.rxKpps;
        results.get(row.label)!.push(r);
        const brief = (m: Mode) => `${m} ${r[m].rxKpps.toFixed(1)} kpps, ${r[m].lost}/${r[m].sent} lost: ` +
          PLACES.filter((p) => r[m].places[p.key]).map((p) => `${p.key} ${r[m].places[p.key]}`).join(', ') +
          (Object.keys(r[m].drops).length ? ` [${Object.entries(r[m].drops).map(([k, v]) => `${k} ${v}`).join(', ')}]` : '');
        process.stderr.write(` ${brief('unpaced')}; ${brief('paced')}\n`);
      }
    }
  } finally {
    await bed.teardown();
  }
  const load1 = os.loadavg();
  const paced = fixedPps ? `${fixedPps} pps` : "the rate kernel VXLAN delivered unpaced in the same round";
  const text = [
    `tulle udp-loss — ${new Date().toISOString()}`,
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}; inner MTU ${mtu}; 64-byte UDP payloads; ` +
      `${rounds} rounds of ${seconds} s per mode, rows interleaved; medians (min–max); load average ${load0[0]!.toFixed(1)} before, ${load1[0]!.toFixed(1)} after; ` +
      `command: npm run bench:udp-loss -- --seconds ${seconds} --rounds ${rounds}${fixedPps ? ` --pps ${fixedPps}` : ''}${(args.row ?? []).map((r) => ` --row '${r}'`).join('')}`,
    '',
    '## Unpaced (iperf3 -b 0)',
    '',
    report(rows, results, 'unpaced'),
    '',
    `## Paced at ${paced}`,
    '',
    report(rows, results, 'paced'),
    '',
  ].join('\n');
  console.log(text);
  if (args.out) writeFileSync(args.out, text);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
