/**
 * One restart measured under continuous pings (issue 16): start the pings, wait for replies,
 * stop the daemon with a signal, start it again at once, and wait for the first reply to a
 * request sent after the old process was gone. Times are wall clock (ping -D, pino's `time`).
 *
 *   toRestarted     a ping from the other side to the restarted node
 *   fromRestarted   a ping from the restarted node's namespace to the other side
 *   afterReadyMs    first such reply − the new daemon's 'node ready' line (negative: earlier)
 *   outageMs        first such reply − the old process's exit
 */
import type { Bed } from '../bed/bed.js';
import { startPingLog, type PingLog, type PingReply } from '../bed/ping-log.js';
import { until, type Daemon } from './cluster.js';

export type Direction = 'to' | 'from' | 'both';

export interface RestartFigures {
  startMs: number;
  toRestarted: { afterReadyMs: number; outageMs: number } | undefined;
  fromRestarted: { afterReadyMs: number; outageMs: number } | undefined;
}

export async function restartUnderPing(o: {
  bed: Bed;
  victim: Daemon;
  signal: 'SIGKILL' | 'SIGTERM';
  dir: Direction;
  /** the other side: its namespace and its overlay address */
  other: { ns: string; address: string };
  /** the restarted node's overlay address */
  victimAddress: string;
  restart: () => Daemon;
  /** called once replies flow, just before the signal */
  beforeKill?: () => Promise<void>;
  /** what to add to a timeout's message */
  diagnose?: (again: Daemon) => Promise<string>;
}): Promise<{ again: Daemon; figures: RestartFigures }> {
  const pings: Array<PingLog | undefined> = [
    o.dir !== 'from' ? startPingLog(o.bed, o.other.ns, o.victimAddress, { seconds: 90 }) : undefined,
    o.dir !== 'to' ? startPingLog(o.bed, o.victim.node.ns, o.other.address, { seconds: 90 }) : undefined,
  ];
  try {
    const warm = Date.now();
    await until('replies before the restart', () => pings.every((p) => !p || p.firstSentAfter(warm)), 20_000);
    await o.beforeKill?.();
    o.victim.proc.kill(o.signal);
    await o.victim.exit;
    const down = Date.now();
    const again = o.restart();
    const ready = (await again.waitLog((l) => l.msg === 'node ready', 60_000)).time;
    const first = await until('a reply to a request sent after the old process was gone', () => {
      const r = pings.map((p) => p?.firstSentAfter(down));
      return r.every((x, i) => x || !pings[i]) && r;
    }, 40_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; ${(await o.diagnose?.(again).catch(() => '')) ?? ''}`);
    });
    const figure = (r: PingReply | undefined) => r && { afterReadyMs: Math.round(r.receivedAt - ready), outageMs: Math.round(r.receivedAt - down) };
    return { again, figures: { startMs: ready - down, toRestarted: figure(first[0]), fromRestarted: figure(first[1]) } };
  } finally {
    await Promise.all(pings.map((p) => p?.stop()));
  }
}
