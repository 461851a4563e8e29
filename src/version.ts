/** tulle's version, from its package.json (found by walking up from this file: src/ or dist/src/). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function tulleVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = path.join(dir, 'package.json');
    if (existsSync(f)) {
      const p = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (p.name === 'tulle') return `tulle ${p.version ?? 'unknown'}`;
    }
    const up = path.dirname(dir);
    if (up === dir) return 'tulle (unknown version)';
    dir = up;
  }
}
