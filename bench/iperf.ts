/** iperf3 and ping runs inside test-bed namespaces, parsed into numbers. Every run is bounded. */
import type { Bed } from '../test/bed/bed.js';

export interface TcpResult { gbps: number }
export interface UdpResult { receivedPps: number; lossPercent: number; sent: number; lost: number }
export interface PingResult { avgMs: number; p50Ms: number; p99Ms: number }

export async function iperfTcp(bed: Bed, ns: string, server: string, seconds: number, streams: number): Promise<TcpResult> {
  const { stdout } = await bed.exec(ns, 'timeout', [String(seconds + 15), 'iperf3', '-c', server, '-t', String(seconds), '-P', String(streams), '-J'], (seconds + 20) * 1000);
  const r = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
  return { gbps: r.end.sum_received.bits_per_second / 1e9 };
}

/** 64-byte UDP payloads, unpaced (pps = 0) or at a fixed rate; the receiver's view of packets and loss.
 * extra: more iperf3 client options (e.g. -w, the socket buffers of both ends). */
export async function iperfUdp(bed: Bed, ns: string, server: string, seconds: number, pps = 0, bytes = 64, extra: readonly string[] = []): Promise<UdpResult> {
  const { stdout } = await bed.exec(
    ns, 'timeout', [String(seconds + 15), 'iperf3', '-c', server, '-u', '-l', String(bytes), '-b', String(Math.round(pps * bytes * 8)), '-t', String(seconds), '-J', ...extra],
    (seconds + 20) * 1000,
  );
  const r = JSON.parse(stdout) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } };
  const s = r.end.sum;
  const received = s.packets - s.lost_packets;
  return { receivedPps: received / s.seconds, lossPercent: s.packets ? (100 * s.lost_packets) / s.packets : 0, sent: s.packets, lost: s.lost_packets };
}

export async function pingStats(bed: Bed, ns: string, to: string, count = 300): Promise<PingResult> {
  const { stdout } = await bed.exec(ns, 'ping', ['-c', String(count), '-i', '0.005', '-W', '2', '-n', to], 60_000);
  const rtts = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (rtts.length === 0) throw new Error(`ping ${to}: no replies`);
  const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
  return { avgMs: avg, p50Ms: rtts[Math.floor(rtts.length / 2)]!, p99Ms: rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))]! };
}
