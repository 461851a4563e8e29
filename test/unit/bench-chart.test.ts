import { describe, expect, it } from 'vitest';
import { renderChart, type ChartColumn } from '../../bench/chart.js';
import { busySeconds } from '../../bench/machine-cpu.js';
import { parseValuesTable, spreadTable, valuesTable, type Column, type Values } from '../../bench/table.js';

interface Element {
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: Element[];
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
const decode = (s: string) =>
  s.replace(/&([a-z]+);/g, (m, e: string) => {
    if (!(e in ENTITIES)) throw new Error(`unknown entity ${m}`);
    return ENTITIES[e]!;
  });

/** A strict little XML reader: every tag closed in order, attributes quoted, no stray '<' or '&'. */
function parseXml(xml: string): Element {
  const root: Element = { name: '#root', attrs: {}, text: '', children: [] };
  const stack = [root];
  const re = /<\?[^?]*\?>|<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let at = 0;
  while (at < xml.length) {
    re.lastIndex = at;
    const m = re.exec(xml);
    if (!m) throw new Error(`not well-formed at ${at}: ${xml.slice(at, at + 40)}`);
    at = re.lastIndex;
    const [, close, name, attrs, selfClose, text] = m;
    const top = stack[stack.length - 1]!;
    if (text !== undefined) {
      if (/&(?![a-z]+;)/.test(text)) throw new Error(`bare '&' in ${text}`);
      top.text += decode(text);
    } else if (name && close) {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
    } else if (name) {
      const el: Element = { name, attrs: {}, text: '', children: [] };
      for (const a of (attrs ?? '').matchAll(/([\w:-]+)="([^"]*)"/g)) {
        if (a[1]! in el.attrs) throw new Error(`attribute ${a[1]} twice on <${name}>`);
        el.attrs[a[1]!] = decode(a[2]!);
      }
      top.children.push(el);
      if (!selfClose) stack.push(el);
    }
  }
  if (stack.length !== 1) throw new Error(`<${stack[stack.length - 1]!.name}> never closed`);
  if (root.children.length !== 1) throw new Error('not one root element');
  return root.children[0]!;
}

const all = (e: Element, pred: (e: Element) => boolean): Element[] => [...(pred(e) ? [e] : []), ...e.children.flatMap((c) => all(c, pred))];

const columns: ChartColumn[] = [
  { key: 'tcp1', title: 'TCP 1 stream', digits: 2, scale: 'ratio', better: 'higher' },
  { key: 'ping', title: 'ping <avg> & "p99"', digits: 3, scale: 'ratio', better: 'lower' },
  { key: 'loss', title: 'loss', digits: 1, scale: 'absolute', unit: '%', better: 'lower' },
];
const rows: Array<[string, Values]> = [
  ['kernel VXLAN', { tcp1: 10, ping: 0.05, loss: 0.1 }],
  ['veth limit', { tcp1: 40, ping: 0.02, loss: 0 }],
  ['tulle <plain> & co', { tcp1: 8, ping: 0.2, loss: 12.5 }],
  ['tulle encrypted', { tcp1: 4, ping: 0.25, loss: 30 }],
];

describe('the benchmark chart (SVG)', () => {
  const svg = renderChart({ title: 'a & b', columns, rows, yardstick: 'kernel VXLAN', limit: 'veth limit' });
  const doc = parseXml(svg);

  it('is well-formed XML with an svg root, names escaped', () => {
    expect(doc.name).toBe('svg');
    expect(doc.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const texts = all(doc, (e) => e.name === 'text').map((e) => e.text);
    expect(texts).toContain('tulle <plain> & co');
    expect(texts).toContain('ping <avg> & "p99"');
    expect(() => parseXml('<svg><g></svg>')).toThrow(/closes/); // the reader itself catches a bad nesting
  });

  it('draws one bar per system and column, the limit as a line instead of a bar', () => {
    const bars = all(doc, (e) => e.name === 'rect' && e.attrs.class === 'bar');
    expect(bars).toHaveLength(3 * columns.length);
    const seen = new Set(bars.map((b) => `${b.attrs['data-row']}/${b.attrs['data-column']}`));
    for (const [name] of rows.filter(([n]) => n !== 'veth limit')) for (const c of columns) expect(seen.has(`${name}/${c.key}`)).toBe(true);
    const limits = all(doc, (e) => e.name === 'line' && e.attrs.class === 'limit');
    // tcp1 and ping ratios; none for loss
    expect(limits.map((l) => Number(Number(l.attrs['data-value']).toFixed(6)))).toEqual([4, 0.4]);
  });

  it('places each bar by its ratio to the yardstick (absolute columns by value)', () => {
    const bars = all(doc, (e) => e.name === 'rect' && e.attrs.class === 'bar');
    const bar = (row: string, col: string) => bars.find((b) => b.attrs['data-row'] === row && b.attrs['data-column'] === col)!;
    expect(Number(bar('tulle encrypted', 'tcp1').attrs['data-value'])).toBeCloseTo(0.4);
    expect(Number(bar('tulle <plain> & co', 'ping').attrs['data-value'])).toBeCloseTo(4);
    expect(Number(bar('tulle encrypted', 'loss').attrs['data-value'])).toBe(30);
    // lengths in one panel are proportional to the values
    const w = (row: string, col: string) => Number(bar(row, col).attrs.width);
    expect(w('tulle <plain> & co', 'tcp1') / w('tulle encrypted', 'tcp1')).toBeCloseTo(2, 1);
    expect(w('tulle encrypted', 'loss') / w('tulle <plain> & co', 'loss')).toBeCloseTo(30 / 12.5, 1);
    // the yardstick's own bar is at 1× = where the yardstick line is drawn
    const line = all(doc, (e) => e.name === 'g' && e.attrs['data-column'] === 'tcp1')[0]!.children.find((e) => e.attrs.class === 'yardstick')!;
    const b = bar('kernel VXLAN', 'tcp1');
    expect(Number(b.attrs.x) + Number(b.attrs.width)).toBeCloseTo(Number(line.attrs.x1), 1);
  });

  it('leaves out a bar whose value is missing and says so', () => {
    const doc2 = parseXml(renderChart({ title: 't', columns, rows: [['kernel VXLAN', { tcp1: 10 }], ['tulle', { tcp1: 5, ping: 1 }]], yardstick: 'kernel VXLAN' }));
    const bars = all(doc2, (e) => e.name === 'rect' && e.attrs.class === 'bar');
    // tcp1 for both; ping: no yardstick value, no ratio; loss: nobody has one
    expect(bars.map((b) => `${b.attrs['data-row']}/${b.attrs['data-column']}`)).toEqual(['kernel VXLAN/tcp1', 'tulle/tcp1']);
    expect(all(doc2, (e) => e.name === 'text' && e.text === '—')).toHaveLength(4);
  });
});

describe('the results table read back', () => {
  it('gives the values valuesTable wrote, by column key', () => {
    const cols: Column[] = [{ key: 'a', title: 'A (x)', digits: 2 }, { key: 'b', title: 'B', digits: 1 }];
    const rows: Array<[string, Values]> = [['one', { a: 1.5, b: undefined }], ['two', { a: 0.25, b: 12 }]];
    const md = `title\n\n${valuesTable(cols, rows)}\n\nmore text\n`;
    expect(parseValuesTable(md, cols)).toEqual([['one', { a: 1.5 }], ['two', { a: 0.25, b: 12 }]]);
  });
});

describe('machine CPU from /proc/stat', () => {
  it('counts user, nice, system, irq and softirq, not idle, iowait or steal', () => {
    const stat = 'cpu  100 20 30 5000 70 4 6 900 0 0\ncpu0 50 10 15 2500 35 2 3 450 0 0\nintr 1\n';
    expect(busySeconds(stat)).toBeCloseTo((100 + 20 + 30 + 4 + 6) / 100);
    expect(() => busySeconds('intr 1\n')).toThrow(/cpu/);
  });
});

describe('control-plane chart', async () => {
  const { controlPlaneChart } = await import('../../bench/control-plane-chart.js');
  type R = Parameters<typeof controlPlaneChart>[0][number];
  const result = (n: number, routesMs: number, acquired: number): R => ({
    n, daemons: 10, writeMs: 1,
    start: { leaseMs: 1, readyMs: 2, routesMs, rssMiB: 100 + n / 1000, heapMiB: 20 },
    others: { routesMsMedian: 1, routesMsMax: 2 },
    idle: { seconds: 20, cpuPctMean: 0.4, cpuPctMax: 0.5, etcdRequestsPerS: 0 },
    rssMiB: { mean: 1, max: 2 },
    joins: { count: 100, p50: 10, p99: 30, max: 35 },
    storm: { count: 200, acquired, driverCpuPct: 60, driverCpuS: 4, etcdCpuS: 3, distinct: true, lostRaces: 1, listings: 200, acquiredMsMax: 6000, convergedMs: 6100 },
    etcd: {},
  });

  it('one bar per N in every panel, the values as measured; a storm that did not finish has no bar', () => {
    const svg = controlPlaneChart([result(100, 650, 200), result(10_000, 960, 150)], 'sub');
    const bars = [...svg.matchAll(/data-row="([^"]+)" data-column="([^"]+)" data-value="([^"]+)"/g)].map((m) => [m[1], m[2], Number(m[3])]);
    expect(bars.filter(([, c]) => c === 'routes')).toEqual([['N = 100', 'routes', 650], ['N = 10,000', 'routes', 960]]);
    expect(bars.filter(([, c]) => c === 'storm')).toEqual([['N = 100', 'storm', 6100]]);
    expect(bars.filter(([, c]) => c === 'stormCpu')).toEqual([['N = 100', 'stormCpu', 7], ['N = 10,000', 'stormCpu', 7]]);
    expect(svg).toContain('the storm did not finish within its deadline');
    expect(svg).not.toContain('Solid line');
  });
});

describe('spread table', () => {
  it("gives each column's min–max over the repetitions, one value when they agree, — when none; valuesTable is still the table read back", () => {
    const cols: Column[] = [{ key: 'a', title: 'A', digits: 2 }, { key: 'b', title: 'B', digits: 1 }, { key: 'c', title: 'C', digits: 0 }];
    const md = spreadTable(cols, [['x', [{ a: 0.85, b: 1 }, { a: 0.77, b: 1 }, { a: 0.87, b: 1 }]], ['y', [{ a: 2 }]]]);
    expect(md.split('\n').slice(2)).toEqual(['| x | 0.77–0.87 | 1.0 | — |', '| y | 2.00 | — | — |']);
    const both = `${valuesTable(cols, [['x', { a: 0.85, b: 1 }]])}\n\n${md}`;
    expect(parseValuesTable(both, cols)).toEqual([['x', { a: 0.85, b: 1 }]]);
  });
});
