/**
 * npm run bench:idle [-- --system 'tulle plain' --idle-seconds 30 --pings 500 --spin-us 100 --inline-replies --reply-queue]
 * (--spin-us / --inline-replies / --reply-queue: tulle plain with those offload options instead of --system)
 *
 * Two numbers that stay meaningful on a loaded machine, for the latency work: each node's packet
 * threads' CPU over --idle-seconds with no traffic (% of one core), and the packet threads'
 * voluntary context switches (sleeps, each one a wake-up later) per ping round trip, read from
 * /proc/self/task/<tid>/status of the threads named tulle-*. Also prints ping avg/p99, which on a
 * loaded machine are noise.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createBed } from '../test/bed/bed.js';
import { pingStats } from './iperf.js';
import { allSystems, extraSystems, plain } from './systems.js';

const { values: args } = parseArgs({
  options: {
    system: { type: 'string', default: 'tulle plain' },
    'idle-seconds': { type: 'string', default: '30' },
    pings: { type: 'string', default: '500' },
    mtu: { type: 'string', default: '1440' },
    'spin-us': { type: 'string' },
    'inline-replies': { type: 'boolean', default: false },
    'reply-queue': { type: 'boolean' },
  },
});

/** Voluntary context switches of this process's tulle-* threads, summed. */
function packetThreadSleeps(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (!readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('tulle-')) continue;
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'));
      n += Number(m?.[1] ?? 0);
    } catch {
      /* the thread ended */
    }
  }
  return n;
}

async function main() {
  const spinUs = args['spin-us'] === undefined ? undefined : Number(args['spin-us']);
  const replyQueue = args['reply-queue'];
  const system = spinUs !== undefined || args['inline-replies'] || replyQueue !== undefined
    ? plain(`tulle plain, spin ${spinUs ?? 'default'} us${args['inline-replies'] ? ', inline replies' : ''}${replyQueue ? ', reply queue' : ''}`, { offload: { spinUs, inlineReplies: args['inline-replies'], replyQueue } })
    : [...allSystems, ...extraSystems].find((s) => s.name === args.system);
  if (!system) throw new Error(`no system '${args.system}'; one of: ${allSystems.map((s) => s.name).join(', ')}`);
  const bed = await createBed({ nodes: 2, tag: 'ti' });
  try {
    const running = await system.up(bed, Number(args.mtu));
    try {
      await pingStats(bed, bed.nodes[0]!.ns, running.target, 20); // neighbours, sessions
      if (running.nodeCpuSeconds) {
        const secs = Number(args['idle-seconds']);
        const c0 = running.nodeCpuSeconds();
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, secs * 1000));
        const el = (performance.now() - t0) / 1000;
        const pct = running.nodeCpuSeconds().map((c, i) => ((100 * (c - c0[i]!)) / el).toFixed(3));
        console.log(`${system.name}: idle CPU of the packet threads over ${el.toFixed(1)} s: ${pct.join(' %, ')} % of a core (node by node)`);
      }
      const pings = Number(args.pings);
      const s0 = packetThreadSleeps(), k0 = running.counters?.();
      const p = await pingStats(bed, bed.nodes[0]!.ns, running.target, pings);
      const sleeps = packetThreadSleeps() - s0, k1 = running.counters?.();
      if (k0 && k1) {
        const d = (k: string) => Number((k1[k] ?? 0n) - (k0[k] ?? 0n)) / pings;
        console.log(`${system.name}: per round trip: ${d('inbound_udp_datagrams').toFixed(2)} datagrams received, ${d('inbound_spin_receives').toFixed(2)} of them by a spinning outbound thread, ${d('outbound_tun_reads').toFixed(2)} TUN reads, ${d('outbound_inline_reads').toFixed(2)} of them inline, ${d('outbound_reply_queue_reads').toFixed(2)} from the inbound threads' own queues`);
      }
      console.log(`${system.name}: ${pings} pings (-i 0.005): ${(sleeps / pings).toFixed(2)} packet-thread sleeps per round trip; avg ${p.avgMs.toFixed(3)} ms, median ${p.p50Ms.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms (noisy on a loaded machine)`);
    } finally {
      await running.down();
    }
  } finally {
    await bed.teardown();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
