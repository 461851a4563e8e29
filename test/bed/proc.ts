/** Waiting on processes by event, with a deadline, instead of sleeping. */
import type { ChildProcess } from 'node:child_process';

/** Resolves when a line of the process's stdout or stderr matches; rejects at the deadline or exit. */
export function waitForOutput(p: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const done = (err?: Error, line?: string) => {
      clearTimeout(timer);
      p.stdout?.off('data', onData);
      p.stderr?.off('data', onData);
      p.off('exit', onExit);
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const m = seen.split('\n').find((l) => pattern.test(l));
      if (m !== undefined) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`process exited (${code}) before printing ${pattern}: ${seen.slice(-2000)}`));
    const timer = setTimeout(() => done(new Error(`no ${pattern} within ${timeoutMs} ms: ${seen.slice(-2000)}`)), timeoutMs);
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    p.once('exit', onExit);
  });
}

/** Polls `probe` until it returns a value that is not undefined, or throws at the deadline. */
export async function pollUntil<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
