/**
 * The slow, obviously-right route lookup the native table is tested against:
 * longest matching prefix by linear scan.
 */
import { prefixContains, type Address, type Prefix } from '../util/ip.js';

export class ReferenceRouter {
  private routes = new Map<string, { prefix: Prefix; peer: number }>();

  private key(p: Prefix): string {
    return `${p.family}|${p.len}|${maskBytes(p).join('.')}`;
  }
  set(prefix: Prefix, peer: number): void {
    this.routes.set(this.key(prefix), { prefix, peer });
  }
  delete(prefix: Prefix): void {
    this.routes.delete(this.key(prefix));
  }
  lookup(addr: Address): number | undefined {
    let best: { prefix: Prefix; peer: number } | undefined;
    for (const r of this.routes.values()) {
      if (prefixContains(r.prefix, addr) && (!best || r.prefix.len > best.prefix.len)) best = r;
    }
    return best?.peer;
  }
}

function maskBytes(p: Prefix): number[] {
  return Array.from(p.bytes, (b, i) => {
    const bits = p.len - i * 8;
    return bits >= 8 ? b : bits <= 0 ? 0 : b & (0xff << (8 - bits)) & 0xff;
  });
}
