/**
 * The image recipe (deploy/image), checked as far as this machine allows: no container engine
 * runs here and no registry is reachable, so the image itself is not built. What is checked:
 * every path the Containerfile copies from the repository exists and is not ignored, the build
 * stage gets every source `npm pack` ships and those sources alone compile, the runtime stage has
 * the tools tulle runs; and the recipe's own layout step (assemble.sh, run by the build stage)
 * really produces a runtime from `npm pack` that `tulle --version` starts from, addon loaded.
 * build.sh's choice of builder is checked with stand-in builders on PATH (the real ones cannot
 * run here).
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';

const sh = promisify(execFile);
const ROOT = path.resolve('.');
const FILE = 'deploy/image/Containerfile';
const APP = '/opt/tulle';
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; files: string[]; dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** Containerfile instructions, continuation lines joined, comments dropped, by stage. */
function instructions(): Array<{ stage: string; op: string; args: string }> {
  const text = readFileSync(FILE, 'utf8').replace(/\\\n/g, ' ');
  const out: Array<{ stage: string; op: string; args: string }> = [];
  let stage = '';
  for (const line of text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op === 'FROM') stage = / AS (\S+)$/i.exec(args)?.[1] ?? '';
    out.push({ stage, op: op!, args });
  }
  return out;
}

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'tulle-image-'));
  onTestFinished(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('deploy/image/Containerfile', () => {
  const ins = instructions();
  const copies = ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));

  it('copies only paths that exist and that .dockerignore lets through', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources = copies.flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) {
      expect(existsSync(s), s).toBe(true);
      for (const pattern of ignored) expect(s === pattern || s.startsWith(`${pattern}/`), `${s} is ignored by ${pattern}`).toBe(false);
    }
  });

  it("the build stage gets every source npm pack ships, and what npm ci and tsc need", () => {
    const sources = new Set(copies.filter((c) => c.stage === 'build').flatMap((c) => c.args.split(/\s+/).slice(0, -1)));
    for (const f of pkg.files.filter((f) => f !== 'dist')) expect(sources.has(f), f).toBe(true); // dist/ is built there
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'src']) expect(sources.has(f), f).toBe(true);
    expect(ins.filter((i) => i.stage === 'build' && i.op === 'RUN').map((i) => i.args)).toEqual(['npm ci --no-audit --no-fund', `deploy/image/assemble.sh /src ${APP}`]);
  });

  it("the build stage's sources alone compile (npm ci runs tsc there): nothing src imports is left out", async () => {
    const ctx = tempDir();
    for (const c of copies.filter((x) => x.stage === 'build')) {
      const parts = c.args.split(/\s+/);
      const dest = parts.at(-1)!;
      for (const s of parts.slice(0, -1)) {
        const to = path.join(ctx, dest.endsWith('/') ? path.join(dest, path.basename(s)) : dest);
        mkdirSync(path.dirname(to), { recursive: true });
        cpSync(s, to, { recursive: true });
      }
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(ctx, 'node_modules'));
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    await expect(sh(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit'], { cwd: ctx, timeout: 120_000 })).resolves.toBeDefined();
  });

  it('the runtime is node slim with the tools tulle runs, /opt/tulle from the build stage, bin/tulle as the entry', () => {
    const runtime = ins.filter((i) => i.stage === 'runtime');
    expect(runtime[0]!.args).toMatch(/node:\$\{NODE_TAG\}-slim AS runtime$/);
    const apt = runtime.find((i) => i.op === 'RUN')!.args;
    // ip (links, routes, TUN address), iptables/iptables-save (flanneld's rules), nft (EnableNFTables)
    for (const p of ['iproute2', 'iptables', 'nftables']) expect(apt).toMatch(new RegExp(`install -y --no-install-recommends[^&]*\\b${p}\\b`));
    expect(runtime.filter((i) => i.op === 'COPY').map((i) => i.args)).toEqual([`--from=build ${APP} ${APP}`]);
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')!.args).toBe(`["${APP}/bin/tulle"]`);
    // the manifests start what the image holds
    for (const f of readdirSync('deploy/kubernetes')) expect(readFileSync(`deploy/kubernetes/${f}`, 'utf8')).toContain(`command: [${APP}/bin/tulle, run]`);
  });
});

describe('deploy/image/assemble.sh (the build stage\'s layout step)', () => {
  it("lays out exactly what npm pack ships, production dependencies and the addon; tulle --version runs from it", async () => {
    const dest = path.join(tempDir(), 'opt', 'tulle');
    // offline: the dependencies come from the npm cache that installed this checkout
    await sh('bash', ['deploy/image/assemble.sh', ROOT, dest], { env: { ...process.env, npm_config_offline: 'true' }, timeout: 120_000 });
    const packed = JSON.parse((await sh('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { timeout: 60_000 })).stdout) as Array<{ files: Array<{ path: string }> }>;
    const want = packed[0]!.files.map((f) => f.path).sort();
    const walk = (dir: string, rel = ''): string[] =>
      readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
        const r = rel ? `${rel}/${e.name}` : e.name;
        return e.isDirectory() ? walk(dir, r) : [r];
      });
    const top = readdirSync(dest);
    const got = walk(dest).filter((f) => !f.startsWith('node_modules/') && f !== 'package-lock.json' && f !== 'native/build/Release/tulle.node').sort();
    expect(got).toEqual(want);
    expect(top).toContain('node_modules');
    // production dependencies only
    const mods = readdirSync(path.join(dest, 'node_modules'));
    for (const d of Object.keys(pkg.dependencies)) expect(existsSync(path.join(dest, 'node_modules', d)), d).toBe(true);
    for (const d of ['typescript', 'vitest', 'yaml', 'kubernetes-models']) expect(mods, d).not.toContain(d);

    const out = await sh(process.execPath, [path.join(dest, 'bin/tulle'), '--version'], { cwd: tmpdir(), timeout: 60_000 });
    const text = out.stdout + out.stderr;
    expect(text).toContain(`tulle ${pkg.version}`);
    expect(text).toContain(`native addon: ${dest}/native/build/Release/tulle.node`);
  });

  it('refuses a checkout that is not built, saying what to run', async () => {
    const src = tempDir();
    writeFileSync(path.join(src, 'package.json'), '{}');
    await expect(sh('bash', ['deploy/image/assemble.sh', src, path.join(src, 'out')])).rejects.toMatchObject({ stderr: expect.stringContaining('run npm ci') });
  });
});

describe('deploy/image/build.sh', () => {
  /** PATH with only the stand-ins given (each prints its arguments) and the system's basics, without /usr/local/bin's docker */
  function fakePath(builders: Record<string, string>): string {
    const bin = path.join(tempDir(), 'bin');
    mkdirSync(bin);
    for (const [name, body] of Object.entries(builders)) {
      writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(path.join(bin, name), 0o755);
    }
    return `${bin}:/usr/bin:/bin`;
  }
  const build = (env: NodeJS.ProcessEnv) => sh('bash', ['deploy/image/build.sh', '--pull=never'], { env: { HOME: process.env.HOME, ...env }, timeout: 30_000 });

  it('builds with the first usable builder, tagged with package.json\'s version', async () => {
    const r = await build({ PATH: fakePath({ podman: 'echo podman "$@"', docker: 'echo docker "$@"' }) });
    expect(r.stdout.trim()).toBe(`podman build -f ${ROOT}/${FILE} -t localhost/tulle:${pkg.version} --pull=never ${ROOT}`);
    const b = await build({ PATH: fakePath({ buildah: 'echo buildah "$@"' }), IMAGE: 'registry.example/tulle' });
    expect(b.stdout.trim()).toBe(`buildah build -f ${ROOT}/${FILE} -t registry.example/tulle:${pkg.version} --pull=never ${ROOT}`);
  });

  it('docker only when its engine answers; otherwise it says why it cannot build', async () => {
    const up = await build({ PATH: fakePath({ docker: 'echo docker "$@"' }) });
    expect(up.stdout.trim()).toBe(`docker build -f ${ROOT}/${FILE} -t localhost/tulle:${pkg.version} --pull=never ${ROOT}`);
    const down = build({ PATH: fakePath({ docker: '[ "$1" = info ] && exit 1; echo docker "$@"' }) });
    await expect(down).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('no podman or buildah on PATH, and docker cannot reach an engine') });
    await expect(build({ PATH: fakePath({}) })).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`cannot build localhost/tulle:${pkg.version}: no podman or buildah on PATH, and no docker`) });
  });
});
