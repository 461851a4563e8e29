/**
 * The process around a command: the command's result is the exit status, and nothing ends the
 * process without a line that says why (README "Exit codes").
 *
 *   main resolves N         → exit N (the command has logged its own last line)
 *   main rejects            → fatal {code, exitCode: 1}, exit 1
 *   the event loop runs dry → fatal {code: ERR_TULLE_STALLED, exitCode: 1}, exit 1
 *     while main is still pending: something is being waited on that no handle keeps alive.
 *     Node would otherwise end the process by itself, silently — with status 13 under a
 *     top-level await, 0 without one (issue 15).
 */
import type { Logger } from 'pino';
import { createLogger } from '../log/logger.js';

export const EXIT_OK = 0;
export const EXIT_FATAL = 1;
export const EXIT_BAD_FLAGS = 2;

/** One fatal line with a stable code (the error's own, else ERR_TULLE_INTERNAL) and the exit status. */
export function logFatal(log: Logger, e: unknown, exitCode: number): void {
  const err = e as { code?: unknown; field?: unknown; message?: unknown; stack?: unknown; cause?: { stack?: unknown } } | undefined;
  const code = typeof err?.code === 'string' ? err.code : 'ERR_TULLE_INTERNAL';
  const fields: Record<string, unknown> = { code, exitCode };
  if (typeof err?.field === 'string') fields.field = err.field;
  if (code === 'ERR_TULLE_INTERNAL' || code === 'ERR_TULLE_UNCAUGHT') fields.stack = String(err?.cause?.stack ?? err?.stack ?? '');
  log.fatal(fields, typeof err?.message === 'string' ? err.message : String(e));
}

/** Runs main and exits the process with its status; see the table above. */
export function runToExit(main: () => Promise<number>, log: () => Logger = () => createLogger('info').child({ component: 'main' })): void {
  let settled = false;
  process.on('beforeExit', () => {
    if (settled) return;
    settled = true;
    logFatal(log(), { code: 'ERR_TULLE_STALLED', message: 'nothing keeps the process alive, yet tulle has not finished: exiting rather than ending silently' }, EXIT_FATAL);
    process.exit(EXIT_FATAL);
  });
  main().then(
    (code) => {
      settled = true;
      process.exit(code);
    },
    (e: unknown) => {
      settled = true;
      logFatal(log(), e, EXIT_FATAL);
      process.exit(EXIT_FATAL);
    },
  );
}
