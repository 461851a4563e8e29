/**
 * The reply queue (native/src/offload.h, replyQueue, on by default): the inbound thread writes
 * through a TUN queue of its own, so the kernel steers what answers those packets back to that
 * queue and the inbound thread forwards it; the outbound threads are not woken for answers.
 * Checked with pings (the kernel of b answers at once, inside the inbound thread's write) through
 * the counters and the voluntary context switches (sleeps) of the tulle-out threads, against the
 * same mesh with replyQueue: false. Bulk correctness with it on: offload-e2e, multi-queue tests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { tcpTransfer } from './transfer.js';

const PINGS = 40;

/** Sleeps so far of this process's packet threads whose name starts with prefix. */
function sleeps(prefix: string): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (!readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith(prefix)) continue;
      n += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* the thread ended */
    }
  }
  return n;
}

describe.each([
  { replyQueue: true, queues: 1 },
  { replyQueue: true, queues: 2 },
  { replyQueue: false, queues: 1 },
])('pings with %j', ({ replyQueue, queues }) => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'rq' });
    mesh = await startStaticMesh(bed, replyQueue ? { queues } : { queues, offload: { replyQueue: false } });
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it(replyQueue ? 'are answered from the inbound threads\' own TUN queues, the outbound threads asleep' : 'wake the outbound threads (the control)', async () => {
    const [a, b] = mesh.nodes;
    for (const m of mesh.nodes) expect(m.dp.offload.replyQueue).toBe(replyQueue);
    await bed.exec(a!.node.ns, 'ping', ['-c', '3', '-i', '0.05', '-W', '5', b!.address], 30_000); // flows learned
    const a0 = a!.dp.counters(), b0 = b!.dp.counters(), out0 = sleeps('tulle-out');
    await bed.exec(a!.node.ns, 'ping', ['-c', String(PINGS), '-i', '0.02', '-W', '5', b!.address], 60_000);
    const a1 = a!.dp.counters(), b1 = b!.dp.counters(), outSleeps = sleeps('tulle-out') - out0;
    const d = (x: Record<string, bigint>, y: Record<string, bigint>, k: string) => Number(y[k]! - x[k]!);
    const seen = {
      reads: d(a0, a1, 'outbound_tun_reads') + d(b0, b1, 'outbound_tun_reads'),
      bInline: d(b0, b1, 'outbound_inline_reads'),
      bReplyQueue: d(b0, b1, 'outbound_reply_queue_reads'),
      aReplyQueue: d(a0, a1, 'outbound_reply_queue_reads'),
      outSleeps,
    };
    // Every request and reply went through a TUN read (the kernel may add a packet of its own).
    // The first answer after a flow entry aged out (3 s: a slow ping start under the sanitizers)
    // goes where the hash says, the kernel learning the queue only after the write: one may miss.
    const want = replyQueue
      ? {
          reads: seen.reads >= 2 * PINGS,
          // b's kernel answered inside the inbound thread's write: read right after it, from its own queue
          bInline: seen.bInline >= PINGS - 1,
          bReplyQueue: seen.bReplyQueue >= PINGS - 1,
          // a's requests: the flow was last written by a's inbound thread (the replies), so its queue
          aReplyQueue: seen.aReplyQueue >= PINGS - 1,
          outSleeps: seen.outSleeps < PINGS / 4,
        }
      : {
          reads: seen.reads >= 2 * PINGS,
          bInline: seen.bInline === 0,
          bReplyQueue: seen.bReplyQueue === 0,
          aReplyQueue: seen.aReplyQueue === 0,
          outSleeps: seen.outSleeps > PINGS, // two per round trip: one on each node
        };
    expect({ seen, ok: want }).toEqual({ seen, ok: { reads: true, bInline: true, bReplyQueue: true, aReplyQueue: true, outSleeps: true } });
  });

  it('carries an exact TCP transfer in each direction', async () => {
    const [a, b] = mesh.nodes;
    for (const [from, to] of [[a!, b!], [b!, a!]] as const) {
      const { sent, received } = await tcpTransfer(bed, from.node.ns, to.node.ns, to.address, 16 << 20, 7005);
      expect(received).toEqual(sent);
    }
  });
});
