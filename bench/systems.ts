/**
 * The systems the benchmark compares. Each one is brought up on the two-node bed, measured, and
 * taken down again, so variants (offloads, queues, encryption) need only one more entry here.
 */
import type { Bed } from '../test/bed/bed.js';
import { startStaticMesh } from '../test/bed/mesh.js';
import { startEncryptedMesh } from '../test/bed/encrypted-mesh.js';
import type { DataPlaneOptions } from '../src/dataplane/dataplane.js';
import { run } from '../src/host/exec.js';
import { setupVxlan } from './vxlan.js';

export interface Running {
  /** overlay address of node 1, which node 0 sends to */
  target: string;
  /** CPU seconds the system's userspace threads have used so far (undefined: in-kernel) */
  cpuSeconds?: () => number;
  /** the same, node by node (for the idle CPU of each node) */
  nodeCpuSeconds?: () => number[];
  /** the data planes' counters, summed over nodes */
  counters?: () => Record<string, bigint>;
  down(): Promise<void>;
}

export interface System {
  name: string;
  up(bed: Bed, mtu: number): Promise<Running>;
}

/** No overlay at all: iperf3 straight over the underlay veths and bridge, the bed's ceiling. */
export const underlayVeth: System = {
  name: 'veth limit (no overlay)',
  async up(bed) {
    return { target: bed.nodes[1]!.underlayIp, async down() {} };
  },
};

export const kernelVxlan: System = {
  name: 'kernel VXLAN',
  async up(bed, mtu) {
    const [a, b] = bed.nodes as [Bed['nodes'][0], Bed['nodes'][0]];
    const vx = await setupVxlan(a, b, mtu);
    return {
      target: vx.addressOf(1),
      async down() {
        for (const n of [a, b]) await run('ip', ['-n', n.ns, 'link', 'del', 'vx0']);
      },
    };
  },
};

const sumCounters = (all: Array<Record<string, bigint>>) => {
  const out: Record<string, bigint> = {};
  for (const c of all) for (const [k, v] of Object.entries(c)) out[k] = (out[k] ?? 0n) + v;
  return out;
};

/** tulle in plain mode with these data-plane options. */
export function plain(name: string, options: Partial<DataPlaneOptions> = {}): System {
  return {
    name,
    async up(bed, mtu) {
      const mesh = await startStaticMesh(bed, { ...options, mtu });
      return {
        target: mesh.nodes[1]!.address,
        cpuSeconds: () => mesh.nodes.reduce((s, n) => s + n.dp.cpuSeconds(), 0),
        nodeCpuSeconds: () => mesh.nodes.map((n) => n.dp.cpuSeconds()),
        counters: () => sumCounters(mesh.nodes.map((n) => n.dp.counters())),
        async down() {
          mesh.stop();
        },
      };
    },
  };
}

export const tullePlain = plain('tulle plain');
export const tullePlainNoOffload = plain('tulle plain, offloads off', { offload: false });
export const tullePlainTwoQueues = plain('tulle plain, 2 queues', { queues: 2 });

export const tulleEncrypted: System = {
  name: 'tulle encrypted',
  async up(bed, mtu) {
    const mesh = await startEncryptedMesh(bed, { mtu });
    return {
      target: mesh.nodes[1]!.address,
      cpuSeconds: () => mesh.nodes.reduce((s, n) => s + n.enc.dataPlane.cpuSeconds(), 0),
      nodeCpuSeconds: () => mesh.nodes.map((n) => n.enc.dataPlane.cpuSeconds()),
      async down() {
        mesh.stop();
      },
    };
  },
};

/** Variants for the one-system tools (bench:idle, bench:cpu-per-gb, bench:profile), not in every bench run. */
export const extraSystems: System[] = [
  plain('tulle plain, inline replies', { offload: { inlineReplies: true } }),
  plain('tulle plain, spin 100 us', { offload: { spinUs: 100 } }),
  plain('tulle plain, spin 100 us, inline replies', { offload: { spinUs: 100, inlineReplies: true } }),
  plain('tulle plain, reply queue', { offload: { replyQueue: true } }),
  plain('tulle plain, 2 queues, reply queue', { queues: 2, offload: { replyQueue: true } }),
  plain('tulle plain, no reply queue', { offload: { replyQueue: false } }),
];

/** The yardstick first (ratios are to it), the limit second. */
export const allSystems: System[] = [kernelVxlan, underlayVeth, tullePlain, tullePlainNoOffload, tullePlainTwoQueues, tulleEncrypted];
