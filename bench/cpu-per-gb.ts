/**
 * npm run bench:cpu-per-gb [-- --system 'tulle plain' --gb 2 --reps 5 --streams 1]
 *
 * CPU seconds of tulle's packet threads (both nodes) per GB carried, over a fixed-size iperf3
 * transfer (-n) through a system of the benchmark: far less sensitive to a loaded machine than
 * Gb/s, because it counts the work done, not how fast it was done (other load still costs some
 * cache and frequency). Prints each repetition, the median and the spread.
 */
import { parseArgs } from 'node:util';
import { createBed } from '../test/bed/bed.js';
import { waitForOutput } from '../test/bed/proc.js';
import { allSystems, extraSystems } from './systems.js';
import { median } from './table.js';

const { values: args } = parseArgs({
  options: {
    system: { type: 'string', default: 'tulle plain' },
    gb: { type: 'string', default: '2' },
    reps: { type: 'string', default: '5' },
    streams: { type: 'string', default: '1' },
    mtu: { type: 'string', default: '1440' },
  },
});
const gb = Number(args.gb), reps = Number(args.reps), streams = Number(args.streams);

async function main() {
  const system = [...allSystems, ...extraSystems].find((s) => s.name === args.system);
  if (!system) throw new Error(`no system '${args.system}'; one of: ${allSystems.map((s) => s.name).join(', ')}`);
  const bed = await createBed({ nodes: 2, tag: 'tg' });
  try {
    const server = bed.spawn(bed.nodes[1]!.ns, 'iperf3', ['-s', '--forceflush']);
    await waitForOutput(server, /Server listening/);
    const running = await system.up(bed, Number(args.mtu));
    if (!running.cpuSeconds) throw new Error(`${system.name} has no userspace threads to measure`);
    const perGB: number[] = [];
    try {
      for (let i = 0; i < reps; i++) {
        const c0 = running.cpuSeconds();
        const bytes = Math.round(gb * 1e9);
        const { stdout } = await bed.exec(bed.nodes[0]!.ns, 'timeout', ['300', 'iperf3', '-c', running.target, '-n', String(bytes), '-P', String(streams), '-J'], 310_000);
        const r = JSON.parse(stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
        const cpu = running.cpuSeconds() - c0;
        perGB.push(cpu / (r.end.sum_received.bytes / 1e9));
        console.log(`rep ${i + 1}: ${(r.end.sum_received.bytes / 1e9).toFixed(2)} GB received, ${cpu.toFixed(2)} CPU s, ${perGB[i]!.toFixed(3)} s/GB, ${(r.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gb/s`);
      }
    } finally {
      await running.down();
    }
    const s = [...perGB].sort((a, b) => a - b);
    console.log(`${system.name}, ${streams} stream(s): CPU s per GB median ${median(perGB).toFixed(3)}, min ${s[0]!.toFixed(3)}, max ${s[s.length - 1]!.toFixed(3)} (${reps} × ${gb} GB)`);
  } finally {
    await bed.teardown();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
