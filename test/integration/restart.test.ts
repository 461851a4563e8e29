/**
 * A restarted node is back at once, both ways, in both modes (issue 16): two real `tulle run`
 * daemons through a real etcd, a ping every 20 ms each way, and one node killed (`kill -9`, a
 * crash) or stopped (SIGTERM, a rolling upgrade) and started again at once. The first reply to a
 * request sent after the old process is gone must come within a second of the new one's
 * readiness signal (its 'node ready' log line, written after subnet.env).
 *
 * In encrypted mode the surviving node still holds a session the restarted one has lost; it is
 * the restarted node that must bring it back (handshake on start, and on transport data from a
 * known peer under an index it does not know), not the survivor's 15 s timers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, tunAddress, until, type Cluster, type Daemon } from './cluster.js';
import { restartUnderPing } from './restart-under-ping.js';

/** within a second of readiness; the slack covers ping's 20 ms interval and a loaded machine */
const WITHIN_MS = 1000;
const SLACK_MS = 250;

const CONFIGS = {
  udp: '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}',
  wireguard: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}',
} as const;

describe.each(['udp', 'wireguard'] as const)('%s mode: one node restarted under a continuous ping both ways', (mode) => {
  let c: Cluster;
  const ds: Daemon[] = [];
  const subnets: string[] = [];

  beforeAll(async () => {
    c = await createCluster({ nodes: 2, tag: mode === 'udp' ? 'rsu' : 'rsw', config: CONFIGS[mode] });
    for (const n of c.bed.nodes) ds.push(c.startDaemon(n, [], process.env, { health: true }));
    subnets.push(...(await Promise.all(ds.map((d) => d.readySubnet(60_000)))));
    await until('both nodes to route to each other', async () => (await Promise.all(ds.map((d) => c.health(d)))).every((h) => Object.keys(h.routes).length === 1), 60_000);
  });

  afterAll(async () => {
    await c?.teardown();
  });

  // 'to': only the survivor sends (the restarted node has nothing of its own to send: the
  // issue's case); 'from': only the restarted node sends; 'both'
  const cases = (['SIGKILL', 'SIGTERM'] as const).flatMap((signal) => (['to', 'from', 'both'] as const).map((dir) => [signal, dir] as const));
  it.each(cases)('%s and an immediate restart, ping %s the restarted node: replies within a second of ready', async (signal, dir) => {
    const [survivor, victim] = [ds[0]!, ds[1]!];
    const handshakes = async (d: Daemon) => ((await c.health(d)).backendStatus?.handshakes ?? {}) as Record<string, number>;
    let before: Record<string, number> = {};
    const { again, figures } = await restartUnderPing({
      bed: c.bed, victim, signal, dir,
      beforeKill: async () => void (before = await handshakes(survivor)),
      other: { ns: survivor.node.ns, address: tunAddress(subnets[0]!) },
      victimAddress: tunAddress(subnets[1]!),
      restart: () => (ds[1] = c.startDaemon(victim.node, [], process.env, { health: true })),
      diagnose: async (again) => {
        const hs = await Promise.all([survivor, again].map((d) => c.health(d).catch(() => undefined)));
        const ms = await Promise.all([survivor, again].map((d) => c.metrics(d).catch(() => '')));
        const wg = (m: string) => m.split('\n').filter((l) => /^tulle_(drops|packets|[a-z_]*wg)/.test(l) && !/ 0$/.test(l)).join('; ');
        return `survivor ${JSON.stringify(hs[0]?.backendStatus)} ${wg(ms[0]!)}; restarted ${JSON.stringify(hs[1]?.backendStatus)} ${wg(ms[1]!)}`;
      },
    });
    // what each side did about it (survivor: since the kill)
    const pick = (h: Record<string, number>, base: Record<string, number> = {}) =>
      Object.fromEntries(['initiations_sent', 'initiations_received', 'initiations_on_start', 'unknown_index_handshakes', 'unknown_index_confirmations', 'unanswered_probes']
        .filter((k) => (h[k] ?? 0) - (base[k] ?? 0) > 0).map((k) => [k, h[k]! - (base[k] ?? 0)]));
    const handshaking = mode === 'wireguard' ? { restarted: pick(await handshakes(again)), survivor: pick(await handshakes(survivor), before) } : {};
    console.log(`restart figures ${JSON.stringify({ mode, signal, dir, ...figures, ...handshaking })}`);
    for (const f of [figures.toRestarted, figures.fromRestarted]) if (f) expect(f.afterReadyMs).toBeLessThan(WITHIN_MS + SLACK_MS);
    if (mode === 'wireguard') {
      const h = await c.health(again);
      // the restarted node holds a session with its peer again
      expect(Object.values(h.backendStatus.sessions as Record<string, number>).every((n) => n >= 1)).toBe(true);
    }
  });
});
