/**
 * `tulle --version` (src/cli/version-command.ts): version, the addon's build, and the offloads the
 * kernel accepts — the same a data plane started here gets — with no probe device left behind;
 * `tulle run --version` keeps flanneld's one line on stderr.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadAddon } from '../../src/dataplane/native.js';
import { startDataPlane } from '../../src/dataplane/dataplane.js';
import { kernelOffloadNames } from '../../src/dataplane/offload-probe.js';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

function tulle(args: string[], nobody = false): Promise<{ code: number; stdout: string; stderr: string; pid: number }> {
  const cmd = [path.resolve('bin/tulle'), ...args];
  const [file, argv] = nobody ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...cmd]] : [process.execPath, cmd];
  return new Promise((resolve) => {
    const p = execFile(file as string, argv as string[], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, pid: p.pid! }),
    );
  });
}

describe('tulle --version', () => {
  it("prints the version, the addon's build and the kernel's offloads, and leaves no probe TUN", async () => {
    const r = await tulle(['--version']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`tulle ${VERSION}`);
    expect(lines[1]).toMatch(new RegExp(`^node ${process.version.replace(/\./g, '\\.')}, Linux `));
    expect(lines[2]).toBe(`native addon: ${path.resolve('native/build/Release/tulle.node')} (${loadAddon().buildInfo})`);
    expect(loadAddon().buildInfo).toMatch(/^N-API \d+, (optimized|unoptimized)/);
    const dp = startDataPlane({ tunName: `tver${process.pid % 100000}`, bindAddress: '127.0.0.1', port: 0, mtu: 1400 });
    const names = kernelOffloadNames(dp.offload);
    dp.stop();
    expect(lines[3]).toBe(`kernel offloads: ${names.join(' ')}`);
    const links = await new Promise<string>((res) => execFile('ip', ['-o', 'link', 'show'], (_e, out) => res(out)));
    expect(links).not.toContain(`tprobe${r.pid % 1_000_000}`);
  });

  it('says the offloads are not probed for a caller who is not root', async () => {
    const r = await tulle(['--version'], true);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`tulle ${VERSION}`);
    expect(r.stdout).toContain('kernel offloads: not probed (creating a TUN needs root)\n');
  });

  it('tulle run --version: one line on stderr, as flanneld', async () => {
    const r = await tulle(['run', '--version']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: `tulle ${VERSION}\n` });
  });
});
