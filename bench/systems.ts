/**
 * The systems the benchmark compares. Each one is brought up on the two-node bed, measured, and
 * taken down again, so variants (offloads, queues, encryption) need only one more entry here.
 */
import type { Bed } from '../test/bed/bed.js';
import { startStaticMesh } from '../test/bed/mesh.js';
import { startEncryptedMesh } from '../test/bed/encrypted-mesh.js';
import type { DataPlaneOptions } from '../src/dataplane/dataplane.js';
import { run } from '../src/host/exec.js';
import { setupVxlan, VXLAN_PORT } from './vxlan.js';
import { startWireguardGo, type WgGo } from '../test/wireguard/wireguard-go.js';
import { OVERLAY_NETWORK, overlayAddress, overlaySubnet } from '../test/bed/mesh.js';
import { WIREGUARD_DEFAULT_PORT } from '../src/wireguard/encrypted-node.js';
import { processCpuSeconds } from './machine-cpu.js';

export interface Running {
  /** overlay address of node 1, which node 0 sends to */
  target: string;
  /** CPU seconds the system's userspace threads have used so far (undefined: in-kernel) */
  cpuSeconds?: () => number;
  /** the same, node by node (for the idle CPU of each node) */
  nodeCpuSeconds?: () => number[];
  /** the data planes' counters, summed over nodes */
  counters?: () => Record<string, bigint>;
  /** node by node (index = bed node): its namespace, the system's device there (tulle's TUN,
   * vx0), the UDP port its socket listens on, and tulle's own counters (bench:udp-loss) */
  devices?: NodeDevice[];
  down(): Promise<void>;
}

export interface NodeDevice {
  ns: string;
  dev: string;
  port: number;
  counters?: () => Record<string, bigint>;
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
      devices: [a, b].map((n) => ({ ns: n.ns, dev: 'vx0', port: VXLAN_PORT })),
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
        devices: mesh.nodes.map((n) => ({ ns: n.node.ns, dev: n.dp.tunName, port: n.dp.port, counters: () => n.dp.counters() })),
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

/** tulle in encrypted mode with these offload options. */
export function encrypted(name: string, offload?: DataPlaneOptions['offload']): System {
  return {
    name,
    async up(bed, mtu) {
      const mesh = await startEncryptedMesh(bed, { mtu, offload });
      return {
        target: mesh.nodes[1]!.address,
        cpuSeconds: () => mesh.nodes.reduce((s, n) => s + n.enc.dataPlane.cpuSeconds(), 0),
        nodeCpuSeconds: () => mesh.nodes.map((n) => n.enc.dataPlane.cpuSeconds()),
        devices: mesh.nodes.map((n) => ({ ns: n.node.ns, dev: n.dp.tunName, port: n.dp.port, counters: () => n.dp.counters() })),
        async down() {
          mesh.stop();
        },
      };
    },
  };
}

export const tulleEncrypted = encrypted('tulle encrypted');

/**
 * Debian's wireguard-go, the userspace WireGuard most users would otherwise run: one device per
 * node, set up as flannel sets up its wireguard backend (the lease's first address, a route for
 * the network, each peer's subnet as allowed-ips). A handshake is made before measuring.
 */
export const wireguardGo: System = {
  name: 'wireguard-go (Debian)',
  async up(bed, mtu) {
    const devices: WgGo[] = [];
    const down = async () => {
      for (const d of devices) await d.stop();
    };
    try {
      for (const [i, node] of bed.nodes.entries())
        devices.push(
          await startWireguardGo(bed, node, {
            address: `${overlayAddress(i)}/32`,
            network: OVERLAY_NETWORK,
            port: WIREGUARD_DEFAULT_PORT,
            mtu,
            suffix: String(i),
          }),
        );
      for (const [i, d] of devices.entries())
        for (const [j, o] of devices.entries())
          if (i !== j)
            await d.addPeer({ publicKey: o.publicKey, endpoint: `${bed.nodes[j]!.underlayIp}:${WIREGUARD_DEFAULT_PORT}`, allowedIps: overlaySubnet(j) });
      // the first ping makes the handshake; a few tries ride out its retransmit
      await bed.exec(bed.nodes[0]!.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '5', overlayAddress(1)], 20_000);
    } catch (e) {
      await down();
      throw e;
    }
    return {
      target: overlayAddress(1),
      cpuSeconds: () => devices.reduce((s, d) => s + processCpuSeconds(d.pid), 0),
      nodeCpuSeconds: () => devices.map((d) => processCpuSeconds(d.pid)),
      down,
    };
  },
};

/** Variants for the one-system tools (bench:idle, bench:cpu-per-gb, bench:profile), not in every bench run. */
export const extraSystems: System[] = [
  plain('tulle plain, inline replies', { offload: { inlineReplies: true } }),
  plain('tulle plain, spin 100 us', { offload: { spinUs: 100 } }),
  plain('tulle plain, spin 100 us, inline replies', { offload: { spinUs: 100, inlineReplies: true } }),
  // bench:udp-loss: inbound without userspace GRO (each datagram its own TUN write)
  plain('tulle plain, no coalescing', { offload: { coalesce: false } }),
  encrypted('tulle encrypted, no coalescing', { coalesce: false }),
  plain('tulle plain, reply queue', { offload: { replyQueue: true } }),
  plain('tulle plain, 2 queues, reply queue', { queues: 2, offload: { replyQueue: true } }),
  plain('tulle plain, no reply queue', { offload: { replyQueue: false } }),
  // encrypted mode with sealing on the outbound thread (not the inbound thread's reply queue)
  encrypted('tulle encrypted, no reply queue', { replyQueue: false }),
];

/** The yardstick first (ratios are to it), the limit second. */
export const allSystems: System[] = [kernelVxlan, underlayVeth, tullePlain, tullePlainNoOffload, tullePlainTwoQueues, tulleEncrypted, wireguardGo];
