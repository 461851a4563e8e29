/**
 * npm run bench:profile [-- --system 'tulle encrypted' --seconds 5 --streams 4 --out bench/results/profile-<date>.md]
 *
 * Where the cycles go during one iperf3 TCP stream through a system of the benchmark: a
 * system-wide `perf record` on the software cpu-clock event (this VM has no hardware counters),
 * summarised by thread and by symbol. Kernel VXLAN is the default comparison point.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBed } from '../test/bed/bed.js';
import { waitForOutput } from '../test/bed/proc.js';
import { run } from '../src/host/exec.js';
import { iperfTcp } from './iperf.js';
import { allSystems, extraSystems } from './systems.js';

const { values: args } = parseArgs({
  options: {
    system: { type: 'string', default: 'tulle plain' },
    seconds: { type: 'string', default: '5' },
    mtu: { type: 'string', default: '1440' },
    top: { type: 'string', default: '25' },
    // symbols under this share of all samples are left out of the report
    'min-percent': { type: 'string', default: '0.7' },
    streams: { type: 'string', default: '1' },
    // only these threads in the report (comma-separated comm names), e.g. on a shared machine
    comms: { type: 'string' },
    // also write the report here (bench/results/ keeps each round's)
    out: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const streams = Number(args.streams);
if (args.out) writeFileSync(args.out, '');
/** Prints a part of the report, and appends it to --out. */
function emit(text: string) {
  console.log(text);
  if (args.out) appendFileSync(args.out, text + '\n');
}

async function main() {
  const system = [...allSystems, ...extraSystems].find((s) => s.name === args.system);
  if (!system) throw new Error(`no system '${args.system}'; one of: ${allSystems.map((s) => s.name).join(', ')}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'tulle-profile-'));
  const data = path.join(dir, 'perf.data');
  const bed = await createBed({ nodes: 2, tag: 'tp' });
  try {
    const server = bed.spawn(bed.nodes[1]!.ns, 'iperf3', ['-s', '--forceflush']);
    await waitForOutput(server, /Server listening/);
    const running = await system.up(bed, Number(args.mtu));
    try {
      const load = iperfTcp(bed, bed.nodes[0]!.ns, running.target, seconds + 2, streams);
      // skip the first second (slow start), then sample the whole machine
      await new Promise((r) => setTimeout(r, 1000));
      await run('timeout', [String(seconds + 10), 'perf', 'record', '-q', '-e', 'cpu-clock', '-F', '999', '-a', '-g', '-o', data, '--', 'sleep', String(seconds)], { timeoutMs: (seconds + 15) * 1000 });
      const { gbps } = await load;
      emit(`# ${system.name}: iperf3 TCP ${streams} stream(s) ${gbps.toFixed(2)} Gb/s while profiled (${seconds} s, cpu-clock, all CPUs)\n`);
    } finally {
      await running.down();
    }
    const report = async (sort: string) =>
      (await run('perf', ['report', '-i', data, '--no-children', '--stdio', '--percent-limit', args['min-percent']!, '-g', 'none', '--sort', sort, ...(args.comms ? ['--comms', args.comms] : [])], { timeoutMs: 120_000 })).stdout
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .slice(0, Number(args.top))
        .join('\n');
    if (args.comms) emit(`(only ${args.comms}; percentages of all samples)\n`);
    emit('## by thread\n```\n' + (await report('comm')) + '\n```\n');
    emit('## by symbol\n```\n' + (await report('comm,sym')) + '\n```');
  } finally {
    await bed.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
