/** Runs a host command (ip, iptables, ...) and turns a failure into an error that names it. */
import { execFile } from 'node:child_process';
import { TulleError } from '../util/errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim() || err.message;
        reject(new TulleError('ERR_TULLE_EXEC', `${cmd} ${args.join(' ')}: ${detail}`, { cause: err }));
      } else {
        resolve({ stdout, stderr });
      }
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
