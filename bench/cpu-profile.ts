/** Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, largest first. */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export function summariseProfile(p: CpuProfile, top = 20): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>(); // function@file:line → µs
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const n = byId.get(samples[i]!);
    if (!n) continue;
    const dt = deltas[i + 1] ?? 0; // a sample's delta is the time until the next one
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const k = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `total sampled ${(total / 1000).toFixed(0)} ms`,
    '',
    '| self ms | % | function |',
    '|---:|---:|---|',
    ...rows.map(([k, us]) => `| ${(us / 1000).toFixed(1)} | ${((100 * us) / Math.max(1, total)).toFixed(1)} | \`${k}\` |`),
  ].join('\n');
}
