/**
 * `tulle status [--json] [--state-dir=DIR | --socket=PATH]`: asks the running daemon over its
 * control socket (<state-dir>/tulle.sock) and prints what it says. Exit 0 on an answer, 1 when
 * there is none (no daemon, not root, the daemon went away), 2 on bad flags.
 */
import { controlSocketPath } from '../control/control-server.js';
import { requestControl } from '../control/control-client.js';
import { renderStatus } from '../control/status-render.js';
import type { StatusSnapshot } from '../control/status-snapshot.js';

const DEFAULT_STATE_DIR = '/var/lib/tulle';

export const STATUS_USAGE = `usage: tulle status [--json] [--state-dir=DIR] [--socket=PATH]

  --json        print the daemon's answer as JSON
  --state-dir   the daemon's --state-dir (default ${DEFAULT_STATE_DIR}; also TULLE_STATE_DIR)
  --socket      the control socket itself (default <state-dir>/tulle.sock)
`;

export async function runStatus(argv: readonly string[], env: NodeJS.ProcessEnv, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  let json = false;
  let stateDir = env.TULLE_STATE_DIR || env.FLANNELD_STATE_DIR || DEFAULT_STATE_DIR;
  let socket: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(a);
    const value = () => m?.[2] ?? argv[++i];
    if (m?.[1] === 'json') json = true;
    else if (m?.[1] === 'state-dir') stateDir = value() ?? '';
    else if (m?.[1] === 'socket') socket = value() ?? '';
    else if (m?.[1] === 'help' || m?.[1] === 'h') {
      out.write(STATUS_USAGE);
      return 0;
    } else {
      process.stderr.write(`tulle status: unknown argument '${a}'\n\n${STATUS_USAGE}`);
      return 2;
    }
  }
  if (!stateDir && !socket) {
    process.stderr.write(`tulle status: --state-dir needs a value\n`);
    return 2;
  }
  const file = socket || controlSocketPath(stateDir);
  let snap: StatusSnapshot;
  try {
    snap = (await requestControl(file, 'status')) as StatusSnapshot;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    process.stderr.write(`tulle status: ${err.message ?? String(e)}${err.code ? ` [${err.code}]` : ''}\n`);
    return 1;
  }
  const color = !json && out.isTTY === true && !env.NO_COLOR;
  out.write(json ? `${JSON.stringify(snap, null, 1)}\n` : renderStatus(snap, { color, now: Date.now() }));
  return 0;
}
