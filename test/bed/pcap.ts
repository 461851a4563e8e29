/**
 * Reads a classic pcap file (as tcpdump -w writes it) into raw packets. Only what the tests need:
 * microsecond or nanosecond magic, either byte order; link types RAW (101/12) and LINUX_SLL (113).
 */
import { readFileSync } from 'node:fs';

export function readPcap(file: string): Uint8Array[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${file}: not a pcap file`);
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const skip = link === 113 ? 16 : 0;
  const out: Uint8Array[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const caplen = u32(at + 8);
    if (at + 16 + caplen > b.length) break; // a record cut short by the capture's end
    out.push(new Uint8Array(b.subarray(at + 16 + skip, at + 16 + caplen)));
    at += 16 + caplen;
  }
  return out;
}
