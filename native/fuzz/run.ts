/**
 * npm run fuzz [-- --seconds 60 --seed 1 --targets inbound,gso --ci]
 *
 * Builds the libFuzzer harnesses of native/fuzz/ (clang, -fsanitize=fuzzer,address,undefined,
 * linked with the real native/src objects), then per target: writes its generated seed corpus,
 * replays the checked-in regression corpus (native/fuzz/regressions/<target>/, every input that
 * once found a bug), fuzzes for --seconds with a fixed --seed, and prints inputs executed,
 * coverage and findings. Then the differential fuzzer (differential.ts) compares the addon with
 * the TypeScript references for the same time. Exit status 1 on any finding.
 *
 * --ci: a short pass for every submission (3 s per target, 2 s per differential reference) unless
 * --seconds says otherwise. Findings (crashing inputs) are in native/fuzz/build/findings/<target>/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runDifferential } from './differential.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    seed: { type: 'string', default: '1' },
    targets: { type: 'string' },
    ci: { type: 'boolean', default: false },
    'no-differential': { type: 'boolean', default: false },
  },
});

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

const root = packageRoot();
const fuzzDir = path.join(root, 'native', 'fuzz');
const build = path.join(fuzzDir, 'build');
const seconds = Number(values.seconds ?? (values.ci ? 3 : 60));
const seed = Number(values.seed);
if (!(seconds > 0) || !Number.isInteger(seed) || seed < 0) throw new Error('--seconds must be > 0 and --seed an integer >= 0');

const all = readdirSync(fuzzDir)
  .filter((f) => /^fuzz-.*\.c$/.test(f))
  .map((f) => f.slice(5, -2))
  .sort();
const targets = values.targets ? values.targets.split(',') : all;
for (const t of targets) if (!all.includes(t)) throw new Error(`unknown fuzz target '${t}' (have: ${all.join(', ')})`);

const started = Date.now();
console.log(`building ${targets.length} fuzz targets (clang, -fsanitize=fuzzer,address,undefined)`);
execFileSync('make', ['-C', fuzzDir, '-j2', '--no-print-directory', `TARGETS=${targets.join(' ')}`], { stdio: ['ignore', 'ignore', 'inherit'] });
console.log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);

interface Result {
  target: string;
  inputs: number;
  cov: number;
  ft: number;
  corpus: number;
  regressions: number;
  findings: string[];
}

/** libFuzzer's last "cov: N ft: N corp: N/..." line and final stats. */
function stats(out: string): { inputs: number; cov: number; ft: number; corpus: number } {
  const num = (re: RegExp) => Number(out.match(re)?.[1] ?? 0);
  const lines = out.split('\n').filter((l) => / cov: \d+ ft: \d+/.test(l));
  const last = lines[lines.length - 1] ?? '';
  return {
    inputs: num(/stat::number_of_executed_units:\s*(\d+)/),
    cov: Number(last.match(/cov: (\d+)/)?.[1] ?? 0),
    ft: Number(last.match(/ft: (\d+)/)?.[1] ?? 0),
    corpus: Number(last.match(/corp: (\d+)/)?.[1] ?? 0),
  };
}

function finding(out: string, what: string): string {
  const reason =
    out.match(/INVARIANT FAILED[^\n]*\n[^\n]*/)?.[0] ??
    out.match(/ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|libFuzzer)[^\n]*/)?.[0] ??
    out.match(/runtime error:[^\n]*/)?.[0] ??
    'exit status';
  const unit = out.match(/Test unit written to (\S+)/)?.[1];
  return `${what}: ${reason.replace(/\s+/g, ' ').trim()}${unit ? ` -> ${path.relative(root, unit)}` : ''}`;
}

const results: Result[] = [];
for (const t of targets) {
  const bin = path.join(build, t);
  const seeds = path.join(build, 'seeds', t);
  const corpus = path.join(build, 'corpus', t);
  const findings = path.join(build, 'findings', t);
  const regress = path.join(fuzzDir, 'regressions', t);
  rmSync(seeds, { recursive: true, force: true });
  for (const d of [corpus, findings, seeds]) mkdirSync(d, { recursive: true });
  const env = { ...process.env, TULLE_FUZZ_SEEDS: seeds };
  const gen = spawnSync(bin, [], { env, encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`${t}: seed generation failed: ${gen.stderr}`);
  const r: Result = { target: t, inputs: 0, cov: 0, ft: 0, corpus: 0, regressions: 0, findings: [] };
  const common = ['-print_final_stats=1', '-rss_limit_mb=3072', '-timeout=60', `-artifact_prefix=${findings}/`];
  // 1. every input that once found a bug, run once each
  const saved = existsSync(regress) ? readdirSync(regress).map((f) => path.join(regress, f)) : [];
  r.regressions = saved.length;
  for (const file of saved) {
    const rep = spawnSync(bin, [...common, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (rep.status !== 0) r.findings.push(finding(rep.stdout + rep.stderr, `regression ${path.relative(root, file)}`));
  }
  // 2. fuzz from the seeds (and what earlier local runs kept in the corpus)
  const run = spawnSync(bin, [...common, `-seed=${seed}`, `-max_total_time=${seconds}`, corpus, seeds], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    timeout: (seconds + 120) * 1000,
  });
  const out = run.stdout + run.stderr;
  Object.assign(r, stats(out));
  if (run.status !== 0) r.findings.push(finding(out, 'fuzzing'));
  results.push(r);
  console.log(
    `${t.padEnd(10)} ${String(r.inputs).padStart(9)} inputs  cov ${String(r.cov).padStart(5)}  ft ${String(r.ft).padStart(6)}  corpus ${String(r.corpus).padStart(5)}  regressions ${r.regressions}  findings ${r.findings.length}`,
  );
  for (const f of r.findings) console.log(`  FINDING ${f}`);
}

let diffFindings = 0;
if (!values['no-differential'] && !values.targets) {
  const dsec = values.seconds ? seconds : values.ci ? 2 : seconds;
  for (const d of await runDifferential({ seconds: dsec, seed })) {
    console.log(`${('diff:' + d.name).padEnd(18)} ${String(d.inputs).padStart(9)} inputs  findings ${d.findings.length}`);
    for (const f of d.findings.slice(0, 5)) console.log(`  FINDING ${f}`);
    diffFindings += d.findings.length;
  }
}

const total = results.reduce((n, r) => n + r.findings.length, 0) + diffFindings;
console.log(`fuzz: ${total} finding(s) in ${((Date.now() - started) / 1000).toFixed(0)} s (seed ${seed}, ${seconds} s per target)`);
process.exitCode = total ? 1 : 0;
