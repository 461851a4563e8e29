/** Runs a host command (ip, iptables, ...) and turns a failure into an error that names it. */
import { execFile } from 'node:child_process';
import { TulleError } from '../util/errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A command that exited non-zero (or could not start): its output is kept for the caller. */
export class ExecError extends TulleError {
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly exitCode: number | null,
    options?: { cause?: unknown },
  ) {
    super('ERR_TULLE_EXEC', message, options);
    this.name = 'ExecError';
  }
}

export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim() || err.message;
        const code = typeof err.code === 'number' ? err.code : null;
        reject(new ExecError(`${cmd} ${args.join(' ')}: ${detail}`, stdout, stderr, code, { cause: err }));
      } else {
        resolve({ stdout, stderr });
      }
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
