/**
 * The control-plane bench's chart (bench/chart.ts's panels): one bar per N, one panel per figure
 * that issue 14 sets a target for, each with its target in the panel's title. Pure: results in,
 * SVG text out.
 */
import { renderChart, type ChartColumn } from './chart.js';
import type { Values } from './table.js';
import type { SizeResult } from './control-plane.js';

const COLUMNS: ChartColumn[] = [
  { key: 'routes', title: 'daemon start → all N routes (target < 2,000)', digits: 0, scale: 'absolute', unit: 'ms', better: 'lower' },
  { key: 'rss', title: 'daemon 0 RSS (target < 150)', digits: 1, scale: 'absolute', unit: 'MiB', better: 'lower' },
  { key: 'joinP99', title: 'new lease → every daemon, p99 (target < 1,000)', digits: 0, scale: 'absolute', unit: 'ms', better: 'lower' },
  { key: 'storm', title: '200-node join storm → converged (target < 10,000)', digits: 0, scale: 'absolute', unit: 'ms', better: 'lower' },
  { key: 'idle', title: 'idle CPU per daemon, max (target < 1)', digits: 2, scale: 'absolute', unit: '% of a core', better: 'lower' },
  { key: 'stormCpu', title: 'storm: CPU of the joiners + etcd', digits: 1, scale: 'absolute', unit: 's', better: 'lower' },
];

export function controlPlaneValues(r: SizeResult): Values {
  const converged = r.storm.acquired === r.storm.count ? r.storm.convergedMs : undefined;
  return {
    routes: r.start.routesMs, rss: r.start.rssMiB, joinP99: r.joins.p99, storm: converged, idle: r.idle.cpuPctMax,
    stormCpu: r.storm.driverCpuS + r.storm.etcdCpuS,
  };
}

export function controlPlaneChart(rs: readonly SizeResult[], subtitle: string): string {
  const rows: Array<[string, Values]> = rs.map((r) => [`N = ${r.n.toLocaleString('en-US')}`, controlPlaneValues(r)]);
  return renderChart({
    title: 'tulle control plane at cluster scale (issue 14)', subtitle, columns: COLUMNS, rows, yardstick: '',
    footer: 'Each bar: one N (leases in etcd), one run. — : the storm did not finish within its deadline.',
  });
}
