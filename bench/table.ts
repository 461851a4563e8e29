/** Medians and the markdown table the benchmark prints. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Row {
  metric: string;
  /** one value per system, in column order; undefined = not measured */
  values: Array<number | undefined>;
  digits?: number;
}

/** Columns: the yardstick first; every other column gets a ratio to it. */
export function renderTable(columns: string[], rows: Row[]): string {
  const [base, ...others] = columns;
  const head = ['metric', base!, ...others.flatMap((c) => [c, `${c} / ${base}`])];
  const fmt = (v: number | undefined, d: number) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(d));
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const d = r.digits ?? 2;
    const b = r.values[0];
    const cells = [r.metric, fmt(b, d)];
    r.values.slice(1).forEach((v) => cells.push(fmt(v, d), v === undefined || b === undefined || b === 0 ? '—' : `${(v / b).toFixed(2)}×`));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
