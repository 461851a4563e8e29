/**
 * npm run bench [-- --seconds 5 --reps 3 --idle-seconds 10 --out FILE --only encrypted --only 'offloads off']
 *
 * Two namespaces on an underlay bridge; kernel VXLAN, the bare underlay (the veth limit) and
 * tulle measured one after the other in the same run, interleaved per repetition: iperf3 TCP 1
 * and 4 streams, UDP 64-byte datagrams (received packets/s and loss, unpaced and at the rate
 * kernel VXLAN delivered), ping avg/p99, tulle's CPU time, the whole machine's CPU time per GB,
 * and each node's CPU with no traffic. Prints a markdown table of medians with the ratio of each
 * system to kernel VXLAN, and writes it with a chart (SVG) to FILE (default
 * bench/results/<date>.md and .svg, also copied to bench/results/latest.*). A benchmark, not a test.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBed } from '../test/bed/bed.js';
import { waitForOutput } from '../test/bed/proc.js';
import { iperfTcp, iperfUdp, pingStats } from './iperf.js';
import { allSystems, kernelVxlan, underlayVeth, type System } from './systems.js';
import { median, ratioTable, spreadTable, valuesTable, type Values } from './table.js';
import { renderChart } from './chart.js';
import { chartColumns, columns } from './columns.js';
import { machineBusySeconds } from './machine-cpu.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    // CPU of each node with no traffic, measured over this long at the end of each system's turn
    'idle-seconds': { type: 'string', default: '10' },
    reps: { type: 'string', default: '3' },
    // the encrypted link's inner MTU (1500 - 60), shared by every system so none fragments
    mtu: { type: 'string', default: '1440' },
    // substrings of system names to run (kernel VXLAN, the yardstick, always runs)
    only: { type: 'string', multiple: true },
    out: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const reps = Number(args.reps);
const mtu = Number(args.mtu);
const idleSeconds = Number(args['idle-seconds']);
for (const [k, v] of [['seconds', seconds], ['reps', reps], ['mtu', mtu], ['idle-seconds', idleSeconds]] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k}: want a positive number, got '${args[k]}'`);
}

type Sample = Record<string, number>;

async function measure(system: System, bed: Awaited<ReturnType<typeof createBed>>, yardstick?: Sample): Promise<Sample> {
  const [a] = bed.nodes;
  const running = await system.up(bed, mtu);
  const s: Sample = {};
  const cpu = running.cpuSeconds;
  try {
    await pingStats(bed, a!.ns, running.target, 20); // warm up ARP/neighbours and the path
    const timed = async <T>(key: string, f: () => Promise<T>): Promise<T> => {
      const c0 = cpu?.(), m0 = machineBusySeconds();
      const t0 = performance.now();
      const r = await f();
      const elapsed = (performance.now() - t0) / 1000;
      if (cpu) s[`cpu:${key}`] = (cpu() - c0!) / elapsed;
      s[`machineCpu:${key}`] = (machineBusySeconds() - m0) / elapsed;
      return r;
    };
    s.tcp1 = (await timed('tcp1', () => iperfTcp(bed, a!.ns, running.target, seconds, 1))).gbps;
    // CPU seconds per GB carried = cores / (GB per second)
    if (cpu) s['cpuPerGB:tcp1'] = s['cpu:tcp1']! / (s.tcp1 / 8);
    s['machineCpuPerGB:tcp1'] = s['machineCpu:tcp1']! / (s.tcp1 / 8);
    s.tcp4 = (await timed('tcp4', () => iperfTcp(bed, a!.ns, running.target, seconds, 4))).gbps;
    const udp = await timed('udp', () => iperfUdp(bed, a!.ns, running.target, seconds));
    s.udpKpps = udp.receivedPps / 1000;
    s.udpLoss = udp.lossPercent;
    // unpaced, the sender's kernel paces a VXLAN sender (encapsulation runs in its send call) but
    // not a TUN sender (a TUN write only queues): so also offer exactly what VXLAN delivered
    const rate = yardstick?.udpKpps ?? s.udpKpps;
    const paced = await iperfUdp(bed, a!.ns, running.target, seconds, rate * 1000);
    s.udpPacedKpps = paced.receivedPps / 1000;
    s.udpPacedLoss = paced.lossPercent;
    const ping = await pingStats(bed, a!.ns, running.target);
    s.pingAvg = ping.avgMs;
    s.pingP99 = ping.p99Ms;
    if (running.nodeCpuSeconds) {
      // no traffic: what each node's packet threads cost doing nothing (% of one core), the busiest node
      const c0 = running.nodeCpuSeconds();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const elapsed = (performance.now() - t0) / 1000;
      const c1 = running.nodeCpuSeconds();
      s.idleCpuPct = Math.max(...c1.map((c, i) => (100 * (c - c0[i]!)) / elapsed));
    }
  } finally {
    await running.down();
  }
  return s;
}


main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

async function main() {
  const only = args.only;
  // the yardstick and the limit always run
  const systems = allSystems.filter((s) => s === kernelVxlan || s === underlayVeth || !only || only.some((o) => s.name.includes(o)));
  const bed = await createBed({ nodes: 2, tag: 'tb' });
  const samples = new Map<string, Sample[]>(systems.map((s) => [s.name, []]));
  try {
    const server = bed.spawn(bed.nodes[1]!.ns, 'iperf3', ['-s', '--forceflush']);
    await waitForOutput(server, /Server listening/);
    for (let rep = 1; rep <= reps; rep++) {
      let yardstick: Sample | undefined; // kernel VXLAN's sample of this repetition
      for (const system of systems) {
        process.stderr.write(`rep ${rep}/${reps}: ${system.name} ...\n`);
        const sample = await measure(system, bed, yardstick);
        yardstick ??= sample;
        samples.get(system.name)!.push(sample);
      }
    }
  } finally {
    await bed.teardown();
  }
  const med = (name: string, key: string) => {
    const xs = samples.get(name)!.map((s) => s[key]).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const rows: Array<[string, Values]> = systems.map((sys) => [sys.name, Object.fromEntries(columns.map((c) => [c.key, med(sys.name, c.key)]))]);
  const report = [
    `tulle benchmark — ${new Date().toISOString()}`,
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}; inner MTU ${mtu}; ` +
      `${reps} repetitions of ${seconds} s, medians; command: npm run bench -- --seconds ${seconds} --reps ${reps} --idle-seconds ${idleSeconds}`,
    '',
    valuesTable(columns, rows),
    '',
    'Ratio of each system to kernel VXLAN (higher is better for Gb/s and kpps; lower for loss and latency).',
    'CPU is the time of tulle\'s packet threads, or of the wireguard-go processes (the kernel\'s VXLAN work is not attributable per process);',
    '"machine CPU s per GB" is the whole machine\'s busy time (/proc/stat: iperf3, the kernel, tulle) per GB carried,',
    'for every row: meaningful only on an otherwise quiet machine. Idle CPU: the busier node\'s packet threads (wireguard-go: process)',
    `over ${idleSeconds} s with no traffic.`,
    '',
    ratioTable(columns.filter((c) => !c.key.startsWith('cpu') && !c.key.includes('Loss') && c.key !== 'idleCpuPct'), rows),
    '',
    `The spread: each system's lowest and highest value over the ${reps} repetitions.`,
    '',
    spreadTable(columns, systems.map((sys) => [sys.name, samples.get(sys.name)!])),
  ].join('\n');
  console.log(report);
  const day = new Date().toISOString().slice(0, 10);
  const out = args.out ?? path.join('bench', 'results', `${day}.md`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, report + '\n');
  const svg = out.replace(/\.md$/, '') + '.svg';
  writeFileSync(svg, renderChart({
    title: `tulle against kernel VXLAN — ${day}`,
    subtitle: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}; inner MTU ${mtu}; medians of ${reps} × ${seconds} s`,
    columns: chartColumns,
    rows,
    yardstick: kernelVxlan.name,
    limit: underlayVeth.name,
  }));
  if (!args.out) for (const f of [out, svg]) copyFileSync(f, path.join(path.dirname(f), `latest${path.extname(f)}`));
  console.error(`wrote ${out} and ${svg}`);
}
