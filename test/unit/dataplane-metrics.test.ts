import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { classify, registerDataPlaneMetrics } from '../../src/metrics/dataplane-metrics.js';
import { loadAddon } from '../../src/dataplane/native.js';

describe('data plane metrics', () => {
  it('classifies every native counter name into a labelled metric', () => {
    for (const name of loadAddon().counterNames()) {
      const s = classify(name, 1n);
      expect(s.metric).toMatch(/^tulle_[a-z_]+_total$/);
      if (name.includes('_drop_')) expect(s.labels.reason).toBe(name.split('_drop_')[1]);
    }
    expect(classify('inbound_delivered_bytes', 7n)).toEqual({ metric: 'tulle_bytes_total', labels: { direction: 'inbound', stage: 'delivered' }, value: 7 });
  });

  it('publishes the values read at scrape time, not at registration', async () => {
    const registry = new client.Registry();
    let counters: Record<string, bigint> = { outbound_packets: 1n, inbound_drop_spoofed_source: 0n, outbound_batches: 1n };
    registerDataPlaneMetrics(registry, Object.keys(counters), () => ({ counters: () => counters, cpuSeconds: () => 1.5 }));
    counters = { outbound_packets: 42n, inbound_drop_spoofed_source: 3n, outbound_batches: 2n };
    const text = await registry.metrics();
    expect(text).toMatch(/tulle_packets_total\{direction="outbound",stage="read"\} 42/);
    expect(text).toMatch(/tulle_drops_total\{direction="inbound",reason="spoofed_source"\} 3/);
    expect(text).toMatch(/tulle_outbound_batches_total 2/);
    expect(text).toMatch(/tulle_dataplane_cpu_seconds_total 1\.5/);
  });
});
