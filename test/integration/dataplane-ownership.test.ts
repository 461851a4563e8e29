/**
 * Start-up and memory ownership of the native data plane (issue 8, item 4, points 5 and 6), in
 * a child process under an allocator shim (test/bed/alloc-shim.c):
 *  - a packet thread that cannot get its buffers makes start() fail with a clear error (it used
 *    to return silently while start() reported success: a dead queue);
 *  - the counters memory outlives the packet threads, whatever order the garbage collector
 *    finalizes the handle and the counters ArrayBuffer in (the buffer's finalizer used to free it
 *    while the threads still wrote to it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { run } from '../../src/host/exec.js';

const ADDON = path.resolve('native/build/Release/tulle.node');
const SLOTS_BYTES = 64 * 65600; // native/src/loop.h: DP_BATCH slots of DP_BUF_SIZE

describe('native data plane start-up and ownership', () => {
  let bed: Bed;
  let dir: string;
  let shim: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-own-'));
    shim = path.join(dir, 'alloc-shim.so');
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', shim, path.resolve('test/bed/alloc-shim.c')]);
    bed = await createBed({ nodes: 1, tag: 'own' });
  });
  afterAll(async () => {
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a module script in a child node (inside the node's namespace) under the shim. */
  const child = async (script: string, env: Record<string, string>) => {
    const ns = bed.nodes[0]!.ns;
    const full = `import { createRequire } from 'node:module'; const addon = createRequire(import.meta.url)(${JSON.stringify(ADDON)});\n${script}`;
    return run('ip', ['netns', 'exec', ns, 'env', `LD_PRELOAD=${shim}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, '--expose-gc', '--input-type=module', '-e', full], {
      timeoutMs: 60_000,
    });
  };

  it.each([false, true])('start fails, naming the thread, when a packet thread cannot get its buffers (offload %s)', async (offload) => {
    const ip = bed.nodes[0]!.underlayIp;
    const script = `
      try {
        const s = addon.start({ tunName: 'sf0', mtu: 1420, bindAddress: '${ip}', port: 0, offload: ${offload} });
        console.log('started');
        addon.stop(s.handle);
      } catch (e) { console.log('threw ' + e.code + ': ' + e.message); }`;
    // control: the shim alone changes nothing
    expect((await child(script, {})).stdout.trim()).toBe('started');
    const { stdout } = await child(script, { TULLE_SHIM_FAIL_ALIGNED_ALLOC: String(SLOTS_BYTES) });
    expect(stdout.trim()).toMatch(/^threw ERR_TULLE_DATAPLANE_START: packet thread (outbound|inbound)0: out of memory for its buffers$/);
  });

  it('keeps the counters alive while the packet threads run, when JavaScript drops their buffer first', async () => {
    const ip = bed.nodes[0]!.underlayIp;
    const queues = 3; // counters: 3 x 64 x 8 = 1536 bytes, a size the shim quarantines
    const script = `
      import dgram from 'node:dgram';
      const s = addon.start({ tunName: 'uf0', mtu: 1420, bindAddress: '${ip}', port: 8285, queues: ${queues}, offload: false });
      const handle = s.handle;
      const gone = new WeakRef(s.counters);
      delete s.counters;
      const sock = dgram.createSocket('udp4');
      const junk = Buffer.alloc(64, 0x99);
      for (let round = 0; round < 40; round++) {
        globalThis.gc();
        for (let i = 0; i < 20; i++) sock.send(junk, 8285, '${ip}', () => undefined); // counted by the inbound threads
        await new Promise((r) => setTimeout(r, 25));
      }
      addon.stop(handle);
      sock.close();
      console.log(gone.deref() === undefined ? 'buffer collected' : 'buffer alive');`;
    const { stdout, stderr } = await child(script, { TULLE_SHIM_QUARANTINE: '1536,1560' });
    expect(stdout.trim()).toBe('buffer collected');
    expect(stderr).not.toMatch(/written after free/);
  });
});
