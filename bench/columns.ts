/** The benchmark's columns: the markdown table's (title, digits) and the chart's panels. */
import type { ChartColumn } from './chart.js';
import type { Column } from './table.js';

export const columns: Column[] = [
  { key: 'tcp1', title: 'TCP 1 stream (Gb/s)', digits: 2 },
  { key: 'tcp4', title: 'TCP 4 streams (Gb/s)', digits: 2 },
  { key: 'udpKpps', title: 'UDP 64 B rx (kpps)', digits: 1 },
  { key: 'udpLoss', title: 'UDP 64 B loss (%)', digits: 1 },
  { key: 'udpPacedLoss', title: 'UDP 64 B loss at VXLAN\'s rate (%)', digits: 1 },
  { key: 'pingAvg', title: 'ping avg (ms)', digits: 3 },
  { key: 'pingP99', title: 'ping p99 (ms)', digits: 3 },
  { key: 'cpu:tcp1', title: 'CPU, TCP 1 (cores)', digits: 2 },
  { key: 'cpuPerGB:tcp1', title: 'CPU s per GB, TCP 1', digits: 2 },
  { key: 'cpu:udp', title: 'CPU, UDP 64 B (cores)', digits: 2 },
  { key: 'machineCpuPerGB:tcp1', title: 'machine CPU s per GB, TCP 1', digits: 2 },
  { key: 'idleCpuPct', title: 'idle CPU per node (% of a core)', digits: 2 },
];

/** The chart: ratios where a ratio to VXLAN means something, absolute values where it does not. */
export const chartColumns: ChartColumn[] = [
  { key: 'tcp1', title: 'TCP 1 stream', digits: 2, scale: 'ratio', better: 'higher' },
  { key: 'tcp4', title: 'TCP 4 streams', digits: 2, scale: 'ratio', better: 'higher' },
  { key: 'udpKpps', title: 'UDP 64 B received', digits: 1, scale: 'ratio', better: 'higher' },
  { key: 'udpLoss', title: 'UDP 64 B loss, unpaced', digits: 1, scale: 'absolute', unit: '%', better: 'lower' },
  { key: 'udpPacedLoss', title: 'UDP 64 B loss at VXLAN\'s rate', digits: 1, scale: 'absolute', unit: '%', better: 'lower' },
  { key: 'pingAvg', title: 'ping avg', digits: 3, scale: 'ratio', better: 'lower' },
  { key: 'pingP99', title: 'ping p99', digits: 3, scale: 'ratio', better: 'lower' },
  { key: 'machineCpuPerGB:tcp1', title: 'machine CPU s per GB, TCP 1', digits: 2, scale: 'ratio', better: 'lower' },
  { key: 'cpuPerGB:tcp1', title: 'tulle threads\' CPU s per GB, TCP 1', digits: 2, scale: 'absolute', unit: 's/GB', better: 'lower' },
  { key: 'idleCpuPct', title: 'idle CPU, busier node', digits: 2, scale: 'absolute', unit: '% of a core', better: 'lower' },
];
