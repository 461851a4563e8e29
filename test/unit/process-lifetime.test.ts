/**
 * What keeps a tulle process alive, and how it ends (issue 15). Each case runs a small program
 * in a child process over the built dist/, because what is under test is the process itself:
 * whether Node ends it for an empty event loop, and what it says when it ends.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dist = (p: string) => JSON.stringify(path.resolve('dist/src', p));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Run {
  code: number | null;
  lines: Array<Record<string, any>>;
  /** when each stdout line arrived, ms after spawn */
  at: number[];
  exitAt: number;
  stderr: string;
}

/** runs an ES module program with node; stdout JSON lines are collected with their arrival time */
function runProgram(source: string, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Run = { code: null, lines: [], at: [], exitAt: 0, stderr: '' };
    let buf = '';
    p.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
        const line = buf.slice(0, nl);
        try {
          r.lines.push(JSON.parse(line) as Record<string, any>);
        } catch {
          r.lines.push({ msg: line });
        }
        r.at.push(performance.now() - t0);
      }
    });
    p.stderr.on('data', (b: Buffer) => (r.stderr += b.toString()));
    const kill = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(kill);
      r.code = code;
      r.exitAt = performance.now() - t0;
      resolve(r);
    });
  });
}

/**
 * A node as a library user runs it, on the real clock, with a registry that makes it wait:
 * `config` — no network config yet; `etcd` — config there, but listing leases fails (etcd away).
 * Nothing else in the program holds the event loop; it awaits node.ready at the top level (as
 * bin/tulle awaited main). An unref'd timer stops the node after stopAtMs.
 */
function waitingNode(mode: 'config' | 'etcd', stopAtMs: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tulle-lifetime-'));
  dirs.push(dir);
  return `
    import { createNode } from ${dist('node/node.js')};
    import { createLogger } from ${dist('log/logger.js')};
    const registry = {
      getNetworkConfig: async () => ${mode === 'config' ? 'undefined' : `'{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}'`},
      listSubnets: async () => { throw new Error('etcd is away (test)'); },
      createSubnet: async () => { throw new Error('not reached'); },
      updateSubnet: async () => { throw new Error('not reached'); },
      watchSubnets: () => ({ cancel: async () => undefined }),
      close: async () => undefined,
    };
    const node = createNode({
      tunName: 'tulle0', publicIp: '198.18.0.10', underlayMtu: 1500, ipMasq: false, subnetFile: ${JSON.stringify(`${dir}/subnet.env`)},
      stateDir: ${JSON.stringify(`${dir}/state`)}, leaseTtlMs: 3600000, renewMarginMs: 600000, configKey: '/coreos.com/network/config',
    }, { registry, log: createLogger('info', false) });
    setTimeout(() => node.stop().then(() => console.log(JSON.stringify({ msg: 'stop returned' }))), ${stopAtMs}).unref();
    await node.ready.catch((e) => console.log(JSON.stringify({ msg: 'ready rejected', code: e.code })));
  `;
}

describe('a node on the real clock keeps its process alive while it waits, and not after stop()', () => {
  for (const mode of ['config', 'etcd'] as const) {
    it(mode === 'config' ? 'waiting for the network config' : 'waiting for etcd to list leases', async () => {
      // by 4.5 s the node is in a wait of 2 s or more; stop() must end it at once
      const STOP_AT = 4500;
      const r = await runProgram(waitingNode(mode, STOP_AT));
      const waits = r.lines.filter((l) => /no network config|cannot reach etcd/.test(String(l.msg)));
      expect(waits.length, JSON.stringify(r.lines.slice(-3)) + r.stderr).toBeGreaterThanOrEqual(mode === 'config' ? 1 : 3);
      expect(r.code, `exit status (13: Node gave up on the top-level await); last lines ${JSON.stringify(r.lines.slice(-3))}`).toBe(0);
      const stopped = r.lines.findIndex((l) => l.msg === 'stop returned');
      expect(stopped).toBeGreaterThanOrEqual(0);
      expect(r.at[stopped]!).toBeGreaterThanOrEqual(STOP_AT);
      expect(r.lines).toContainEqual({ msg: 'ready rejected', code: 'ERR_TULLE_STOPPED' });
      // nothing left behind: the process ends right after stop(), not when a retry timer would have fired
      expect(r.exitAt - r.at[stopped]!).toBeLessThan(1000);
    });
  }
});

describe('runToExit: the exit status is main\'s, and no exit is silent', () => {
  const program = (main: string) => `
    import { runToExit } from ${dist('cli/process-exit.js')};
    import { TulleError } from ${dist('util/errors.js')};
    runToExit(${main});
  `;

  it('main pending with nothing left that could settle it: a fatal line, exit 1 (not 0 or 13, silently)', async () => {
    const r = await runProgram(program('() => new Promise(() => undefined)'));
    expect(r.code).toBe(1);
    expect(r.lines.at(-1)).toMatchObject({ level: 60, code: 'ERR_TULLE_STALLED', exitCode: 1 });
  });

  it('main pending on an unref\'d timer: the same (the fault of issue 15)', async () => {
    const r = await runProgram(program('() => new Promise((r) => setTimeout(() => r(0), 5000).unref())'));
    expect(r.code).toBe(1);
    expect(r.exitAt).toBeLessThan(4000);
    expect(r.lines.at(-1)).toMatchObject({ level: 60, code: 'ERR_TULLE_STALLED', exitCode: 1 });
  });

  it('main rejects: a fatal line with the error\'s code, exit 1', async () => {
    const r = await runProgram(program(`async () => { throw new TulleError('ERR_TULLE_TEST', 'broken on purpose'); }`));
    expect(r.code).toBe(1);
    expect(r.lines.at(-1)).toMatchObject({ level: 60, code: 'ERR_TULLE_TEST', exitCode: 1, msg: 'broken on purpose' });
  });

  it('main rejects with something that has no code: ERR_TULLE_INTERNAL with the stack', async () => {
    const r = await runProgram(program(`async () => { throw new TypeError('oops'); }`));
    expect(r.code).toBe(1);
    expect(r.lines.at(-1)).toMatchObject({ level: 60, code: 'ERR_TULLE_INTERNAL', exitCode: 1, msg: 'oops', stack: expect.stringContaining('TypeError: oops') });
  });

  it('main resolves: its status, and nothing added to the output', async () => {
    const r = await runProgram(program('async () => 2'));
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([]);
    const ok = await runProgram(program('() => new Promise((r) => setTimeout(() => r(0), 300))'));
    expect(ok.code).toBe(0);
    expect(ok.lines).toEqual([]);
  });
});

describe('bin/tulle while its code is still loading', () => {
  it('a stop signal before `tulle run` has its handlers: a line that says so, exit 0 (not 143, silently)', async () => {
    // the preload holds the loading of dist/src/cli/main.js and says so on stderr: bin/tulle runs,
    // the daemon's own handlers do not exist yet
    const p = spawn(process.execPath, [`--import=${path.resolve('test/bed/slow-load.mjs')}`, path.resolve('bin/tulle'), 'run', '--etcd-endpoints=http://127.0.0.1:1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    const kill = setTimeout(() => p.kill('SIGKILL'), 30_000);
    await new Promise<void>((resolve) =>
      p.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        if (err.includes('slow-load: holding main.js')) resolve();
      }),
    );
    p.kill('SIGTERM');
    const code = await exited;
    clearTimeout(kill);
    expect(code).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([expect.objectContaining({ level: 30, signal: 'SIGTERM', exitCode: 0, msg: expect.stringMatching(/^exiting: stopped while starting/) })]);
  });
});
