/**
 * Small integer ids, smallest free first: next() and release() in O(log n) (a binary min-heap of
 * released ids below the high-water mark). Peer ids index arrays on the native side, so they
 * stay dense. Pure.
 */
export class IdPool {
  private readonly freed: number[] = [];
  private high: number;

  /** ids start at `first` (default 1: 0 is never handed out) */
  constructor(first = 1) {
    this.high = first;
  }

  next(): number {
    if (!this.freed.length) return this.high++;
    const h = this.freed;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      // sift the last element down from the root
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1]! < h[l]! ? l + 1 : l;
        if (h[c]! >= last) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }

  /** gives an id back; releasing an id twice or one never handed out is the caller's bug */
  release(id: number): void {
    const h = this.freed;
    let i = h.length;
    h.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= id) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = id;
  }
}
