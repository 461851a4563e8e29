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
import { LeasePage } from './lease-page.js';

export interface RawRange {
  revision: number;
  more: boolean;
  /** the keys and values where they lie in `buf`: strings only for what is asked (lease-page.ts) */
  page: LeasePage;
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


  /** a length-delimited field: its [start, end) in fs, fe (no array per field) */
  fs = 0;
  fe = 0;
  bytes(): void {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new Error('etcd range response: field longer than the message');
    this.pos = start + len;
    this.fs = start;
    this.fe = this.pos;
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
 * Reads a RangeResponse; entry names are the keys without `prefixLength` leading bytes. `limit`:
 * the request's (no more keys than that: room for the page's offsets is made once).
 */
export function decodeRangeResponse(buf: Buffer, prefixLength: number, limit = Infinity): RawRange {
  const r = new Reader(buf, 0, buf.length);
  let revision = 0;
  let more = false;
  // (a lease's key and value are about 70 bytes on the wire: room for most pages at once)
  const page = LeasePage.builder(buf, Math.min(limit, buf.length >> 6));
  let lastStart = -1;
  let lastEnd = -1;
  const h = new Reader(buf, 0, 0);
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      r.bytes();
      h.at(r.fs, r.fe);
      while (h.pos < h.end) {
        const t = h.varint();
        if (t === (3 << 3)) revision = h.varint();
        else h.skip(t & 7);
      }
    } else if (field === 2 && wire === 2) {
      r.bytes();
      const s = r.fs;
      const kv = h.at(s, r.fe);
      let keyStart = s;
      let keyEnd = s;
      let valueStart = s;
      let valueEnd = s;
      let modRevision = 0;
      let idStart = 0;
      let idEnd = 0;
      while (kv.pos < kv.end) {
        const t = kv.varint();
        if (t === ((1 << 3) | 2)) {
          kv.bytes();
          keyStart = kv.fs;
          keyEnd = kv.fe;
        } else if (t === (3 << 3)) modRevision = kv.varint();
        else if (t === ((5 << 3) | 2)) {
          kv.bytes();
          valueStart = kv.fs;
          valueEnd = kv.fe;
        }
        else if (t === (6 << 3)) {
          idStart = kv.pos;
          // (a lease id of 0 is written as absent by etcd; written out, it reads as '0' too)
          if (kv.varint() === 0) idStart = kv.pos;
          idEnd = kv.pos;
        } else kv.skip(t & 7);
      }
      if (keyEnd - keyStart < prefixLength) throw new Error('etcd range response: a key outside the listed prefix');
      page.add(keyStart + prefixLength, keyEnd, valueStart, valueEnd, idStart, idEnd, modRevision);
      lastStart = keyStart;
      lastEnd = keyEnd;
    } else if (field === 3 && wire === 0) {
      more = r.varint() !== 0;
    } else {
      r.skip(wire);
    }
  }
  return { revision, more, page: page.done(), lastKey: lastStart < 0 ? undefined : Buffer.from(buf.subarray(lastStart, lastEnd)) };
}
