/**
 * A continuous ping whose every reply is kept with its times, for measuring an outage: when was
 * the first reply to a request sent after some moment (a kill, a process exit)?
 *
 *   timeout S ping -D -n -i 0.02 ADDR   →   [1764700000.123456] 64 bytes from ...: icmp_seq=7 ttl=63 time=0.41 ms
 *
 * -D gives the receive time (wall clock, the same clock as Date.now() and pino's `time`), the
 * RTT gives the send time. Bounded by `timeout`, not by ping's -w: with a deadline, ping exits
 * at the first ICMP error (a restarting node's "net unreachable"). stop() ends it early.
 */
import type { ChildProcess } from 'node:child_process';
import type { Bed } from './bed.js';
import { stopProcess } from './bed.js';

export interface PingReply {
  seq: number;
  /** wall clock, ms */
  receivedAt: number;
  sentAt: number;
}

export interface PingLog {
  readonly replies: PingReply[];
  readonly proc: ChildProcess;
  /** the first reply to a request sent after `t` (wall clock ms), if any yet */
  firstSentAfter(t: number): PingReply | undefined;
  stop(): Promise<void>;
}

const LINE = /^\[(\d+\.\d+)\] .*icmp_seq=(\d+) .*time=([\d.]+) ms/;

export function startPingLog(bed: Bed, ns: string, to: string, o: { intervalMs?: number; seconds?: number } = {}): PingLog {
  const interval = ((o.intervalMs ?? 20) / 1000).toFixed(3);
  const proc = bed.spawn(ns, 'timeout', [String(o.seconds ?? 60), 'ping', '-D', '-n', '-i', interval, to]);
  const replies: PingReply[] = [];
  let buf = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = LINE.exec(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (!m) continue;
      const receivedAt = Number(m[1]) * 1000;
      replies.push({ seq: Number(m[2]), receivedAt, sentAt: receivedAt - Number(m[3]) });
    }
  });
  return {
    replies,
    proc,
    firstSentAfter: (t) => replies.find((r) => r.sentAt > t),
    stop: () => stopProcess(proc, 1000),
  };
}
