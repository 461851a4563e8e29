/**
 * npm run bench [-- --seconds 5 --reps 3 --out FILE --only encrypted --only 'offloads off']
 *
 * Two namespaces on an underlay bridge; kernel VXLAN and tulle measured one after the other in
 * the same run, interleaved per repetition: iperf3 TCP 1 and 4 streams, UDP 64-byte datagrams
 * (received packets/s and loss, unpaced and at the rate kernel VXLAN delivered), ping avg/p99,
 * and tulle's CPU time. Prints a markdown table
 * of medians with the ratio of each system to kernel VXLAN. A benchmark, not a test.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createBed } from '../test/bed/bed.js';
import { waitForOutput } from '../test/bed/proc.js';
import { iperfTcp, iperfUdp, pingStats } from './iperf.js';
import { allSystems, type System } from './systems.js';
import { median, ratioTable, valuesTable, type Column, type Values } from './table.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
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

type Sample = Record<string, number>;

async function measure(system: System, bed: Awaited<ReturnType<typeof createBed>>, yardstick?: Sample): Promise<Sample> {
  const [a] = bed.nodes;
  const running = await system.up(bed, mtu);
  const s: Sample = {};
  const cpu = running.cpuSeconds;
  try {
    await pingStats(bed, a!.ns, running.target, 20); // warm up ARP/neighbours and the path
    const timed = async <T>(key: string, f: () => Promise<T>): Promise<T> => {
      const c0 = cpu?.();
      const t0 = performance.now();
      const r = await f();
      if (cpu) s[`cpu:${key}`] = (cpu() - c0!) / ((performance.now() - t0) / 1000);
      return r;
    };
    s.tcp1 = (await timed('tcp1', () => iperfTcp(bed, a!.ns, running.target, seconds, 1))).gbps;
    // CPU seconds per GB carried = cores / (GB per second)
    if (cpu) s['cpuPerGB:tcp1'] = s['cpu:tcp1']! / (s.tcp1 / 8);
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
  } finally {
    await running.down();
  }
  return s;
}

async function main() {
  const only = args.only;
  const systems = allSystems.filter((s, i) => i === 0 || !only || only.some((o) => s.name.includes(o)));
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
  const columns: Column[] = [
    { key: 'tcp1', title: 'TCP 1 stream (Gb/s)', digits: 2 },
    { key: 'tcp4', title: 'TCP 4 streams (Gb/s)', digits: 2 },
    { key: 'udpKpps', title: 'UDP 64 B rx (kpps)', digits: 1 },
    { key: 'udpLoss', title: 'UDP 64 B loss (%)', digits: 1 },
    { key: 'udpPacedLoss', title: 'UDP 64 B loss at VXLAN\'s rate (%)', digits: 1 },
    { key: 'pingAvg', title: 'ping avg (ms)', digits: 3 },
    { key: 'pingP99', title: 'ping p99 (ms)', digits: 3 },
    { key: 'cpu:tcp1', title: 'CPU, TCP 1 (cores)', digits: 2 },
    { key: 'cpuPerGB:tcp1', title: 'CPU s per GB, TCP 1', digits: 2 },
    { key: 'cpu:udp', title: 'CPU, UDP 64 B (cores)', digits: 2 },
  ];
  const rows: Array<[string, Values]> = systems.map((sys) => [sys.name, Object.fromEntries(columns.map((c) => [c.key, med(sys.name, c.key)]))]);
  const report = [
    `tulle benchmark — ${new Date().toISOString()}`,
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}; inner MTU ${mtu}; ` +
      `${reps} repetitions of ${seconds} s, medians; command: npm run bench -- --seconds ${seconds} --reps ${reps}`,
    '',
    valuesTable(columns, rows),
    '',
    'Ratio of each system to kernel VXLAN (higher is better for Gb/s and kpps; lower for loss and latency).',
    'CPU is the time of tulle\'s packet threads only (the kernel\'s VXLAN work is not attributable per process).',
    '',
    ratioTable(columns.filter((c) => !c.key.startsWith('cpu') && !c.key.includes('Loss')), rows),
  ].join('\n');
  console.log(report);
  if (args.out) writeFileSync(args.out, report + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
