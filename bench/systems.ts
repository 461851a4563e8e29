/**
 * The systems the benchmark compares. Each one is brought up on the two-node bed, measured, and
 * taken down again, so variants (offloads, queues, encryption) need only one more entry here.
 */
import type { Bed } from '../test/bed/bed.js';
import { startStaticMesh } from '../test/bed/mesh.js';
import { run } from '../src/host/exec.js';
import { setupVxlan } from './vxlan.js';

export interface Running {
  /** overlay address of node 1, which node 0 sends to */
  target: string;
  /** CPU seconds the system's userspace threads have used so far (undefined: in-kernel) */
  cpuSeconds?: () => number;
  down(): Promise<void>;
}

export interface System {
  name: string;
  up(bed: Bed, mtu: number): Promise<Running>;
}

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

export const tullePlain: System = {
  name: 'tulle plain',
  async up(bed, mtu) {
    const mesh = await startStaticMesh(bed, { mtu });
    return {
      target: mesh.nodes[1]!.address,
      cpuSeconds: () => mesh.nodes.reduce((s, n) => s + n.dp.cpuSeconds(), 0),
      async down() {
        mesh.stop();
      },
    };
  },
};

export const defaultSystems: System[] = [kernelVxlan, tullePlain];
