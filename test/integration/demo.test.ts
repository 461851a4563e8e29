/** `tulle demo` end to end: it brings everything up, all pairs ping, iperf3 runs, and it cleans up. */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const demoNamespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('demo'));

describe('tulle demo', () => {
  it('runs, reports 6/6 ping pairs and a throughput, and leaves nothing behind', async () => {
    const before = demoNamespaces();
    const p = spawn(process.execPath, [path.resolve('bin/tulle'), 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => {
      // bounded: SIGTERM makes the demo tear down; SIGKILL if even that hangs
      const t = setTimeout(() => p.kill('SIGTERM'), 90_000);
      const k = setTimeout(() => p.kill('SIGKILL'), 105_000);
      p.once('exit', (c) => (clearTimeout(t), clearTimeout(k), resolve(c)));
    });
    expect(out).toMatch(/nodes ready: 3\/3/);
    expect(out).toMatch(/ping pairs: {2}6\/6/);
    expect(out).toMatch(/iperf3: {6}[\d.]+ Gbit\/s/);
    expect(out.match(/\/coreos\.com\/network\/subnets\/10\.244\.\d+\.0-24 {2}\{"PublicIP":"198\.18\.0\.1[012]"/g)).toHaveLength(3);
    expect(code).toBe(0);
    expect(demoNamespaces()).toEqual(before);
  });
});
