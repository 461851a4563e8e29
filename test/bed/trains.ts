/**
 * Inner packets and WireGuard transport messages made by hand, and UDP_SEGMENT trains of them
 * sent with test/bed/send-trains.py: for tests that play a peer (or an attacker with a peer's
 * keys) against a data plane. node:crypto seals (the reference in src/wireguard is slower).
 */
import { createCipheriv } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAddress } from '../../src/util/ip.js';
import type { Bed, BedNode } from './bed.js';

export const SEND_TRAINS = path.resolve('test/bed/send-trains.py');

function sum16(b: Uint8Array, from: number, to: number, seed = 0): number {
  let s = seed;
  for (let i = from; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if ((to - from) & 1) s += b[to - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** An IPv4/TCP segment (ACK, valid checksums): src:40000 -> dst:9, sequence seq, `payload` bytes. */
export function tcpSegment(src: string, dst: string, seq: number, payload = 16): Uint8Array {
  const p = new Uint8Array(40 + payload);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(6, 0x4000); // DF
  p[8] = 64;
  p[9] = 6;
  p.set(parseAddress(src).bytes, 12);
  p.set(parseAddress(dst).bytes, 16);
  v.setUint16(10, ~sum16(p, 0, 20) & 0xffff);
  v.setUint16(20, 40000);
  v.setUint16(22, 9);
  v.setUint32(24, seq >>> 0);
  v.setUint32(28, 1);
  p[32] = 5 << 4;
  p[33] = 0x10; // ACK
  v.setUint16(34, 65535);
  p.fill(0x5a, 40);
  const pseudo = sum16(p, 12, 20) + 6 + (p.length - 20);
  v.setUint16(36, ~sum16(p, 20, p.length, pseudo) & 0xffff);
  return p;
}

/** A WireGuard transport message (type 4) for receiver index idx, sealed with key (node:crypto). */
export function seal(key: Uint8Array, idx: number, counter: bigint, inner: Uint8Array): Uint8Array {
  const padded = new Uint8Array(Math.ceil(inner.length / 16) * 16);
  padded.set(inner);
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const body = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
  const m = Buffer.alloc(16 + body.length);
  m[0] = 4;
  m.writeUInt32LE(idx, 4);
  m.writeBigUInt64LE(counter, 8);
  body.copy(m, 16);
  return m;
}

/** Train records for send-trains.py: [seg u16 BE][len u32 BE][bytes]. */
export function trainFile(trains: Uint8Array[][]): Buffer {
  return Buffer.concat(
    trains.map((segs) => {
      const h = Buffer.alloc(6);
      h.writeUInt16BE(segs[0]!.length, 0);
      h.writeUInt32BE(segs.reduce((n, s) => n + s.length, 0), 2);
      return Buffer.concat([h, ...segs]);
    }),
  );
}

/** Sends trains (each a list of equal-sized datagrams but the last) from `from`, bound to its
 * underlay address and `port`, to host:port; resolves once all were handed to the kernel. */
export async function sendTrains(bed: Bed, from: BedNode, file: string, trains: Uint8Array[][], host: string, port: number): Promise<void> {
  writeFileSync(file, trainFile(trains));
  const { stdout } = await bed.exec(from.ns, 'python3', [SEND_TRAINS, file, host, String(port), from.underlayIp, String(port)], 60_000);
  if (!stdout.includes(`sent ${trains.length} trains`)) throw new Error(`send-trains: ${stdout}`);
}
