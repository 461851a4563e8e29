/**
 * npm run bench [-- --seconds 5 --reps 3 --out FILE]
 *
 * Two namespaces on an underlay bridge; kernel VXLAN and tulle measured one after the other in
 * the same run, interleaved per repetition: iperf3 TCP 1 and 4 streams, UDP 64-byte datagrams
 * (received packets/s and loss), ping avg/p99, and tulle's CPU time. Prints a markdown table
 * of medians with the ratio of each system to kernel VXLAN. A benchmark, not a test.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createBed } from '../test/bed/bed.js';
import { waitForOutput } from '../test/bed/proc.js';
import { iperfTcp, iperfUdp, pingStats } from './iperf.js';
import { defaultSystems, type System } from './systems.js';
import { median, renderTable, type Row } from './table.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    reps: { type: 'string', default: '3' },
    mtu: { type: 'string', default: '1450' },
    out: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const reps = Number(args.reps);
const mtu = Number(args.mtu);

type Sample = Record<string, number>;

async function measure(system: System, bed: Awaited<ReturnType<typeof createBed>>): Promise<Sample> {
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
    s.tcp4 = (await timed('tcp4', () => iperfTcp(bed, a!.ns, running.target, seconds, 4))).gbps;
    const udp = await timed('udp', () => iperfUdp(bed, a!.ns, running.target, seconds));
    s.udpKpps = udp.receivedPps / 1000;
    s.udpLoss = udp.lossPercent;
    const ping = await pingStats(bed, a!.ns, running.target);
    s.pingAvg = ping.avgMs;
    s.pingP99 = ping.p99Ms;
  } finally {
    await running.down();
  }
  return s;
}

async function main() {
  const systems = defaultSystems;
  const bed = await createBed({ nodes: 2, tag: 'tb' });
  const samples = new Map<string, Sample[]>(systems.map((s) => [s.name, []]));
  try {
    const server = bed.spawn(bed.nodes[1]!.ns, 'iperf3', ['-s', '--forceflush']);
    await waitForOutput(server, /Server listening/);
    for (let rep = 1; rep <= reps; rep++) {
      for (const system of systems) {
        process.stderr.write(`rep ${rep}/${reps}: ${system.name} ...\n`);
        samples.get(system.name)!.push(await measure(system, bed));
      }
    }
  } finally {
    await bed.teardown();
  }
  const med = (name: string, key: string) => {
    const xs = samples.get(name)!.map((s) => s[key]).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const names = systems.map((s) => s.name);
  const row = (metric: string, key: string, digits = 2): Row => ({ metric, values: names.map((n) => med(n, key)), digits });
  const rows: Row[] = [
    row('TCP 1 stream (Gb/s)', 'tcp1'),
    row('TCP 4 streams (Gb/s)', 'tcp4'),
    row('UDP 64 B received (kpps)', 'udpKpps', 1),
    row('UDP 64 B loss (%)', 'udpLoss', 1),
    row('ping avg (ms)', 'pingAvg', 3),
    row('ping p99 (ms)', 'pingP99', 3),
    row('tulle CPU during TCP 1 stream (cores)', 'cpu:tcp1'),
    row('tulle CPU during TCP 4 streams (cores)', 'cpu:tcp4'),
    row('tulle CPU during UDP 64 B (cores)', 'cpu:udp'),
  ];
  const report = [
    `tulle benchmark — ${new Date().toISOString()}`,
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}; inner MTU ${mtu}; ` +
      `${reps} repetitions of ${seconds} s, medians; command: npm run bench -- --seconds ${seconds} --reps ${reps}`,
    '',
    renderTable(names, rows),
    '',
    'Ratios are each system / kernel VXLAN (higher is better for Gb/s and kpps; lower for loss, latency and CPU).',
  ].join('\n');
  console.log(report);
  if (args.out) writeFileSync(args.out, report + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
