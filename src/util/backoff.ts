/** Retry waits with jitter: 250 ms doubling to 5 s, each drawn from the upper half of its step. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

export function backoffMs(failures: number, random: () => number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures - 1, 5));
  return Math.floor(base / 2 + random() * (base / 2));
}
