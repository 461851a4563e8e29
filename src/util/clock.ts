/** Time, injected: the real one here, a fake one in unit tests. */
export interface Clock {
  now(): number;
  /** Calls fn after ms; the returned function cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/**
 * The real clock's timers keep the process alive (they are not unref'd): a timer is work the
 * program still means to do, and a node waiting on one (for etcd, for the network config, before
 * retrying a lost race) must not be ended by Node for an empty event loop — that was issue 15's
 * silent exit 13. Whoever sets a timer cancels it when it no longer wants it: stop() cancels
 * every wait (see sleep's signal), so a stopped node holds nothing open.
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => clearTimeout(t);
  },
};

/** Resolves after ms on the given clock, or at once (and cancels the timer) when signal aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal?.removeEventListener('abort', done);
      cancel();
      resolve();
    };
    const cancel = clock.setTimer(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
