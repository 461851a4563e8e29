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

function plain(name: string, options: Partial<DataPlaneOptions> = {}): System {
  return {
    name,
    async up(bed, mtu) {
      const mesh = await startStaticMesh(bed, { ...options, mtu });
      return {
        target: mesh.nodes[1]!.address,
        cpuSeconds: () => mesh.nodes.reduce((s, n) => s + n.dp.cpuSeconds(), 0),
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
      async down() {
        mesh.stop();
      },
    };
  },
};

export const allSystems: System[] = [kernelVxlan, tullePlain, tullePlainNoOffload, tullePlainTwoQueues, tulleEncrypted];
