/** A data plane that records what it is told, for unit tests of the control plane. */
import type { Command } from '../../src/dataplane/commands.js';
import type { DataPlane } from '../../src/dataplane/dataplane.js';

export interface FakeDataPlane extends DataPlane {
  readonly applied: Command[];
  readonly stopped: boolean;
}

export function fakeDataPlane(over: Partial<DataPlane> = {}): FakeDataPlane {
  const applied: Command[] = [];
  let stopped = false;
  const dp: DataPlane = {
    tunName: 'tulle0',
    port: 8285,
    offload: { enabled: false, vnetHeader: false, csum: false, tso: false, uso: false, gso: false, gro: false, coalesceTcp: false, coalesceUdp: false, reuseportInnerFlow: false, inlineReplies: false, spinUs: 0, replyQueue: false },
    apply: (c) => void applied.push(...c),
    counters: () => ({}),
    countersPerQueue: () => [],
    peerTraffic: () => undefined,
    peerDrops: () => ({}),
    cpuSeconds: () => 0,
    stop: () => void (stopped = true),
    // encrypted-mode surface
    drainEvents: () => null,
    sendRaw: () => true,
    peerActivity: (ids) => new Float64Array(ids.length * 5),
    peerEndpoint: () => undefined,
    monotonicMs: () => 0,
    ...over,
  };
  return Object.defineProperties(dp, {
    applied: { get: () => applied },
    stopped: { get: () => stopped },
  }) as FakeDataPlane;
}
