// Encrypted mode starts and stops cleanly: fds, threads and the event callback all come back,
// sessions can be installed and retired on a running data plane, and session commands are
// refused in plain mode (nothing applied).
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startDataPlane } from '../../src/dataplane/dataplane.js';
import type { Command } from '../../src/dataplane/commands.js';

const fds = () => readdirSync('/proc/self/fd').length;
const threads = () => readdirSync('/proc/self/task').length;

const session = (localIndex: number, role: 'current' | 'next'): Command => ({
  op: 'installSession',
  peer: 1,
  localIndex,
  remoteIndex: 0x1234,
  role,
  sendKey: randomBytes(32),
  receiveKey: randomBytes(32),
});

describe('encrypted data plane lifecycle', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await createBed({ nodes: 1, tag: 'wgl' });
  });
  afterAll(async () => bed?.teardown());

  it('starts and stops 30 times with sessions installed, leaking no fd or thread', () => {
    const node = bed.nodes[0]!;
    const opts = { netns: node.nsPath, mtu: 1420, bindAddress: node.underlayIp, port: 51820, encrypted: true };
    startDataPlane({ ...opts, onEvents: () => undefined }).stop();
    const fd0 = fds(), th0 = threads();
    for (let i = 0; i < 30; i++) {
      const dp = startDataPlane({ ...opts, tunName: `wl${i}`, onEvents: () => undefined });
      dp.apply([
        { op: 'setPeer', peer: 1, address: '198.18.0.99', port: 51820 },
        { op: 'setRoute', subnet: '10.244.1.0/24', peer: 1 },
        session(0x10001, 'current'), // sends a keepalive to 198.18.0.99 (nobody there)
        session(0x20002, 'next'),
        { op: 'sendKeepalive', peer: 1 },
        { op: 'retireSession', localIndex: 0x10001 },
        { op: 'clearStaged', peer: 1 },
      ]);
      expect(dp.counters().control_wg_sent_packets).toBe(2n);
      // deleting the peer with a session still installed retires it: the peer comes back empty
      dp.apply([session(0x30003, 'current'), { op: 'deletePeer', peer: 1 }, { op: 'setPeer', peer: 1, address: '198.18.0.99', port: 51820 }]);
      const sent = dp.counters().control_wg_sent_packets!;
      dp.apply([{ op: 'sendKeepalive', peer: 1 }]);
      expect(dp.counters().control_wg_sent_packets).toBe(sent);
      expect(dp.drainEvents()).toBeNull();
      dp.stop();
      dp.stop();
    }
    expect(fds()).toBe(fd0);
    expect(threads()).toBe(th0);
  });

  it('refuses session commands in plain mode, applying nothing of the batch', () => {
    const node = bed.nodes[0]!;
    const dp = startDataPlane({ netns: node.nsPath, mtu: 1472, bindAddress: node.underlayIp, tunName: 'wlp' });
    try {
      expect(() => dp.apply([{ op: 'setPeer', peer: 1, address: '198.18.0.99', port: 8285 }, session(1, 'current')])).toThrow(
        /invalid data plane command at byte 28/,
      );
      expect(() => dp.drainEvents()).toThrow(/no running encrypted-mode data plane/);
    } finally {
      dp.stop();
    }
  });
});
