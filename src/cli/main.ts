/** The `tulle` command: dispatch only. */
import { flagsHelp } from '../config/run-options.js';
import { runDaemon } from '../node/daemon.js';
import { runStatus } from './status-command.js';
import { runVersion } from './version-command.js';

const USAGE = `usage: tulle <command> [flags]

  run     join the overlay: lease a subnet in etcd, forward for it
  status  ask the running daemon: node, lease, etcd, peers, traffic (--json; root only)
  demo    three nodes and etcd in namespaces on this machine (--keep: stay up until Ctrl-C)
  version the version, the native addon's build and the offloads this kernel accepts (also --version)
  help    this text

tulle run flags:
${flagsHelp()}
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      if (rest.includes('--help') || rest.includes('-h')) break;
      return runDaemon(rest, process.env);
    case 'status':
      return runStatus(rest, process.env);
    case '--version':
    case '-version':
    case 'version':
      return runVersion();
    case 'demo': {
      const { runDemo } = await import('../demo/demo.js');
      return runDemo(rest);
    }
    case 'help':
    case '--help':
    case '-h':
    case undefined:
      break;
    default:
      process.stderr.write(`tulle: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
  }
  process.stdout.write(USAGE);
  return 0;
}
