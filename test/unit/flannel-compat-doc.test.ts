/** docs/flannel-compat.md stays true to the tables in code: every flag, field and named test. */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_ROWS, parserFieldNames, renderCompatDoc } from '../../src/config/compat-doc.js';
import { FLAG_TABLE } from '../../src/config/flag-table.js';

const doc = readFileSync('docs/flannel-compat.md', 'utf8');

describe('docs/flannel-compat.md', () => {
  it('has its generated tables up to date (npm run docs:compat)', () => {
    expect(renderCompatDoc(doc)).toBe(doc);
  });

  it('has a row for every flag of the flag table', () => {
    expect(FLAG_TABLE.filter((r) => !doc.includes(`| \`--${r.name}\` |`)).map((r) => r.name)).toEqual([]);
  });

  it('has a row for every config field the parser reads', () => {
    const rows = new Set(CONFIG_ROWS.map((r) => r.field));
    expect(parserFieldNames().filter((f) => !rows.has(f))).toEqual([]);
    for (const f of rows) expect(doc).toContain(`| \`${f}\` |`);
  });

  it('names only tests that exist, and every supported row names one', () => {
    const named = [...FLAG_TABLE.flatMap((r) => r.tests ?? []), ...CONFIG_ROWS.flatMap((r) => r.tests)];
    expect(named.filter((t) => !existsSync(t))).toEqual([]);
    const inDoc = [...doc.matchAll(/`((?:unit|integration|wireguard|offload|cni)\/[\w./-]+\.test\.ts)`/g)].map((m) => `test/${m[1]}`);
    expect(inDoc.filter((t) => !existsSync(t))).toEqual([]);
    expect(FLAG_TABLE.filter((r) => (r.treatment === 'same' || r.treatment === 'differs') && !r.tests?.length).map((r) => r.name)).toEqual([]);
  });

  it('is linked from the README', () => {
    expect(readFileSync('README.md', 'utf8')).toContain('docs/flannel-compat.md');
  });
});
