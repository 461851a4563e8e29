// The micro-benchmark entry points run and measure something (no speed is asserted here).
import { expect, it } from 'vitest';
import { loadAddon } from '../../src/dataplane/native.js';

it('runs every hot-path micro-benchmark', () => {
  const addon = loadAddon();
  for (const name of ['split', 'coalesce', 'coalesce-trusted', 'single', 'single-trusted', 'csum', 'complete', 'lookup', 'seal', 'open', 'seal-small', 'open-small'] as const) {
    const r = addon.microBench(name, 20);
    expect(r.nsPerOp, name).toBeGreaterThan(0);
  }
  expect(() => addon.microBench('nope' as 'split', 1)).toThrow(/unknown micro-benchmark/);
});
