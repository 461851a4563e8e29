/**
 * A page of a listing as bytes and offsets: the keys and values where they lie (etcd's
 * RangeResponse as it came off the wire, etcd-range-decode.ts), strings made only for the entries
 * asked for. A joiner in a storm reads every key's name bytes and searches the values for its own
 * address, but makes strings of none but its own lease; a daemon's table decodes them all, once.
 *
 * Per entry (stride 6 in `at`): key start, key end (the name: after the listed prefix), value
 * start, value end, lease id varint start, end (equal: no lease, "0"). Entries are in key order
 * and their values at ascending offsets (a hit of a byte search maps to its entry by bisection).
 */
import type { RegistryEntry } from './registry.js';

const STRIDE = 6;

export class LeasePage {
  private constructor(
    /** the bytes holding every key and value of the page */
    readonly buf: Buffer,
    readonly count: number,
    private readonly at: Int32Array,
    private readonly modRevisions: Float64Array,
    /** lease ids as text, when the page was made from entries (no varints to read) */
    private readonly ids: readonly string[] | undefined,
  ) {}

  keyStart(i: number): number {
    return this.at[i * STRIDE]!;
  }

  keyEnd(i: number): number {
    return this.at[i * STRIDE + 1]!;
  }

  name(i: number): string {
    return this.buf.toString('utf8', this.at[i * STRIDE]!, this.at[i * STRIDE + 1]!);
  }

  /** entry i with every field as text (the lease id made from its varint only now) */
  entry(i: number): RegistryEntry {
    const a = this.at;
    const o = i * STRIDE;
    return {
      name: this.buf.toString('utf8', a[o]!, a[o + 1]!),
      value: this.buf.toString('utf8', a[o + 2]!, a[o + 3]!),
      modRevision: this.modRevisions[i]!,
      leaseId: this.ids ? this.ids[i]! : a[o + 4] === a[o + 5] ? '0' : int64Text(this.buf, a[o + 4]!, a[o + 5]!),
    };
  }

  entries(): RegistryEntry[] {
    const out = new Array<RegistryEntry>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.entry(i);
    return out;
  }

  /**
   * The entries whose value holds `needle` (bytes), ascending: one native search over the page
   * (hits in keys or other fields are skipped), each entry at most once.
   */
  valuesHolding(needle: Buffer | number): number[] {
    const out: number[] = [];
    const len = typeof needle === 'number' ? 1 : needle.length;
    const a = this.at;
    for (let pos = 0; ; ) {
      const hit = this.buf.indexOf(needle, pos);
      if (hit < 0) return out;
      // the last entry whose value starts at or before the hit
      let lo = 0;
      let hi = this.count - 1;
      let i = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (a[mid * STRIDE + 2]! <= hit) (i = mid), (lo = mid + 1);
        else hi = mid - 1;
      }
      if (i >= 0 && hit + len <= a[i * STRIDE + 3]!) {
        out.push(i);
        pos = a[i * STRIDE + 3]!;
      } else pos = hit + 1;
    }
  }

  /** A page over entries already made (a registry that is not etcd, tests): the same reads. */
  static fromEntries(entries: readonly RegistryEntry[]): LeasePage {
    const parts: Buffer[] = [];
    const at = new Int32Array(entries.length * STRIDE);
    const mods = new Float64Array(entries.length);
    let off = 0;
    entries.forEach((e, i) => {
      const k = Buffer.from(e.name);
      const v = Buffer.from(e.value);
      parts.push(k, v);
      at.set([off, off + k.length, off + k.length, off + k.length + v.length, 0, 0], i * STRIDE);
      off += k.length + v.length;
      mods[i] = e.modRevision;
    });
    return new LeasePage(Buffer.concat(parts), entries.length, at, mods, entries.map((e) => e.leaseId));
  }

  /** A page over wire bytes (etcd-range-decode.ts), entries added in key order. */
  static builder(buf: Buffer, capacity: number): PageBuilder {
    return new PageBuilder(buf, capacity, (count, at, mods) => new LeasePage(buf, count, at, mods, undefined));
  }
}

export class PageBuilder {
  count = 0;
  private at: Int32Array;
  private mods: Float64Array;
  constructor(private readonly buf: Buffer, capacity: number, private readonly make: (count: number, at: Int32Array, mods: Float64Array) => LeasePage) {
    this.at = new Int32Array(Math.max(1, capacity) * STRIDE);
    this.mods = new Float64Array(Math.max(1, capacity));
  }

  add(keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, idStart: number, idEnd: number, modRevision: number): void {
    if (this.count === this.mods.length) {
      const at = new Int32Array(this.at.length * 2);
      at.set(this.at);
      this.at = at;
      const mods = new Float64Array(this.mods.length * 2);
      mods.set(this.mods);
      this.mods = mods;
    }
    const o = this.count * STRIDE;
    const a = this.at;
    a[o] = keyStart;
    a[o + 1] = keyEnd;
    a[o + 2] = valueStart;
    a[o + 3] = valueEnd;
    a[o + 4] = idStart;
    a[o + 5] = idEnd;
    this.mods[this.count++] = modRevision;
  }

  done(): LeasePage {
    return this.make(this.count, this.at, this.mods);
  }
}

/**
 * A varint at buf[start, end) as int64 text, exact (etcd lease ids use all 63 bits), without a
 * BigInt for the non-negative ones: v = hi·2^32 + lo = (hi·4294 + ⌊x/10^6⌋)·10^6 + x mod 10^6,
 * x = hi·967296 + lo, every term below 2^53.
 */
export function int64Text(buf: Uint8Array, start: number, end: number): string {
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
