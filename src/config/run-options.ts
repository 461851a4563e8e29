/**
 * Options of `tulle run`, made from the flag table (flag-table.ts). Sources, lowest first:
 * defaults < --options-file < FLANNELD_<FLAG> < TULLE_<FLAG> < flags. The command line is read
 * as Go's flag package reads flanneld's: -flag or --flag, =value or a separate value, a bare
 * bool flag is true; repeatable flags keep every value in order; for the others the last wins.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../util/errors.js';
import { annotationNames } from '../registry/kube/annotations.js';
import { FLAG_TABLE, flagRow, flanneldEnvName, tulleEnvName, type FlagRow } from './flag-table.js';

export { FLAG_TABLE, flanneldEnvName } from './flag-table.js';

export interface RunOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdCafile: string | undefined;
  readonly etcdCertfile: string | undefined;
  readonly etcdKeyfile: string | undefined;
  readonly etcdUsername: string | undefined;
  readonly etcdPassword: string | undefined;
  /** --iface, in the order given: names or addresses to try */
  readonly ifaces: readonly string[];
  /** --iface-regex, in the order given */
  readonly ifaceRegexes: readonly string[];
  readonly ifaceCanReach: string | undefined;
  readonly publicIp: string | undefined;
  /** flanneld's --public-ipv6 */
  readonly publicIpv6: string | undefined;
  readonly ipMasq: boolean;
  /** flanneld's --ip-masq-fully-random-disable */
  readonly ipMasqFullyRandomDisable: boolean;
  /** flanneld's --iptables-forward-rules (default true) */
  readonly iptablesForwardRules: boolean;
  /** flanneld's --iptables-resync, seconds (default 5) */
  readonly iptablesResyncSeconds: number;
  /** flanneld's --ip-blackhole-route */
  readonly ipBlackholeRoute: boolean;
  readonly subnetFile: string;
  readonly renewMarginMs: number;
  readonly leaseTtlMs: number;
  readonly healthzIp: string;
  readonly healthzPort: number;
  readonly stateDir: string;
  readonly tunName: string;
  /** --write-cni-conf-when-ready: where to write the CNI conflist once ready (unset: none) */
  readonly cniConfPath: string | undefined;
  /** --cni-conf-overwrite: replace a file there that tulle did not write */
  readonly cniConfOverwrite: boolean;
  readonly logLevel: string;
  /** --version: print the version and exit */
  readonly version: boolean;
  /** flanneld's --kube-subnet-mgr: the Kubernetes API instead of etcd */
  readonly kubeSubnetMgr: boolean;
  readonly kubeApiUrl: string | undefined;
  readonly kubeconfigFile: string | undefined;
  readonly kubeAnnotationPrefix: string;
  readonly netConfigPath: string;
  readonly setNodeNetworkUnavailable: boolean;
  /** flags accepted without effect, for one log line each */
  readonly notices: readonly string[];
}

/** TULLE_<FLAG>: the environment name tulle reads first. */
export function envName(flag: string): string {
  return tulleEnvName(flag);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(field: string, text: string, bareUnitMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new ConfigError(field, `"${text}" is not a duration (e.g. 60 minutes as "60", "90s", "2h")`);
  return Math.round(Number(m[1]) * (m[2] ? UNITS[m[2]]! : bareUnitMs));
}

/** Go's strconv.ParseBool, as the flag package reads a bool. */
export function parseGoBool(field: string, text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw new ConfigError(field, `must be true or false, got "${text}"`);
}

/** Go's strconv.ParseInt(s, 0, 64), as the flag package reads an int: 42, 0x2a, 0o52, 052, 0b101010, 1_000 after a prefix. */
export function parseGoInt(field: string, text: string): number {
  const m = /^([+-]?)(0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])*|[1-9][0-9]*)$/.exec(text);
  if (!m) throw new ConfigError(field, `must be a whole number, got "${text}"`);
  const digits = m[2]!.replace(/_/g, '');
  const lower = digits.toLowerCase();
  const n = lower.startsWith('0x') ? parseInt(lower.slice(2), 16)
    : lower.startsWith('0o') ? parseInt(lower.slice(2), 8)
    : lower.startsWith('0b') ? parseInt(lower.slice(2), 2)
    : lower.length > 1 && lower.startsWith('0') ? parseInt(lower.slice(1), 8)
    : parseInt(lower, 10);
  const v = m[1] === '-' ? -n : n;
  if (!Number.isSafeInteger(v)) throw new ConfigError(field, `is out of range: "${text}"`);
  return v;
}

/** Splits argv into flag values, every occurrence kept in order. */
export function parseFlagArgs(argv: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      if (i + 1 < argv.length) throw new ConfigError(argv[i + 1]!, 'unexpected argument (tulle run takes only flags)');
      break;
    }
    const m = /^--?([A-Za-z0-9][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError(arg, 'unexpected argument (flags look like --etcd-endpoints=http://10.0.0.1:2379)');
    const name = m[1]!;
    const row = flagRow(name);
    if (!row) throw new ConfigError(`--${name}`, 'unknown flag (see tulle run --help, and docs/flannel-compat.md for flanneld\'s flags)');
    let value: string;
    if (m[2] !== undefined) value = m[2];
    else if (row.kind === 'bool') value = /^(true|false)$/.test(argv[i + 1] ?? '') ? argv[++i]! : 'true';
    else if (i + 1 < argv.length) value = argv[++i]!;
    else throw new ConfigError(`--${name}`, 'needs a value');
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

interface Source {
  values: string[];
  field: string;
  given: boolean;
}

export function parseRunOptions(argv: readonly string[], env: NodeJS.ProcessEnv): RunOptions {
  const flags = parseFlagArgs(argv);
  const fileName = flags.get('options-file')?.at(-1) ?? (env[tulleEnvName('options-file')] || env[flanneldEnvName('options-file')] || undefined);
  const file = fileName ? readOptionsFile(fileName) : new Map<string, string[]>();

  const source = (row: FlagRow): Source => {
    const fromArgv = flags.get(row.name);
    if (fromArgv) return { values: row.repeatable ? fromArgv : [fromArgv.at(-1)!], field: `--${row.name}`, given: true };
    if (!row.argvOnly) {
      for (const e of [tulleEnvName(row.name), flanneldEnvName(row.name)]) {
        const v = env[e];
        if (v !== undefined && v !== '') return { values: [v], field: e, given: true };
      }
    }
    const f = file.get(row.name);
    if (f) return { values: f, field: `${fileName}: ${row.name}`, given: true };
    return { values: row.default === undefined ? [] : [row.default], field: `--${row.name}`, given: false };
  };
  const src = (name: string) => source(flagRow(name)!);
  const str = (name: string) => src(name).values.at(-1);
  const bool = (name: string) => {
    const s = src(name);
    return s.values.length ? parseGoBool(s.field, s.values.at(-1)!) : false;
  };
  const int = (name: string, min: number, max: number) => {
    const s = src(name);
    const v = parseGoInt(s.field, s.values.at(-1)!);
    if (v < min || v > max) throw new ConfigError(s.field, `must be ${min}..${max}, got ${v}`);
    return v;
  };
  const dur = (name: string, bareUnitMs: number) => {
    const s = src(name);
    const ms = parseDuration(s.field, s.values.at(-1)!, bareUnitMs);
    if (ms <= 0) throw new ConfigError(s.field, 'must be positive');
    return ms;
  };

  const notices: string[] = [];
  for (const row of FLAG_TABLE) {
    const s = source(row);
    if (row.treatment === 'refused' && s.given && parseGoBool(s.field, s.values.at(-1)!)) {
      throw new ConfigError(s.field, `flanneld's --${row.name} is not supported by tulle yet (${row.note ?? 'see docs/flannel-compat.md'})`);
    }
    if (row.treatment === 'ignored' && s.given) notices.push(`${s.field} is accepted and ignored: ${row.note}`);
  }

  const endpointsSrc = src('etcd-endpoints');
  const endpoints = endpointsSrc.values.at(-1)!.split(',').map((s) => s.trim()).filter(Boolean);
  if (!endpoints.length) throw new ConfigError(endpointsSrc.field, 'needs at least one endpoint');
  for (const e of endpoints) {
    if (!/^(https?:\/\/)?[^/\s]+:\d+\/?$/.test(e)) throw new ConfigError(endpointsSrc.field, `"${e}" is not like http://HOST:PORT`);
  }
  const prefix = str('etcd-prefix')!;
  if (!prefix.startsWith('/')) throw new ConfigError(src('etcd-prefix').field, `"${prefix}" must start with /`);
  const leaseTtlMs = dur('subnet-lease-ttl', 1000);
  const marginSrc = src('subnet-lease-renew-margin');
  const marginText = marginSrc.values.at(-1)!;
  const renewMarginMs = /^[+-]?\d/.test(marginText) && !/[a-z]$/.test(marginText) ? parseGoInt(marginSrc.field, marginText) * 60_000 : dur('subnet-lease-renew-margin', 60_000);
  if (renewMarginMs <= 0) throw new ConfigError(marginSrc.field, 'must be positive');
  if (renewMarginMs >= leaseTtlMs) throw new ConfigError(marginSrc.field, `(${renewMarginMs} ms) must be shorter than the lease TTL (${leaseTtlMs} ms)`);

  const verbosity = int('v', 0, 1000);
  const levelSrc = src('log-level');
  const logLevel = levelSrc.given ? levelSrc.values.at(-1)! : verbosity >= 6 ? 'trace' : verbosity >= 4 ? 'debug' : 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    throw new ConfigError(levelSrc.field, `"${logLevel}" is not a log level`);
  }
  const address = (name: string, family: 4 | 6) => {
    const s = src(name);
    const v = s.values.at(-1);
    if (v !== undefined && !(family === 4 ? isIPv4(v) : isIPv6(v))) throw new ConfigError(s.field, `"${v}" is not an IPv${family} address`);
    return v;
  };
  const cniSrc = src('write-cni-conf-when-ready');
  const cniConfPath = cniSrc.values.at(-1);
  if (cniConfPath !== undefined) {
    // a runtime reads a .conf or .json file as one plugin's config: a conflist must be named .conflist
    if (!cniConfPath.startsWith('/')) throw new ConfigError(cniSrc.field, `"${cniConfPath}" must be an absolute path (e.g. /etc/cni/net.d/10-tulle.conflist)`);
    if (!cniConfPath.endsWith('.conflist') || cniConfPath.endsWith('/.conflist')) {
      throw new ConfigError(cniSrc.field, `"${cniConfPath}" must name a .conflist file (e.g. /etc/cni/net.d/10-tulle.conflist): container runtimes read .conf and .json files as a single plugin's config`);
    }
  }
  const ifaceRegexes = src('iface-regex');
  for (const r of ifaceRegexes.values) {
    try {
      new RegExp(r);
    } catch (cause) {
      throw new ConfigError(ifaceRegexes.field, `"${r}" is not a regular expression: ${(cause as Error).message}`, { cause });
    }
  }

  const kubeSubnetMgr = bool('kube-subnet-mgr');
  const kubeAnnotationPrefix = str('kube-annotation-prefix')!;
  // as flanneld, checked only when it is used
  if (kubeSubnetMgr) annotationNames(kubeAnnotationPrefix, src('kube-annotation-prefix').field);

  return Object.freeze({
    etcdEndpoints: Object.freeze(endpoints),
    etcdPrefix: prefix.replace(/\/+$/, ''),
    etcdCafile: str('etcd-cafile'),
    etcdCertfile: str('etcd-certfile'),
    etcdKeyfile: str('etcd-keyfile'),
    etcdUsername: str('etcd-username'),
    etcdPassword: str('etcd-password'),
    ifaces: Object.freeze([...src('iface').values]),
    ifaceRegexes: Object.freeze([...ifaceRegexes.values]),
    ifaceCanReach: address('iface-can-reach', 4),
    publicIp: address('public-ip', 4),
    publicIpv6: address('public-ipv6', 6),
    ipMasq: bool('ip-masq'),
    ipMasqFullyRandomDisable: bool('ip-masq-fully-random-disable'),
    iptablesForwardRules: bool('iptables-forward-rules'),
    iptablesResyncSeconds: int('iptables-resync', 1, 86_400),
    ipBlackholeRoute: bool('ip-blackhole-route'),
    subnetFile: str('subnet-file')!,
    renewMarginMs,
    leaseTtlMs,
    healthzIp: str('healthz-ip')!,
    healthzPort: int('healthz-port', 0, 65535),
    stateDir: str('state-dir')!,
    tunName: str('tun-name')!,
    cniConfPath,
    cniConfOverwrite: bool('cni-conf-overwrite'),
    logLevel,
    version: bool('version'),
    kubeSubnetMgr,
    kubeApiUrl: str('kube-api-url') || undefined,
    kubeconfigFile: str('kubeconfig-file') || undefined,
    kubeAnnotationPrefix,
    netConfigPath: str('net-config-path')!,
    setNodeNetworkUnavailable: bool('set-node-network-unavailable'),
    notices: Object.freeze(notices),
  });
}

function readOptionsFile(path: string): Map<string, string[]> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError('--options-file', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError('--options-file', `${path} must hold a JSON object`);
  const out = new Map<string, string[]>();
  for (const [k, val] of Object.entries(v)) {
    const row = flagRow(k);
    if (!row || k === 'options-file') throw new ConfigError(`${path}: ${k}`, 'unknown option');
    out.set(k, Array.isArray(val) ? (row.repeatable ? val.map(String) : [val.join(',')]) : [String(val)]);
  }
  return out;
}

export function flagsHelp(): string {
  return FLAG_TABLE.filter((r) => r.treatment !== 'ignored')
    .map((r) => {
      const dflt = r.default !== undefined && r.default !== '' ? ` (default ${r.default})` : '';
      const env = r.argvOnly ? '' : `\n  ${''.padEnd(31)} env ${tulleEnvName(r.name)}, ${flanneldEnvName(r.name)}`;
      return `  --${r.name.padEnd(29)} ${r.help}${r.repeatable ? ' [repeatable]' : ''}${dflt}${env}`;
    })
    .join('\n');
}
