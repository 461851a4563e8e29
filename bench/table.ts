/** Medians and the markdown tables the benchmark prints: one row per system. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Column {
  key: string;
  title: string;
  digits: number;
}

export type Values = Record<string, number | undefined>;

const fmt = (v: number | undefined, d: number) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Absolute medians, one row per system. */
export function valuesTable(columns: Column[], systems: Array<[string, Values]>): string {
  return table(
    ['system', ...columns.map((c) => c.title)],
    systems.map(([name, v]) => [name, ...columns.map((c) => fmt(v[c.key], c.digits))]),
  );
}

/** Each system's lowest and highest value over the repetitions, column by column ("min–max"). */
export function spreadTable(columns: Column[], systems: Array<[string, Values[]]>): string {
  return table(
    ['system: min–max over repetitions', ...columns.map((c) => c.title)],
    systems.map(([name, reps]) => [
      name,
      ...columns.map((c) => {
        const xs = reps.map((r) => r[c.key]).filter((x): x is number => x !== undefined && Number.isFinite(x));
        if (!xs.length) return '—';
        const [lo, hi] = [fmt(Math.min(...xs), c.digits), fmt(Math.max(...xs), c.digits)];
        return lo === hi ? lo : `${lo}–${hi}`;
      }),
    ]),
  );
}

/** Each system's median divided by the baseline's (the first system), column by column. */
export function ratioTable(columns: Column[], systems: Array<[string, Values]>): string {
  const [, base] = systems[0]!;
  return table(
    ['system / ' + systems[0]![0], ...columns.map((c) => c.title)],
    systems.slice(1).map(([name, v]) => [
      name,
      ...columns.map((c) => {
        const a = v[c.key], b = base[c.key];
        return a === undefined || b === undefined || b === 0 ? '—' : `${(a / b).toFixed(2)}×`;
      }),
    ]),
  );
}

/** The first table valuesTable wrote in a markdown text, read back: [system, values by column key]. */
export function parseValuesTable(md: string, columns: Column[]): Array<[string, Values]> {
  const lines = md.split('\n');
  const head = lines.findIndex((l) => l.startsWith('| system |'));
  if (head < 0) throw new Error('no "| system |" table in the text');
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
  const titles = cells(lines[head]!).slice(1);
  const keys = titles.map((t) => columns.find((c) => c.title === t)?.key);
  const rows: Array<[string, Values]> = [];
  for (const l of lines.slice(head + 2)) {
    if (!l.startsWith('|')) break;
    const [name, ...vs] = cells(l);
    const v: Values = {};
    vs.forEach((x, i) => {
      const k = keys[i];
      if (k && x !== '—' && x !== '') v[k] = Number(x);
    });
    rows.push([name!, v]);
  }
  return rows;
}
