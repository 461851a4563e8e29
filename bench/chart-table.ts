/**
 * npm run bench:chart -- bench/results/<date>.md [...]
 *
 * Draws the chart of a results table the benchmark wrote (its first table of medians) next to
 * it, as <date>.svg: for rounds measured before the benchmark drew charts, or after editing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderChart } from './chart.js';
import { chartColumns, columns } from './columns.js';
import { parseValuesTable } from './table.js';
import { kernelVxlan, underlayVeth } from './systems.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: npm run bench:chart -- bench/results/<date>.md [...]');
  process.exitCode = 2;
}
for (const file of files) {
  const md = readFileSync(file, 'utf8');
  const rows = parseValuesTable(md, columns);
  const subtitle = md.split('\n').find((l) => l.startsWith('machine:'))?.slice('machine: '.length);
  const svg = file.replace(/\.md$/, '') + '.svg';
  writeFileSync(svg, renderChart({
    title: `tulle against kernel VXLAN — ${path.basename(file, '.md')}`,
    subtitle,
    columns: chartColumns,
    rows,
    yardstick: kernelVxlan.name,
    limit: underlayVeth.name,
  }));
  console.log(`wrote ${svg} (${rows.length} rows)`);
}
