// Start and stop the data plane many times in one process: every fd and thread comes back.
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startDataPlane } from '../../src/dataplane/dataplane.js';
import { run } from '../../src/host/exec.js';

const fds = () => readdirSync('/proc/self/fd').length;
const threads = () => readdirSync('/proc/self/task').length;

describe('data plane lifecycle', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await createBed({ nodes: 1 });
  });
  afterAll(async () => bed?.teardown());

  it('starts and stops 50 times without leaking fds or threads', async () => {
    const node = bed.nodes[0]!;
    // warm up once so lazily created runtime resources are not counted as leaks
    startDataPlane({ netns: node.nsPath, mtu: 1472, bindAddress: node.underlayIp }).stop();
    const fd0 = fds(), th0 = threads();
    for (let i = 0; i < 50; i++) {
      const dp = startDataPlane({ netns: node.nsPath, mtu: 1472, bindAddress: node.underlayIp, tunName: `lc${i}` });
      expect(threads()).toBe(th0 + 2); // one outbound and one inbound thread
      dp.apply([{ op: 'setPeer', peer: 1, address: '198.18.0.99', port: 8285 }, { op: 'setRoute', subnet: '10.244.1.0/24', peer: 1 }]);
      dp.stop();
      dp.stop(); // idempotent
    }
    expect(fds()).toBe(fd0);
    expect(threads()).toBe(th0);
    // and the TUN devices went away with their fds
    const { stdout } = await run('ip', ['-n', node.ns, '-o', 'link', 'show']);
    expect(stdout).not.toMatch(/\blc\d+\b/);
  });

  it('reports a clear error for a port already in use, and leaks nothing', async () => {
    const node = bed.nodes[0]!;
    const first = startDataPlane({ netns: node.nsPath, mtu: 1472, bindAddress: node.underlayIp, tunName: 'busy0' });
    const fd0 = fds(), th0 = threads();
    try {
      expect(() => startDataPlane({ netns: node.nsPath, mtu: 1472, bindAddress: node.underlayIp, tunName: 'busy1' })).toThrow(
        /bind UDP 198\.18\.0\.10 port 8285: Address already in use/,
      );
      expect(fds()).toBe(fd0);
      expect(threads()).toBe(th0);
    } finally {
      first.stop();
    }
  });

  it('rejects bad options by name', () => {
    expect(() => startDataPlane({ mtu: 100 })).toThrow(/mtu must be 576\.\.65535/);
    expect(() => startDataPlane({ mtu: 1472, bindAddress: 'not-an-ip' })).toThrow(/bindAddress is not an IPv4 or IPv6 address/);
    expect(() => startDataPlane({ mtu: 1472, tunName: 'a-name-far-too-long-for-linux' })).toThrow(/tunName/);
  });
});
