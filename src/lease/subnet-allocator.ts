/**
 * Chooses the subnet a node asks for (design.md §3): its previous subnet if that is still free
 * and inside [SubnetMin, SubnetMax], else a random free one. "Free" means overlapping no
 * existing lease of any size: after a SubnetLen change a /23 left by one node must keep a /24
 * inside it from being handed to another (flanneld checks overlap for new subnets, but only
 * equality for the previous one). Pure: randomness is injected.
 */
import type { NetworkConfig } from '../config/network-config.js';
import { formatNet4, ip4ToInt, net4Size, parseNet4 } from '../util/ip4.js';

export interface AllocationInput {
  config: NetworkConfig;
  /** subnets already leased (by anyone, any size), e.g. 10.244.3.0/24 */
  taken: Iterable<string>;
  previous?: string | undefined;
  /** uniform in [0, 1) */
  random: () => number;
}

const RANDOM_TRIES = 32;

export function isLeasable(config: NetworkConfig, subnet: string): boolean {
  let n;
  try {
    n = parseNet4(subnet);
  } catch {
    return false;
  }
  return n.len === config.subnetLen && n.base >= ip4ToInt(config.subnetMin) && n.base <= ip4ToInt(config.subnetMax) &&
    n.base % net4Size(n.len) === 0;
}

/** Address ranges [start, end) of taken subnets, for "does this candidate overlap any?" in O(log n). */
export class TakenRanges {
  private readonly starts: number[] = [];
  /** running maximum of ends: ranges may overlap each other (bad data) */
  private readonly maxEnds: number[] = [];

  constructor(subnets: Iterable<string>) {
    const rs: Array<[number, number]> = [];
    for (const s of subnets) {
      try {
        const n = parseNet4(s);
        rs.push([n.base, n.base + net4Size(n.len)]);
      } catch {
        /* not a subnet: cannot overlap anything */
      }
    }
    rs.sort((a, b) => a[0] - b[0]);
    let max = -1;
    for (const [start, end] of rs) {
      max = Math.max(max, end);
      this.starts.push(start);
      this.maxEnds.push(max);
    }
  }

  /** True when [base, base + size) shares an address with any taken range. */
  overlaps(base: number, size: number): boolean {
    // last range that starts before the candidate ends
    let lo = 0;
    let hi = this.starts.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < base + size) (at = mid), (lo = mid + 1);
      else hi = mid - 1;
    }
    return at >= 0 && this.maxEnds[at]! > base;
  }

  overlapsSubnet(subnet: string): boolean {
    const n = parseNet4(subnet);
    return this.overlaps(n.base, net4Size(n.len));
  }
}

/** Returns the subnet to try, or undefined when every subnet in range overlaps a lease. */
export function chooseSubnet(input: AllocationInput): string | undefined {
  const { config, previous, random } = input;
  const taken = new TakenRanges(input.taken);
  if (previous !== undefined && isLeasable(config, previous) && !taken.overlapsSubnet(previous)) return previous;
  const size = net4Size(config.subnetLen);
  const min = ip4ToInt(config.subnetMin);
  const count = (ip4ToInt(config.subnetMax) - min) / size + 1;
  const free = (i: number) => !taken.overlaps(min + i * size, size);
  const at = (i: number) => formatNet4({ base: min + i * size, len: config.subnetLen });
  // random probes first (cheap when the range is sparse), then a scan from a random start
  for (let t = 0; t < RANDOM_TRIES; t++) {
    const i = Math.floor(random() * count);
    if (free(i)) return at(i);
  }
  const start = Math.floor(random() * count);
  for (let k = 0; k < count; k++) {
    const i = (start + k) % count;
    if (free(i)) return at(i);
  }
  return undefined;
}

export function subnetCount(config: NetworkConfig): number {
  return (ip4ToInt(config.subnetMax) - ip4ToInt(config.subnetMin)) / net4Size(config.subnetLen) + 1;
}
