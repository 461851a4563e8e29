/**
 * The benchmark's chart: one panel per column, one horizontal bar per system, written as plain
 * SVG text (no plotting dependency). Ratio panels plot each system's median divided by the
 * yardstick's (kernel VXLAN: the line at 1×) and mark the veth limit (iperf3 straight over the
 * underlay, no overlay) with a dashed line; absolute panels (loss, idle CPU: a ratio to a number
 * near zero means nothing) plot the value itself.
 */
import type { Values } from './table.js';

export interface ChartColumn {
  key: string;
  title: string;
  digits: number;
  /** 'ratio': value / yardstick's; 'absolute': the value, in `unit` */
  scale: 'ratio' | 'absolute';
  unit?: string;
  /** which way is better, said under the panel title */
  better: 'higher' | 'lower';
}

export interface ChartInput {
  title: string;
  subtitle?: string;
  columns: ChartColumn[];
  /** [system, medians]; the yardstick (ratios are to it) and the limit are named below */
  rows: Array<[string, Values]>;
  yardstick: string;
  /** the row drawn as the limit line in ratio panels (not as a bar), if present */
  limit?: string;
  /** the line under the panels (default: what the yardstick and limit lines are) */
  footer?: string;
}

const PANEL_W = 420, LABEL_W = 190, BAR_H = 16, GAP = 4, PANEL_HEAD = 40, PANEL_FOOT = 22, MARGIN = 16, TOP = 56;
const COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

const num = (x: number) => (Math.round(x * 100) / 100).toString();

/** The value a bar stands for: the ratio to the yardstick, or the value itself. */
export function barValue(col: ChartColumn, v: Values, base: Values): number | undefined {
  const a = v[col.key];
  if (a === undefined || !Number.isFinite(a)) return undefined;
  if (col.scale === 'absolute') return a;
  const b = base[col.key];
  return b === undefined || !Number.isFinite(b) || b === 0 ? undefined : a / b;
}

export function renderChart(input: ChartInput): string {
  const base = input.rows.find(([n]) => n === input.yardstick)?.[1] ?? {};
  const limit = input.limit ? input.rows.find(([n]) => n === input.limit)?.[1] : undefined;
  const bars = input.rows.filter(([n]) => n !== input.limit);
  const panelH = PANEL_HEAD + bars.length * (BAR_H + GAP) + PANEL_FOOT;
  const cols = 2;
  const width = MARGIN * 2 + cols * (LABEL_W + PANEL_W + MARGIN);
  const height = TOP + Math.ceil(input.columns.length / cols) * (panelH + MARGIN) + 24;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${MARGIN}" y="22" font-size="15" font-weight="bold">${escapeXml(input.title)}</text>`,
  ];
  if (input.subtitle) out.push(`<text x="${MARGIN}" y="40" fill="#555555">${escapeXml(input.subtitle)}</text>`);
  input.columns.forEach((col, ci) => {
    const x0 = MARGIN + (ci % cols) * (LABEL_W + PANEL_W + MARGIN) + LABEL_W;
    const y0 = TOP + Math.floor(ci / cols) * (panelH + MARGIN);
    const values = bars.map(([, v]) => barValue(col, v, base));
    const limitValue = limit ? barValue(col, limit, base) : undefined;
    const refs = col.scale === 'ratio' ? [1, limitValue ?? 0] : [];
    const max = Math.max(...values.map((x) => x ?? 0), ...refs, 1e-9) * 1.15;
    const px = (x: number) => (x / max) * (PANEL_W - 60);
    const unit = col.scale === 'ratio' ? `× ${input.yardstick}` : col.unit ?? '';
    out.push(`<g class="panel" data-column="${escapeXml(col.key)}">`);
    out.push(`<text x="${x0 - LABEL_W}" y="${y0 + 14}" font-weight="bold">${escapeXml(col.title)}</text>`);
    out.push(`<text x="${x0 - LABEL_W}" y="${y0 + 28}" fill="#555555">${escapeXml(`${unit}, ${col.better} is better`)}</text>`);
    // reference lines first, so bars and their labels are drawn over them
    const yb = y0 + PANEL_HEAD - 4, ye = y0 + PANEL_HEAD + bars.length * (BAR_H + GAP);
    out.push(`<line x1="${x0}" y1="${yb}" x2="${x0}" y2="${ye}" stroke="#333333"/>`);
    if (col.scale === 'ratio') {
      out.push(`<line class="yardstick" x1="${num(x0 + px(1))}" y1="${yb}" x2="${num(x0 + px(1))}" y2="${ye}" stroke="#333333" stroke-width="1.5"/>`);
      if (limitValue !== undefined) {
        const lx = num(x0 + px(limitValue));
        out.push(`<line class="limit" data-value="${limitValue}" x1="${lx}" y1="${yb}" x2="${lx}" y2="${ye}" stroke="#d62728" stroke-dasharray="4 3"/>`);
        out.push(`<text x="${lx}" y="${ye + 14}" fill="#d62728" text-anchor="middle">${escapeXml(`${input.limit} ${limitValue.toFixed(2)}×`)}</text>`);
      }
    }
    bars.forEach(([name, v], ri) => {
      const y = y0 + PANEL_HEAD + ri * (BAR_H + GAP);
      out.push(`<text x="${x0 - 6}" y="${y + BAR_H - 4}" text-anchor="end">${escapeXml(name)}</text>`);
      const bv = values[ri];
      if (bv === undefined) {
        out.push(`<text x="${x0 + 4}" y="${y + BAR_H - 4}" fill="#888888">—</text>`);
        return;
      }
      const raw = v[col.key]!;
      const label = col.scale === 'ratio' ? `${bv.toFixed(2)}× (${raw.toFixed(col.digits)})` : raw.toFixed(col.digits);
      out.push(
        `<rect class="bar" data-row="${escapeXml(name)}" data-column="${escapeXml(col.key)}" data-value="${bv}" x="${x0}" y="${y}" width="${num(px(bv))}" height="${BAR_H}" fill="${COLOURS[ri % COLOURS.length]}"/>`,
      );
      out.push(`<text x="${num(x0 + px(bv) + 4)}" y="${y + BAR_H - 4}">${escapeXml(label)}</text>`);
    });
    out.push('</g>');
  });
  const footer = input.footer ?? `Solid line: ${input.yardstick} (1×).${limit ? ` Dashed red: ${input.limit}, the ceiling of the test bed.` : ''} — : not measured or not attributable.`;
  out.push(`<text x="${MARGIN}" y="${height - 8}" fill="#555555">${escapeXml(footer)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
