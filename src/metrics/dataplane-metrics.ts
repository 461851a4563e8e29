/**
 * Prometheus view of the data plane's counters. Nothing is counted twice: at scrape time the
 * collectors read the native counters (shared memory) and publish them, grouped as
 *
 *   tulle_packets_total{direction, stage}   outbound_packets, inbound_delivered_packets, ...
 *   tulle_bytes_total{direction, stage}
 *   tulle_drops_total{direction, reason}    every *_drop_* counter
 *   tulle_<name>_total                      anything else (batches, icmp_unreachable, ...)
 *   tulle_dataplane_cpu_seconds_total       CPU time of the packet threads
 */
import client from 'prom-client';
import type { Counters } from '../dataplane/dataplane.js';

export interface CounterSource {
  counters(): Counters;
  cpuSeconds(): number;
}

type Sample = { metric: string; labels: Record<string, string>; value: number };

/** Maps one native counter name to its Prometheus metric and labels. */
export function classify(name: string, value: bigint): Sample {
  const v = Number(value);
  const drop = /^(outbound|inbound)_drop_(\w+)$/.exec(name);
  if (drop) return { metric: 'tulle_drops_total', labels: { direction: drop[1]!, reason: drop[2]! }, value: v };
  const flow = /^(outbound|inbound)_(?:(\w+)_)?(packets|bytes)$/.exec(name);
  if (flow) return { metric: `tulle_${flow[3]}_total`, labels: { direction: flow[1]!, stage: flow[2] ?? (flow[1] === 'outbound' ? 'read' : 'received') }, value: v };
  return { metric: `tulle_${name}_total`, labels: {}, value: v };
}

const HELP: Record<string, string> = {
  tulle_packets_total: 'Packets seen by the data plane, by direction (outbound = TUN to UDP) and stage',
  tulle_bytes_total: 'Bytes seen by the data plane, by direction and stage',
  tulle_drops_total: 'Packets dropped by the data plane, by direction and reason',
};

/**
 * Registers collectors for `source` (usually the running data plane) into `registry`.
 * `names` are the native counter names (known before the data plane starts).
 */
export function registerDataPlaneMetrics(registry: client.Registry, names: readonly string[], source: () => CounterSource | undefined): void {
  const metrics = new Map<string, string[]>();
  for (const n of names) {
    const s = classify(n, 0n);
    const labels = metrics.get(s.metric) ?? [];
    for (const l of Object.keys(s.labels)) if (!labels.includes(l)) labels.push(l);
    metrics.set(s.metric, labels);
  }
  for (const [metric, labelNames] of metrics) {
    new client.Counter({
      name: metric,
      help: HELP[metric] ?? `Data plane counter ${metric.replace(/^tulle_|_total$/g, '')}`,
      labelNames,
      registers: [registry],
      collect() {
        const src = source();
        if (!src) return;
        this.reset();
        for (const [n, v] of Object.entries(src.counters())) {
          const s = classify(n, v);
          if (s.metric === metric && s.value > 0) this.inc(s.labels, s.value);
        }
      },
    });
  }
  new client.Counter({
    name: 'tulle_dataplane_cpu_seconds_total',
    help: 'CPU time used by the packet threads',
    registers: [registry],
    collect() {
      const src = source();
      if (!src) return;
      this.reset();
      const s = src.cpuSeconds();
      if (s > 0) this.inc(s);
    },
  });
}
