/**
 * End to end through real namespaces and TUN devices, with every offload on, with offloads off,
 * with each one forced off, and with two queues: an exact TCP transfer arrives byte for byte,
 * iperf3 runs with no checksum errors in the receiving kernel's counters, a UDP_SEGMENT burst
 * arrives datagram for datagram, and the counters show which path the packets took.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataPlaneOptions } from '../../src/dataplane/dataplane.js';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { waitForOutput } from '../bed/proc.js';
import { tcpTransfer, udpGsoBurst } from './transfer.js';

type Counters = Record<string, bigint>;

async function kernelCounters(bed: Bed, ns: string): Promise<Record<string, number>> {
  const { stdout } = await bed.exec(ns, 'nstat', ['-asz', '--json']);
  const parsed = JSON.parse(stdout) as { kernel: Record<string, number> };
  return parsed.kernel;
}

const CSUM_ERRORS = ['TcpInCsumErrors', 'UdpInCsumErrors', 'Udp6InCsumErrors', 'IpExtInCsumErrors'];

interface Case {
  name: string;
  opts: Partial<DataPlaneOptions>;
  /** what must be true of the active offloads */
  active: (o: Record<string, boolean>) => void;
  /** what the counters of the sender (a) and receiver (b) must show after a TCP bulk transfer */
  path: (a: Counters, b: Counters) => void;
}

const CASES: Case[] = [
  {
    name: 'every offload',
    opts: {},
    active: (o) => expect(o).toMatchObject({ vnetHeader: true, csum: true, tso: true, uso: true, gso: true, gro: true, coalesceTcp: true, coalesceUdp: true, inlineReplies: false, replyQueue: true }),
    path: (a, b) => {
      expect(a.outbound_gso_splits).toBeGreaterThan(0n);
      // the data answers a's inbound writes (ACKs): steered to and read from a's reply queue; b's ACKs inline
      expect(a.outbound_reply_queue_reads).toBeGreaterThan(0n);
      expect(b.outbound_inline_reads).toBeGreaterThan(0n);
      expect(a.outbound_udp_sends).toBeLessThan(a.outbound_sent_packets!); // trains
      expect(b.inbound_udp_datagrams).toBeLessThan(b.inbound_packets!); // UDP_GRO trains
      expect(b.inbound_coalesced).toBeGreaterThan(0n);
      expect(b.inbound_tun_writes).toBeLessThan(b.inbound_delivered_packets!);
    },
  },
  {
    name: 'no offloads (the plain loop)',
    opts: { offload: false },
    active: (o) => expect(o).toMatchObject({ enabled: false, vnetHeader: false, tso: false, gso: false, gro: false }),
    path: (a, b) => {
      expect(a.outbound_tun_reads).toBe(0n);
      expect(b.inbound_udp_datagrams).toBe(0n);
    },
  },
  {
    name: 'checksum offload forced off (so no TSO/USO)',
    opts: { offload: { csum: false } },
    active: (o) => expect(o).toMatchObject({ vnetHeader: true, csum: false, tso: false, uso: false, coalesceUdp: false, gso: true }),
    path: (a) => {
      expect(a.outbound_gso_splits).toBe(0n);
      expect(a.outbound_csum_completed).toBe(0n);
    },
  },
  {
    name: 'TSO forced off',
    opts: { offload: { tso: false } },
    active: (o) => expect(o).toMatchObject({ tso: false, csum: true, uso: true }),
    path: (a) => {
      expect(a.outbound_gso_splits).toBe(0n);
      expect(a.outbound_csum_completed).toBeGreaterThan(0n);
    },
  },
  {
    name: 'USO forced off',
    opts: { offload: { uso: false } },
    active: (o) => expect(o).toMatchObject({ uso: false, tso: true, coalesceTcp: true, coalesceUdp: false }),
    path: (a) => expect(a.outbound_gso_splits).toBeGreaterThan(0n),
  },
  {
    name: 'UDP_SEGMENT forced off',
    opts: { offload: { gso: false } },
    active: (o) => expect(o).toMatchObject({ gso: false, tso: true }),
    path: (a) => expect(a.outbound_udp_sends).toBe(a.outbound_sent_packets),
  },
  {
    name: 'UDP_GRO forced off',
    opts: { offload: { gro: false } },
    active: (o) => expect(o).toMatchObject({ gro: false, gso: true }),
    path: (_a, b) => {
      expect(b.inbound_udp_datagrams).toBe(b.inbound_packets);
      expect(b.inbound_coalesced).toBeGreaterThan(0n); // recvmmsg batches still coalesce
    },
  },
  {
    name: 'coalescing forced off',
    opts: { offload: { coalesce: false } },
    active: (o) => expect(o).toMatchObject({ coalesceTcp: false, coalesceUdp: false, gro: true }),
    path: (_a, b) => {
      expect(b.inbound_coalesced).toBe(0n);
      expect(b.inbound_tun_writes).toBe(b.inbound_delivered_packets);
    },
  },
  {
    name: 'reply queue off (one TUN queue, read by the outbound thread only)',
    opts: { offload: { replyQueue: false } },
    active: (o) => expect(o).toMatchObject({ replyQueue: false, tso: true, gso: true, gro: true }),
    path: (a, b) => {
      expect(a.outbound_gso_splits).toBeGreaterThan(0n);
      expect(a.outbound_reply_queue_reads! + b.outbound_reply_queue_reads! + a.outbound_inline_reads! + b.outbound_inline_reads!).toBe(0n);
    },
  },
  {
    name: 'inline replies (the inbound thread forwards what the kernel answered)',
    opts: { offload: { inlineReplies: true, replyQueue: false } },
    active: (o) => expect(o).toMatchObject({ inlineReplies: true, tso: true }),
    path: (a, b) => {
      expect(a.outbound_gso_splits).toBeGreaterThan(0n);
      expect(a.outbound_inline_reads! + b.outbound_inline_reads!).toBeGreaterThan(0n);
    },
  },
  {
    name: 'spinning outbound thread (spinUs: it takes in what arrives while it is awake)',
    opts: { offload: { spinUs: 1000, replyQueue: false } },
    active: (o) => expect(o).toMatchObject({ spinUs: 1000, tso: true, gro: true }),
    path: (a, b) => {
      expect(a.outbound_gso_splits).toBeGreaterThan(0n);
      expect(a.inbound_spin_receives! + b.inbound_spin_receives!).toBeGreaterThan(0n);
    },
  },
  {
    name: 'two queues, every offload',
    opts: { queues: 2 },
    active: (o) => expect(o).toMatchObject({ tso: true, gso: true, gro: true, replyQueue: true }),
    path: (a, b) => {
      expect(a.outbound_gso_splits).toBeGreaterThan(0n);
      expect(a.outbound_reply_queue_reads).toBeGreaterThan(0n);
      expect(b.inbound_coalesced).toBeGreaterThan(0n);
    },
  },
];

describe('offloads end to end', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'of' });
  });
  afterAll(async () => {
    await bed?.teardown();
  });

  for (const c of CASES) {
    describe(c.name, () => {
      let mesh: Mesh;
      beforeAll(async () => {
        mesh = await startStaticMesh(bed, c.opts);
      });
      afterAll(() => mesh?.stop());

      it('reports what is active', () => {
        for (const m of mesh.nodes) c.active(m.dp.offload as unknown as Record<string, boolean>);
      });

      it('carries an exact TCP transfer and iperf3 with no checksum errors', async () => {
        const [a, b] = mesh.nodes;
        const before = await kernelCounters(bed, b!.node.ns);
        const { sent, received } = await tcpTransfer(bed, a!.node.ns, b!.node.ns, b!.address, 48 << 20);
        expect(received).toEqual(sent);

        const server = bed.spawn(b!.node.ns, 'iperf3', ['-s', '-1', '--forceflush', '-B', b!.address]);
        await waitForOutput(server, /Server listening/);
        const { stdout } = await bed.exec(a!.node.ns, 'timeout', ['20', 'iperf3', '-c', b!.address, '-t', '2', '-J'], 30_000);
        const r = JSON.parse(stdout) as { end: { sum_received: { bytes: number }; sum_sent: { bytes: number } } };
        expect(r.end.sum_received.bytes).toBeGreaterThan(1_000_000);

        const after = await kernelCounters(bed, b!.node.ns);
        for (const k of CSUM_ERRORS) expect({ [k]: (after[k] ?? 0) - (before[k] ?? 0) }).toEqual({ [k]: 0 });
        const ca = a!.dp.counters(), cb = b!.dp.counters();
        c.path(ca, cb);
        for (const k of ['inbound_drop_malformed', 'inbound_drop_spoofed_source', 'inbound_drop_oversized', 'inbound_drop_tun_write_error', 'inbound_drop_unknown_peer'])
          expect({ [k]: cb[k] }).toEqual({ [k]: 0n });
        expect(ca.outbound_drop_bad_vnet).toBe(0n);
        expect(ca.outbound_drop_send_error).toBe(0n);
      });

      it('delivers a UDP_SEGMENT burst datagram for datagram', async () => {
        const [a, b] = mesh.nodes;
        const splits = a!.dp.counters().outbound_gso_splits!;
        const sizes = await udpGsoBurst(bed, a!.node.ns, b!.node.ns, b!.address, 1000, 20 * 1000 + 345);
        expect(sizes).toEqual([...Array<number>(20).fill(1000), 345]);
        // with USO the TUN handed over one UDP super-packet and we split it
        const usoActive = (a!.dp.offload as unknown as Record<string, boolean>).uso;
        expect(a!.dp.counters().outbound_gso_splits! - splits).toBe(usoActive ? 1n : 0n);
      });
    });
  }
});
