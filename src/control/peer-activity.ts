/**
 * When each peer's traffic last moved, for `tulle status`'s "last activity" in plain mode
 * (encrypted mode has the data plane's own per-peer timestamps). The node samples the per-peer
 * counters (shared memory) once a second; a counter that grew since the last sample dates the
 * activity to this sample. Pure: samples and time in, times out.
 */
import type { PeerTraffic } from '../dataplane/dataplane.js';

export const ACTIVITY_SAMPLE_MS = 1000;

/** Every counter of the data plane added up: it stays the same only while nothing moved. */
export function countersTotal(counters: Readonly<Record<string, bigint>>): bigint {
  let sum = 0n;
  for (const k in counters) sum += counters[k]!;
  return sum;
}

interface Seen {
  tx: number;
  rx: number;
  sentAt: number | undefined;
  receivedAt: number | undefined;
}

export class PeerActivity {
  private readonly seen = new Map<number, Seen>();

  /** One sample of every current peer; peers not in it are forgotten. */
  observe(samples: ReadonlyArray<{ id: number; traffic: PeerTraffic | undefined }>, now: number): void {
    const ids = new Set<number>();
    for (const { id, traffic } of samples) {
      if (!traffic) continue;
      ids.add(id);
      const s = this.seen.get(id);
      if (!s || traffic.txPackets < s.tx || traffic.rxPackets < s.rx) {
        // first sight, or the id was reused (its counters started over): no date yet
        this.seen.set(id, { tx: traffic.txPackets, rx: traffic.rxPackets, sentAt: undefined, receivedAt: undefined });
        continue;
      }
      if (traffic.txPackets > s.tx) (s.tx = traffic.txPackets), (s.sentAt = now);
      if (traffic.rxPackets > s.rx) (s.rx = traffic.rxPackets), (s.receivedAt = now);
    }
    for (const id of [...this.seen.keys()]) if (!ids.has(id)) this.seen.delete(id);
  }

  last(id: number): { sentAt: number | undefined; receivedAt: number | undefined } {
    const s = this.seen.get(id);
    return { sentAt: s?.sentAt, receivedAt: s?.receivedAt };
  }
}
