/**
 * One pino logger for the process, a child per component. JSON lines on stdout; when stdout is
 * a terminal, a small formatter turns them into "12:03:04 INFO  lease: lease acquired subnet=…".
 */
import { pino, type Logger } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '90', 20: '90', 30: '32', 40: '33', 50: '31', 60: '31' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component']);

/** One JSON log line → one readable line (exported for tests). */
export function formatLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = Number(o.level);
  const time = new Date(Number(o.time)).toISOString().slice(11, 23);
  const lv = LEVELS[level] ?? String(o.level);
  const tag = color ? `\x1b[${COLORS[level] ?? '0'}m${lv}\x1b[0m` : lv;
  const extra = Object.entries(o)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${tag} ${o.component ? `${String(o.component)}: ` : ''}${String(o.msg ?? '')}${extra ? ` ${extra}` : ''}\n`;
}

export function createLogger(level: string, pretty = process.stdout.isTTY === true): Logger {
  const opts = { level, base: { pid: process.pid }, redact: ['privateKey', '*.privateKey', 'psk', '*.psk'] };
  if (!pretty) return pino(opts, pino.destination({ dest: 1, sync: true }));
  return pino(opts, { write: (line: string) => void process.stdout.write(formatLine(line, true)) });
}
