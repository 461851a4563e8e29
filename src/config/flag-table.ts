/**
 * Every flag of `tulle run` and every flag of flanneld, with tulle's treatment of it: the one
 * table the option parser (run-options.ts), `tulle run --help` and docs/flannel-compat.md are
 * made from. Compatibility is data: a flanneld flag is added here, not as an `if` elsewhere.
 *
 * Each flag is also read from the environment as flanneld reads it (coreos/pkg/flagutil:
 * FLANNELD_ + the name upper-cased with `-` → `_`, only when not given on the command line, an
 * empty value is unset) and as TULLE_<FLAG>, which wins over FLANNELD_<FLAG>.
 */

export type FlagKind =
  | 'string'
  | 'bool'
  /** Go's int (base prefixes 0x, 0o, 0b, 0 as flanneld's flag package reads them) */
  | 'int'
  /** a whole number of minutes (flanneld), or a duration like 90s, 2h (tulle) */
  | 'minutes'
  /** a duration; a bare number is seconds */
  | 'duration';

/**
 * same      supported, same meaning as flanneld
 * differs   supported; `note` says how it differs
 * ignored   accepted with a log line and no effect (flanneld ignores it too in this setup)
 * refused   a flanneld flag tulle cannot honour: exit 2 naming it
 * tulle     tulle's own flag (flanneld has none)
 */
export type Treatment = 'same' | 'differs' | 'ignored' | 'refused' | 'tulle';

export interface FlagRow {
  readonly name: string;
  readonly kind: FlagKind;
  /** tulle's default (undefined: unset) */
  readonly default?: string;
  /** flanneld's default when it is not tulle's, for the docs */
  readonly flanneldDefault?: string;
  /** may be given several times (flanneld's flagSlice); the values are kept in order */
  readonly repeatable?: boolean;
  /** not read from the environment (flanneld checks --version before it reads FLANNELD_*) */
  readonly argvOnly?: boolean;
  readonly treatment: Treatment;
  readonly help: string;
  /** how it differs from flanneld, or why it is ignored/refused */
  readonly note?: string;
  /** test files that cover the row (docs) */
  readonly tests?: readonly string[];
}

const T_OPTS = 'test/unit/run-options.test.ts';
const T_ERR = 'test/integration/daemon-errors.test.ts';
const T_FLD = 'test/integration/flanneld-drop-in.test.ts';
const T_HOST = 'test/integration/host-rules.test.ts';
const T_POD = 'test/cni/pod-path.test.ts';
const T_KUBE = 'test/integration/kube-subnet-mgr.test.ts';
const T_KUBE_UNIT = 'test/unit/kube-node-lease.test.ts';
const T_KUBE_POD = 'test/integration/kube-in-cluster.test.ts';
const T_CNI = 'test/cni/cni-conf-pods.test.ts';
const T_CNI_UNIT = 'test/unit/cni-conf.test.ts';

export const FLAG_TABLE: readonly FlagRow[] = [
  { name: 'etcd-endpoints', kind: 'string', default: 'http://127.0.0.1:4001,http://127.0.0.1:2379', treatment: 'same', help: 'comma-separated etcd endpoints', tests: [T_OPTS, T_FLD] },
  { name: 'etcd-prefix', kind: 'string', default: '/coreos.com/network', treatment: 'same', help: 'etcd prefix of the network config and leases', tests: [T_OPTS, T_ERR] },
  { name: 'etcd-keyfile', kind: 'string', treatment: 'differs', help: 'client key for etcd (TLS)', note: 'TLS is used when any of the three TLS files is given; flanneld uses TLS only when both key and certificate are', tests: ['test/integration/etcd-tls.test.ts'] },
  { name: 'etcd-certfile', kind: 'string', treatment: 'differs', help: 'client certificate for etcd (TLS)', note: 'see --etcd-keyfile', tests: ['test/integration/etcd-tls.test.ts'] },
  { name: 'etcd-cafile', kind: 'string', treatment: 'differs', help: 'CA bundle to verify etcd (TLS)', note: 'see --etcd-keyfile', tests: ['test/integration/etcd-tls.test.ts'] },
  { name: 'etcd-username', kind: 'string', treatment: 'same', help: 'user name for etcd authentication', tests: [T_FLD] },
  { name: 'etcd-password', kind: 'string', treatment: 'same', help: 'password for etcd authentication', tests: [T_FLD] },
  {
    name: 'iface', kind: 'string', repeatable: true, treatment: 'same', tests: ['test/unit/iface-match.test.ts', T_FLD, T_ERR],
    help: 'underlay interface, by name or address; repeat to try several in order (default: the default-route interface)',
  },
  {
    name: 'iface-regex', kind: 'string', repeatable: true, treatment: 'same', tests: ['test/unit/iface-match.test.ts'],
    help: 'regex matched against interface addresses, then names, after --iface; repeatable',
  },
  { name: 'iface-can-reach', kind: 'string', treatment: 'same', help: 'use the interface (and source address) the kernel routes this address through', tests: ['test/unit/iface-match.test.ts', T_FLD] },
  { name: 'public-ip', kind: 'string', treatment: 'differs', help: 'address other nodes reach this one at (default: the address of the interface)', note: 'without --iface, flanneld exits when no interface holds the address; tulle uses the default-route interface', tests: [T_ERR] },
  {
    name: 'public-ipv6', kind: 'string', treatment: 'same', tests: [T_OPTS, 'test/unit/iface-match.test.ts', 'test/integration/dual-stack.test.ts'],
    help: "IPv6 address other nodes reach this one at (PublicIPv6 of the lease; default: the interface's first global IPv6 address)",
  },
  { name: 'ip-masq', kind: 'bool', default: 'false', treatment: 'same', help: 'masquerade overlay traffic leaving the Network', tests: [T_HOST, T_POD] },
  { name: 'ip-masq-fully-random-disable', kind: 'bool', default: 'false', treatment: 'same', help: 'no --random-fully on the MASQUERADE rules', tests: [T_OPTS, T_HOST] },
  { name: 'iptables-forward-rules', kind: 'bool', default: 'true', treatment: 'same', help: "add flanneld's FORWARD accept rules for the Network", tests: [T_HOST, T_POD] },
  { name: 'iptables-resync', kind: 'int', default: '5', treatment: 'same', help: 'seconds between checks that put back deleted rules (and the blackhole route)', tests: [T_OPTS, T_HOST] },
  { name: 'ip-blackhole-route', kind: 'bool', default: 'false', treatment: 'same', help: "add a blackhole route for this node's subnet (kept in place every --iptables-resync)", tests: [T_FLD] },
  { name: 'subnet-file', kind: 'string', default: '/run/flannel/subnet.env', treatment: 'same', help: 'where to write subnet.env', tests: [T_ERR] },
  {
    name: 'subnet-lease-renew-margin', kind: 'minutes', default: '60', treatment: 'differs', tests: [T_OPTS, T_ERR],
    help: 'renew the lease this long before it expires (minutes)', note: 'also takes a duration (90s, 2h); must be shorter than the lease TTL (flanneld: 1..1439 minutes)',
  },
  { name: 'healthz-ip', kind: 'string', default: '0.0.0.0', treatment: 'same', help: 'address of /healthz, /readyz and /metrics', tests: [T_ERR] },
  {
    name: 'healthz-port', kind: 'int', default: '0', treatment: 'differs', tests: [T_ERR],
    help: 'port of /healthz, /readyz and /metrics (0: off)', note: '/healthz answers JSON with the node state, not the text "flanneld is running"; /metrics is added',
  },
  { name: 'version', kind: 'bool', default: 'false', argvOnly: true, treatment: 'same', help: 'print the version and exit', tests: [T_OPTS] },
  {
    name: 'v', kind: 'int', default: '0', treatment: 'differs', tests: [T_OPTS],
    help: "log verbosity (klog's -v)", note: 'tulle logs with levels: -v >= 4 is --log-level=debug, >= 6 trace (unless --log-level is given)',
  },
  { name: 'vmodule', kind: 'string', treatment: 'ignored', help: "klog's per-file verbosity", note: 'no klog in tulle', tests: [T_OPTS] },
  { name: 'log_backtrace_at', kind: 'string', treatment: 'ignored', help: "klog's backtrace location", note: 'no klog in tulle', tests: [T_OPTS] },
  {
    name: 'kube-subnet-mgr', kind: 'bool', default: 'false', treatment: 'same', tests: [T_OPTS, T_KUBE_UNIT, 'test/unit/kube-dual-stack.test.ts', T_KUBE, T_KUBE_POD],
    help: "take the lease from the Kubernetes API (the node's spec.podCIDRs, one per enabled family; peers from a Node watch and flannel's annotations) instead of etcd",
    note: 'the node comes from NODE_NAME, else the node of pod POD_NAMESPACE/POD_NAME, as flanneld; a node without podCIDR is waited for (not ready); dual stack and IPv6 only as flanneld (public-ipv6, backend-v6-data); tested against an API-server double (test/bed/kube-apiserver.ts), not a live cluster',
  },
  { name: 'kube-api-url', kind: 'string', treatment: 'same', help: '(Kubernetes) API server URL; overrides the kubeconfig\'s server (default: in-cluster config)', tests: [T_OPTS, T_KUBE] },
  { name: 'kubeconfig-file', kind: 'string', treatment: 'same', help: '(Kubernetes) kubeconfig file (default: in-cluster config)', tests: [T_OPTS, T_KUBE, T_KUBE_POD] },
  {
    name: 'kube-annotation-prefix', kind: 'string', default: 'flannel.alpha.coreos.com', treatment: 'same', tests: [T_OPTS, T_KUBE_UNIT],
    help: '(Kubernetes) prefix of the node annotations; at most one "/" (else "/" is appended)',
  },
  {
    name: 'net-config-path', kind: 'string', default: '/etc/kube-flannel/net-conf.json', treatment: 'differs', tests: [T_OPTS, T_KUBE],
    help: '(Kubernetes) the network config file (net-conf.json)',
    note: 'flanneld exits when the file is missing or invalid; tulle waits for it (not ready) and reads it again every second, as it waits for the etcd config',
  },
  { name: 'set-node-network-unavailable', kind: 'bool', default: 'true', treatment: 'same', help: "(Kubernetes) set the node's NetworkUnavailable condition to False (reason FlannelIsUp) once ready", tests: [T_OPTS, T_KUBE] },
  // tulle's own
  { name: 'subnet-lease-ttl', kind: 'duration', default: '24h', treatment: 'tulle', help: 'TTL of the lease in etcd (flanneld fixes 24h)', tests: [T_ERR] },
  { name: 'state-dir', kind: 'string', default: '/var/lib/tulle', treatment: 'tulle', help: "tulle's own state: previous subnet, WireGuard key", tests: [T_ERR] },
  { name: 'tun-name', kind: 'string', default: 'tulle0', treatment: 'tulle', help: 'name of the TUN device', tests: [T_OPTS] },
  { name: 'log-level', kind: 'string', treatment: 'tulle', help: 'trace, debug, info, warn, error (default info)', tests: [T_OPTS] },
  {
    name: 'write-cni-conf-when-ready', kind: 'string', treatment: 'tulle', tests: [T_CNI_UNIT, T_CNI, T_OPTS],
    help: 'once the node is ready, write a CNI conflist (bridge + host-local + portmap, from the lease) to this path, e.g. /etc/cni/net.d/10-tulle.conflist; rewritten when the lease changes (as Cilium\'s --write-cni-conf-when-ready)',
  },
  { name: 'cni-conf-overwrite', kind: 'bool', default: 'false', treatment: 'tulle', help: 'replace a file at --write-cni-conf-when-ready that tulle did not write', tests: [T_CNI_UNIT, T_CNI] },
  { name: 'options-file', kind: 'string', treatment: 'tulle', help: 'JSON file of {"flag-name": value} (below the environment and flags)', tests: [T_OPTS] },
];

export type FlagName = string;

const byName = new Map(FLAG_TABLE.map((r) => [r.name, r]));

export function flagRow(name: string): FlagRow | undefined {
  return byName.get(name);
}

/** The environment variable flanneld reads for a flag (flagutil.SetFlagsFromEnv, prefix FLANNELD). */
export function flanneldEnvName(flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export function tulleEnvName(flag: string): string {
  return `TULLE_${flag.toUpperCase().replace(/-/g, '_')}`;
}
