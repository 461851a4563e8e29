/**
 * Which lease keys could overlap a subnet we are about to create, as key-name prefixes, so the
 * create can say "If no such key was created after my listing" instead of "If no key at all was
 * created after my listing". The latter refuses every create but the first when many nodes boot
 * at once (each round of a 200-node storm placed one or two leases: 200 rounds of 200 listings).
 *
 * A lease key is "<a.b.c.d>-<len>" (plus "&<v6>-<len>" in dual stack). For our subnet B/len:
 *   containing  B masked to L, for every L < len: the exact names "<B & mask(L)>-<L>" (prefixes,
 *               so a dual-stack suffix matches too)
 *   contained   (ours included) every subnet whose address lies in B/len: the octets fixed by
 *               len are a prefix; the next octet takes 2^(8 - len % 8) values — one prefix per
 *               value when that is at most MAX_VALUE_PREFIXES, else the whole block of the fixed
 *               octets (wider than needed: a refusal there only costs a retry)
 * Pure. At most 1 + 32 + 16 prefixes: under etcd's default --max-txn-ops of 128.
 */
import { TulleError } from '../util/errors.js';
import { formatValue, isAligned, netMask, parseValue, type Net } from '../util/ip.js';

const MAX_VALUE_PREFIXES = 16;

/**
 * The prefixes a create of `name` is guarded with. An IPv6-only key ("0.0.0.0-0&…") and a
 * dual-stack create whose IPv6 subnet is not paired with its IPv4 one (subnet-allocator.ts:
 * `guardAll`) cannot be narrowed by name: they are guarded against every key ("").
 */
export function guardPrefixes(name: string, guardAll = false): string[] {
  const n = subnetOfName(name);
  return guardAll || n.len === 0 ? [''] : overlapPrefixes(n);
}

export function overlapPrefixes(n: Net): string[] {
  const out: string[] = [];
  for (let l = 0; l < n.len; l++) out.push(`${formatValue(4, n.base & netMask(4, l))}-${l}`);
  const octets = formatValue(4, n.base).split('.');
  const fixed = n.len >> 3; // whole octets fixed by the prefix
  if (fixed === 4) {
    out.push(`${octets.join('.')}-`);
    return out;
  }
  const head = octets.slice(0, fixed).join('.');
  const lead = fixed ? `${head}.` : '';
  const values = 2 ** (8 - (n.len & 7));
  if ((n.len & 7) === 0 || values > MAX_VALUE_PREFIXES) {
    out.push(lead);
    return out;
  }
  const first = Number(octets[fixed]);
  for (let v = first; v < first + values; v++) out.push(`${lead}${v}${fixed === 3 ? '-' : '.'}`);
  return out;
}

/** true when a key name starts with one of the prefixes (what the etcd compares check) */
export function matchesAny(name: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => name.startsWith(p));
}

/** "10.244.3.0-24" (a dual-stack "&…" suffix ignored) → its IPv4 subnet; throws on anything else */
export function subnetOfName(name: string): Net {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})(?:&|$)/.exec(name);
  const len = Number(m?.[2]);
  let base = -1n;
  try {
    if (m) base = parseValue(m[1]!, 4).value;
  } catch {
    /* not an address: refused below */
  }
  if (!m || base < 0n || len > 32 || !isAligned(4, base, len)) throw new TulleError('ERR_TULLE_SUBNET_KEY', `'${name}' is not a subnet key name (want e.g. 10.244.3.0-24)`);
  return { family: 4, base, len };
}
