/**
 * Chooses the subnet a node asks for (design.md §3): its previous subnet if that is still free
 * and inside [SubnetMin, SubnetMax], else a random free one. Pure: randomness is injected.
 */
import type { NetworkConfig } from '../config/network-config.js';
import { formatNet4, ip4ToInt, net4Size, parseNet4 } from '../util/ip4.js';

export interface AllocationInput {
  config: NetworkConfig;
  /** subnets already leased (by anyone), e.g. 10.244.3.0/24 */
  taken: ReadonlySet<string>;
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

/** Returns the subnet to try, or undefined when every subnet in range is taken. */
export function chooseSubnet(input: AllocationInput): string | undefined {
  const { config, taken, previous, random } = input;
  if (previous !== undefined && isLeasable(config, previous) && !taken.has(previous)) return previous;
  const size = net4Size(config.subnetLen);
  const min = ip4ToInt(config.subnetMin);
  const count = (ip4ToInt(config.subnetMax) - min) / size + 1;
  const at = (i: number) => formatNet4({ base: min + i * size, len: config.subnetLen });
  // random probes first (cheap when the range is sparse), then a scan from a random start
  for (let t = 0; t < RANDOM_TRIES; t++) {
    const s = at(Math.floor(random() * count));
    if (!taken.has(s)) return s;
  }
  const start = Math.floor(random() * count);
  for (let i = 0; i < count; i++) {
    const s = at((start + i) % count);
    if (!taken.has(s)) return s;
  }
  return undefined;
}

export function subnetCount(config: NetworkConfig): number {
  return (ip4ToInt(config.subnetMax) - ip4ToInt(config.subnetMin)) / net4Size(config.subnetLen) + 1;
}
