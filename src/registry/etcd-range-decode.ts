/**
 * etcd's RangeResponse read straight from the wire bytes into lease entries: what a listing of
 * every lease needs and nothing more. The generic client (protobufjs, int64s as strings via Long)
 * made four strings and several objects per key; in a join storm that decoding and its garbage
 * were most of a joiner's CPU.
 *
 *   RangeResponse  1 header (ResponseHeader: 3 revision)  2 kvs (repeated KeyValue)  3 more  4 count
 *   KeyValue       1 key  2 create_revision  3 mod_revision  4 version  5 value  6 lease
 *
 * (etcd's rpc.proto and kv.proto.) Unknown fields are skipped, as protobuf requires; a truncated
 * or malformed message throws (the caller retries, as after any failed call).
 */
import type { RegistryEntry } from './registry.js';

export interface RawRange {
  revision: number;
  more: boolean;
  entries: RegistryEntry[];
  /** the last key of the page, raw (where the next page starts) */
  lastKey: Buffer | undefined;
}

class Reader {
  pos: number;
  end: number;
  constructor(readonly buf: Buffer, from: number, end: number) {
    this.pos = from;
    this.end = end;
  }

  /** reads [from, end) next (one reader for every nested message: no allocation per key) */
  at(from: number, end: number): this {
    this.pos = from;
    this.end = end;
    return this;
  }

  /** a varint as a Number (exact below 2^53: revisions, lengths) */
  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('etcd range response: truncated varint');
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
    throw new Error('etcd range response: varint longer than 10 bytes');
  }


  /** a length-delimited field: its [start, end) */
  bytes(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new Error('etcd range response: field longer than the message');
    this.pos = start + len;
    return [start, this.pos];
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) this.bytes();
    else if (wireType === 1 || wireType === 5) {
      const n = wireType === 1 ? 8 : 4;
      if (n > this.end - this.pos) throw new Error('etcd range response: truncated fixed field');
      this.pos += n;
    } else throw new Error(`etcd range response: unsupported wire type ${wireType}`);
  }
}

/**
 * A varint at buf[start, end) as int64 text, exact (etcd lease ids use all 63 bits), without a
 * BigInt for the non-negative ones: v = hi·2^32 + lo = (hi·4294 + ⌊x/10^6⌋)·10^6 + x mod 10^6,
 * x = hi·967296 + lo, every term below 2^53.
 */
function int64Text(buf: Buffer, start: number, end: number): string {
  let lo = 0;
  let hi = 0;
  for (let i = start, shift = 0; i < end; i++, shift += 7) {
    const b = buf[i]! & 0x7f;
    if (shift < 28) lo += b * 2 ** shift;
    else if (shift === 28) {
      lo += (b & 0x0f) * 2 ** 28;
      hi += b >> 4;
    } else hi += b * 2 ** (shift - 32);
  }
  if (end - start > 9 || hi >= 2 ** 31) {
    let v = 0n;
    for (let i = end - 1; i >= start; i--) v = (v << 7n) | BigInt(buf[i]! & 0x7f);
    return BigInt.asIntN(64, v).toString();
  }
  const x = hi * 967296 + lo;
  const top = hi * 4294 + Math.floor(x / 1e6);
  const low = x % 1e6;
  return top === 0 ? String(low) : `${top}${String(low).padStart(6, '0')}`;
}

/** Reads a RangeResponse; entry names are the keys without `prefixLength` leading bytes. */
export function decodeRangeResponse(buf: Buffer, prefixLength: number): RawRange {
  const r = new Reader(buf, 0, buf.length);
  const out: RawRange = { revision: 0, more: false, entries: [], lastKey: undefined };
  let lastKey: [number, number] | undefined;
  const h = new Reader(buf, 0, 0);
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      const [s, e] = r.bytes();
      h.at(s, e);
      while (h.pos < h.end) {
        const t = h.varint();
        if (t === (3 << 3)) out.revision = h.varint();
        else h.skip(t & 7);
      }
    } else if (field === 2 && wire === 2) {
      const [s, e] = r.bytes();
      const kv = h.at(s, e);
      let key: [number, number] = [s, s];
      let value: [number, number] = [s, s];
      let modRevision = 0;
      let idStart = 0;
      let idEnd = 0;
      while (kv.pos < kv.end) {
        const t = kv.varint();
        if (t === ((1 << 3) | 2)) key = kv.bytes();
        else if (t === (3 << 3)) modRevision = kv.varint();
        else if (t === ((5 << 3) | 2)) value = kv.bytes();
        else if (t === (6 << 3)) {
          idStart = kv.pos;
          // (a lease id of 0 is written as absent by etcd; written out, it reads as '0' too)
          if (kv.varint() === 0) idStart = kv.pos;
          idEnd = kv.pos;
        } else kv.skip(t & 7);
      }
      if (key[1] - key[0] < prefixLength) throw new Error('etcd range response: a key outside the listed prefix');
      const leaseId = idEnd === idStart ? '0' : int64Text(buf, idStart, idEnd);
      out.entries.push({ name: buf.toString('utf8', key[0] + prefixLength, key[1]), value: buf.toString('utf8', value[0], value[1]), modRevision, leaseId });
      lastKey = key;
    } else if (field === 3 && wire === 0) {
      out.more = r.varint() !== 0;
    } else {
      r.skip(wire);
    }
  }
  if (lastKey) out.lastKey = Buffer.from(buf.subarray(lastKey[0], lastKey[1]));
  return out;
}
