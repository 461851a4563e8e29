/**
 * Options of `tulle run`: flanneld's flag names where one exists, each also settable as
 * TULLE_<FLAG> in the environment, or as "<flag>": value in a JSON file (--options-file).
 * Precedence: defaults < file < env < flags. All defaults live in FLAGS, here.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../util/errors.js';

type Kind = 'string' | 'list' | 'bool' | 'port' | 'duration' | 'minutes' | 'seconds';

interface FlagSpec {
  kind: Kind;
  default: string | undefined;
  help: string;
}

export const FLAGS = {
  'etcd-endpoints': { kind: 'list', default: 'http://127.0.0.1:2379', help: 'comma-separated etcd endpoints' },
  'etcd-prefix': { kind: 'string', default: '/coreos.com/network', help: 'etcd prefix of the network config and leases' },
  'etcd-cafile': { kind: 'string', default: undefined, help: 'CA bundle to verify etcd (TLS)' },
  'etcd-certfile': { kind: 'string', default: undefined, help: 'client certificate for etcd (TLS)' },
  'etcd-keyfile': { kind: 'string', default: undefined, help: 'client key for etcd (TLS)' },
  iface: { kind: 'string', default: undefined, help: 'underlay interface (default: the default-route interface)' },
  'public-ip': { kind: 'string', default: undefined, help: 'address other nodes reach this one at (default: the address of --iface)' },
  'ip-masq': { kind: 'bool', default: 'false', help: 'masquerade overlay traffic leaving the Network' },
  'ip-masq-fully-random-disable': { kind: 'bool', default: 'false', help: 'no --random-fully on the MASQUERADE rules' },
  'iptables-forward-rules': { kind: 'bool', default: 'true', help: "add flanneld's accept rules for the Network to the FORWARD chain" },
  'iptables-resync': { kind: 'seconds', default: '5', help: 'put back deleted rules this often (seconds)' },
  'subnet-file': { kind: 'string', default: '/run/flannel/subnet.env', help: 'where to write subnet.env' },
  'subnet-lease-renew-margin': { kind: 'minutes', default: '60', help: 'renew this long before expiry (minutes, or a duration like 30s)' },
  'subnet-lease-ttl': { kind: 'duration', default: '24h', help: 'lease TTL in etcd (tulle only; flannel fixes 24h)' },
  'healthz-ip': { kind: 'string', default: '0.0.0.0', help: 'address of the /healthz and /readyz server' },
  'healthz-port': { kind: 'port', default: '0', help: 'port of the /healthz and /readyz server (0: off)' },
  'state-dir': { kind: 'string', default: '/var/lib/tulle', help: "tulle's own state (previous subnet)" },
  'tun-name': { kind: 'string', default: 'tulle0', help: 'name of the TUN device' },
  'log-level': { kind: 'string', default: 'info', help: 'trace, debug, info, warn, error' },
  'options-file': { kind: 'string', default: undefined, help: 'JSON file of {"flag-name": value} (below env and flags)' },
} satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

export interface RunOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdCafile: string | undefined;
  readonly etcdCertfile: string | undefined;
  readonly etcdKeyfile: string | undefined;
  readonly iface: string | undefined;
  readonly publicIp: string | undefined;
  readonly ipMasq: boolean;
  /** flanneld's --ip-masq-fully-random-disable */
  readonly ipMasqFullyRandomDisable: boolean;
  /** flanneld's --iptables-forward-rules (default true) */
  readonly iptablesForwardRules: boolean;
  /** flanneld's --iptables-resync, seconds (default 5) */
  readonly iptablesResyncSeconds: number;
  readonly subnetFile: string;
  readonly renewMarginMs: number;
  readonly leaseTtlMs: number;
  readonly healthzIp: string;
  readonly healthzPort: number;
  readonly stateDir: string;
  readonly tunName: string;
  readonly logLevel: string;
}

export function envName(flag: string): string {
  return `TULLE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(field: string, text: string, bareUnitMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new ConfigError(field, `"${text}" is not a duration (e.g. 60 minutes as "60", "90s", "2h")`);
  return Math.round(Number(m[1]) * (m[2] ? UNITS[m[2]]! : bareUnitMs));
}

/** Splits argv into flag values; accepts --flag=value, --flag value, -flag=value, --bool. */
export function parseFlagArgs(argv: readonly string[]): Partial<Record<FlagName, string>> {
  const out: Partial<Record<FlagName, string>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError(arg, 'unexpected argument (flags look like --etcd-endpoints=http://10.0.0.1:2379)');
    const name = m[1] as FlagName;
    const spec: FlagSpec | undefined = FLAGS[name];
    if (!spec) throw new ConfigError(`--${m[1]}`, 'unknown flag (see tulle run --help)');
    if (m[2] !== undefined) out[name] = m[2];
    else if (spec.kind === 'bool') out[name] = argv[i + 1] === 'true' || argv[i + 1] === 'false' ? argv[++i]! : 'true';
    else if (i + 1 < argv.length) out[name] = argv[++i]!;
    else throw new ConfigError(`--${name}`, 'needs a value');
  }
  return out;
}

export function parseRunOptions(argv: readonly string[], env: NodeJS.ProcessEnv): RunOptions {
  const flags = parseFlagArgs(argv);
  const fileName = flags['options-file'] ?? env[envName('options-file')];
  const file = fileName ? readOptionsFile(fileName) : {};
  const raw = (name: FlagName): { value: string | undefined; field: string } => {
    if (flags[name] !== undefined) return { value: flags[name], field: `--${name}` };
    const e = env[envName(name)];
    if (e !== undefined && e !== '') return { value: e, field: envName(name) };
    if (file[name] !== undefined) return { value: file[name], field: `${fileName}: ${name}` };
    return { value: FLAGS[name].default, field: `--${name}` };
  };
  const str = (n: FlagName) => raw(n).value;
  const bool = (n: FlagName) => {
    const { value, field } = raw(n);
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0' || value === undefined) return false;
    throw new ConfigError(field, `must be true or false, got "${value}"`);
  };
  const port = (n: FlagName) => {
    const { value, field } = raw(n);
    const v = Number(value);
    if (!/^\d+$/.test(value ?? '') || v > 65535) throw new ConfigError(field, `must be a port 0..65535, got "${value}"`);
    return v;
  };
  const positiveInt = (n: FlagName) => {
    const { value, field } = raw(n);
    if (!/^\d+$/.test(value ?? '') || Number(value) < 1) throw new ConfigError(field, `must be a whole number of seconds >= 1, got "${value}"`);
    return Number(value);
  };
  const dur = (n: FlagName, bareUnitMs: number) => {
    const { value, field } = raw(n);
    const ms = parseDuration(field, value!, bareUnitMs);
    if (ms <= 0) throw new ConfigError(field, 'must be positive');
    return ms;
  };
  const endpoints = str('etcd-endpoints')!.split(',').map((s) => s.trim()).filter(Boolean);
  if (!endpoints.length) throw new ConfigError(raw('etcd-endpoints').field, 'needs at least one endpoint');
  for (const e of endpoints) {
    if (!/^(https?:\/\/)?[^/\s]+:\d+\/?$/.test(e)) throw new ConfigError(raw('etcd-endpoints').field, `"${e}" is not like http://HOST:PORT`);
  }
  const prefix = str('etcd-prefix')!;
  if (!prefix.startsWith('/')) throw new ConfigError(raw('etcd-prefix').field, `"${prefix}" must start with /`);
  const leaseTtlMs = dur('subnet-lease-ttl', 1000);
  const renewMarginMs = dur('subnet-lease-renew-margin', 60_000);
  if (renewMarginMs >= leaseTtlMs) {
    throw new ConfigError(raw('subnet-lease-renew-margin').field, `(${renewMarginMs} ms) must be shorter than the lease TTL (${leaseTtlMs} ms)`);
  }
  const logLevel = str('log-level')!;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    throw new ConfigError(raw('log-level').field, `"${logLevel}" is not a log level`);
  }
  return Object.freeze({
    etcdEndpoints: Object.freeze(endpoints),
    etcdPrefix: prefix.replace(/\/+$/, ''),
    etcdCafile: str('etcd-cafile'),
    etcdCertfile: str('etcd-certfile'),
    etcdKeyfile: str('etcd-keyfile'),
    iface: str('iface'),
    publicIp: str('public-ip'),
    ipMasq: bool('ip-masq'),
    ipMasqFullyRandomDisable: bool('ip-masq-fully-random-disable'),
    iptablesForwardRules: bool('iptables-forward-rules'),
    iptablesResyncSeconds: positiveInt('iptables-resync'),
    subnetFile: str('subnet-file')!,
    renewMarginMs,
    leaseTtlMs,
    healthzIp: str('healthz-ip')!,
    healthzPort: port('healthz-port'),
    stateDir: str('state-dir')!,
    tunName: str('tun-name')!,
    logLevel,
  });
}

function readOptionsFile(path: string): Partial<Record<FlagName, string>> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError('--options-file', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError('--options-file', `${path} must hold a JSON object`);
  const out: Partial<Record<FlagName, string>> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!(k in FLAGS) || k === 'options-file') throw new ConfigError(`${path}: ${k}`, 'unknown option');
    out[k as FlagName] = Array.isArray(val) ? val.join(',') : String(val);
  }
  return out;
}

export function flagsHelp(): string {
  return Object.entries(FLAGS)
    .map(([name, s]) => `  --${name.padEnd(27)} ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}\n  ${''.padEnd(29)} env ${envName(name)}`)
    .join('\n');
}
