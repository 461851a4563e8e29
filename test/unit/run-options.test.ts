import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { envName, flanneldEnvName, parseGoInt, parseRunOptions, FLAG_TABLE } from '../../src/config/run-options.js';
import { ConfigError } from '../../src/util/errors.js';
import { kubeSettings, type KubeFlags } from '../../src/registry/kube/kube-settings.js';

const field = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  try {
    parseRunOptions(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('no error');
};

describe('run options', () => {
  it("has flanneld's defaults", () => {
    expect(parseRunOptions([], {})).toEqual({
      etcdEndpoints: ['http://127.0.0.1:4001', 'http://127.0.0.1:2379'], etcdPrefix: '/coreos.com/network', etcdCafile: undefined, etcdCertfile: undefined,
      etcdKeyfile: undefined, etcdUsername: undefined, etcdPassword: undefined, ifaces: [], ifaceRegexes: [], ifaceCanReach: undefined,
      publicIp: undefined, ipMasq: false, ipMasqFullyRandomDisable: false, iptablesForwardRules: true, iptablesResyncSeconds: 5,
      ipBlackholeRoute: false, subnetFile: '/run/flannel/subnet.env', renewMarginMs: 60 * 60_000, leaseTtlMs: 24 * 3600_000,
      healthzIp: '0.0.0.0', healthzPort: 0, stateDir: '/var/lib/tulle', tunName: 'tulle0', cniConfPath: undefined, cniConfOverwrite: false, logLevel: 'info', version: false, notices: [],
      kubeSubnetMgr: false, kubeApiUrl: undefined, kubeconfigFile: undefined, kubeAnnotationPrefix: 'flannel.alpha.coreos.com',
      netConfigPath: '/etc/kube-flannel/net-conf.json', setNodeNetworkUnavailable: true,
    });
  });

  it('--write-cni-conf-when-ready takes an absolute .conflist path, from a flag or TULLE_WRITE_CNI_CONF_WHEN_READY', () => {
    expect(parseRunOptions(['--write-cni-conf-when-ready=/etc/cni/net.d/10-tulle.conflist', '--cni-conf-overwrite'], {})).toMatchObject({
      cniConfPath: '/etc/cni/net.d/10-tulle.conflist', cniConfOverwrite: true,
    });
    expect(parseRunOptions([], { TULLE_WRITE_CNI_CONF_WHEN_READY: '/x/05-t.conflist', TULLE_CNI_CONF_OVERWRITE: 'false' })).toMatchObject({
      cniConfPath: '/x/05-t.conflist', cniConfOverwrite: false,
    });
    // a .conf or .json file is read by runtimes as one plugin's config, not a list
    expect(field(['--write-cni-conf-when-ready=/etc/cni/net.d/10-tulle.conf'])).toBe('--write-cni-conf-when-ready');
    expect(field([], { TULLE_WRITE_CNI_CONF_WHEN_READY: 'net.d/10-tulle.conflist' })).toBe('TULLE_WRITE_CNI_CONF_WHEN_READY');
    expect(field(['--write-cni-conf-when-ready=/etc/cni/net.d/'])).toBe('--write-cni-conf-when-ready');
    expect(() => parseRunOptions(['--write-cni-conf-when-ready=/etc/cni/net.d/10-tulle.json'], {})).toThrow(/must name a \.conflist file/);
  });

  it('takes flags in both forms, env as TULLE_<FLAG>, and a file; file < env < flags', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tulle-opt-'));
    const file = path.join(dir, 'o.json');
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(file, JSON.stringify({ 'etcd-prefix': '/from/file', 'healthz-port': 1, 'ip-masq': true, 'etcd-endpoints': ['http://a:1', 'http://b:2'], iface: ['eth7', 'eth8'] }));
    const o = parseRunOptions(['--options-file', file, '--healthz-port=3', '-iface', 'eth1'], {
      [envName('healthz-port')]: '2', TULLE_ETCD_PREFIX: '/from/env', TULLE_PUBLIC_IP: '198.18.0.10',
    });
    expect(o).toMatchObject({
      etcdPrefix: '/from/env', healthzPort: 3, ipMasq: true, ifaces: ['eth1'], publicIp: '198.18.0.10', etcdEndpoints: ['http://a:1', 'http://b:2'],
    });
    expect(parseRunOptions(['--options-file', file], {}).ifaces).toEqual(['eth7', 'eth8']);
    expect(envName('subnet-lease-renew-margin')).toBe('TULLE_SUBNET_LEASE_RENEW_MARGIN');
  });

  it('reads FLANNELD_<FLAG> as flanneld does: below the command line and TULLE_<FLAG>, empty is unset', () => {
    expect(flanneldEnvName('etcd-endpoints')).toBe('FLANNELD_ETCD_ENDPOINTS');
    expect(flanneldEnvName('log_backtrace_at')).toBe('FLANNELD_LOG_BACKTRACE_AT');
    const env = {
      FLANNELD_ETCD_ENDPOINTS: 'http://198.18.0.2:2379', FLANNELD_IFACE: '198.18.0.10', FLANNELD_IP_MASQ: 'true', FLANNELD_ETCD_PREFIX: '/f',
      FLANNELD_ETCD_USERNAME: 'flannel', FLANNELD_ETCD_PASSWORD: 'secret', FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '30', FLANNELD_IPTABLES_RESYNC: '7',
      FLANNELD_IPTABLES_FORWARD_RULES: 'false', FLANNELD_HEALTHZ_PORT: '', TULLE_ETCD_PREFIX: '/t',
    };
    expect(parseRunOptions([], env)).toMatchObject({
      etcdEndpoints: ['http://198.18.0.2:2379'], ifaces: ['198.18.0.10'], ipMasq: true, etcdPrefix: '/t', etcdUsername: 'flannel', etcdPassword: 'secret',
      renewMarginMs: 30 * 60_000, iptablesResyncSeconds: 7, iptablesForwardRules: false, healthzPort: 0,
    });
    expect(parseRunOptions(['--etcd-prefix=/cli', '--iface=eth2'], env)).toMatchObject({ etcdPrefix: '/cli', ifaces: ['eth2'] });
    // a bad value names the variable it came from (flanneld logs it and goes on with the default; tulle stops)
    expect(field([], { FLANNELD_HEALTHZ_PORT: 'x' })).toBe('FLANNELD_HEALTHZ_PORT');
    expect(field([], { TULLE_HEALTHZ_PORT: 'x' })).toBe('TULLE_HEALTHZ_PORT');
  });

  it("reads values as Go's flag package does: bools, ints with base prefixes, repeatable flags, the last of the others", () => {
    expect(parseRunOptions(['-ip-masq=T', '--iptables-forward-rules=0'], {})).toMatchObject({ ipMasq: true, iptablesForwardRules: false });
    expect(parseRunOptions(['--healthz-port=0x2117'], {}).healthzPort).toBe(8471);
    expect([parseGoInt('f', '010'), parseGoInt('f', '0b11'), parseGoInt('f', '0o17'), parseGoInt('f', '0x1_0'), parseGoInt('f', '-3')]).toEqual([8, 3, 15, 16, -3]);
    expect(() => parseGoInt('f', '1_0')).toThrow(ConfigError);
    expect(() => parseGoInt('f', '08')).toThrow(ConfigError);
    expect(parseRunOptions(['--iface=eth0', '--iface', '198.18.0.10', '--iface-regex=^eth', '--iface-regex', '^198\\.18\\.'], {})).toMatchObject({
      ifaces: ['eth0', '198.18.0.10'], ifaceRegexes: ['^eth', '^198\\.18\\.'],
    });
    expect(parseRunOptions(['--etcd-prefix=/a', '--etcd-prefix=/b'], {}).etcdPrefix).toBe('/b');
    expect(parseRunOptions(['--iface-can-reach=198.18.0.2', '--ip-blackhole-route'], {})).toMatchObject({ ifaceCanReach: '198.18.0.2', ipBlackholeRoute: true });
  });

  it("reads flanneld's iptables flags", () => {
    expect(parseRunOptions(['--iptables-forward-rules=false', '--iptables-resync=30', '--ip-masq-fully-random-disable'], {})).toMatchObject({
      iptablesForwardRules: false, iptablesResyncSeconds: 30, ipMasqFullyRandomDisable: true,
    });
    expect(field(['--iptables-resync=0'])).toBe('--iptables-resync');
  });

  it('--version from the command line only; -v is verbosity as in flanneld (klog)', () => {
    expect(parseRunOptions(['--version'], {}).version).toBe(true);
    expect(parseRunOptions(['-version'], {}).version).toBe(true);
    expect(parseRunOptions([], { FLANNELD_VERSION: 'true' }).version).toBe(false);
    expect(parseRunOptions(['-v=2'], {}).logLevel).toBe('info');
    expect(parseRunOptions(['-v', '4'], {}).logLevel).toBe('debug');
    expect(parseRunOptions([], { FLANNELD_V: '6' }).logLevel).toBe('trace');
    expect(parseRunOptions(['-v=6', '--log-level=warn'], {}).logLevel).toBe('warn');
  });

  it("Kubernetes: flanneld's flags with flanneld's defaults, from flags or FLANNELD_*; the prefix is checked only in that mode", () => {
    expect(parseRunOptions([], {})).toMatchObject({
      kubeSubnetMgr: false, kubeApiUrl: undefined, kubeconfigFile: undefined, kubeAnnotationPrefix: 'flannel.alpha.coreos.com',
      netConfigPath: '/etc/kube-flannel/net-conf.json', setNodeNetworkUnavailable: true,
    });
    const o = parseRunOptions(['--kube-subnet-mgr', '--kubeconfig-file=/etc/k', '--net-config-path=/x', '--set-node-network-unavailable=false'], { FLANNELD_KUBE_API_URL: 'https://k:6443', FLANNELD_KUBE_ANNOTATION_PREFIX: 'example.com/net' });
    expect(o).toMatchObject({ kubeSubnetMgr: true, kubeApiUrl: 'https://k:6443', kubeconfigFile: '/etc/k', kubeAnnotationPrefix: 'example.com/net', netConfigPath: '/x', setNodeNetworkUnavailable: false });
    expect(o.notices).toEqual([]);
    expect(parseRunOptions([], { FLANNELD_KUBE_SUBNET_MGR: 'true' }).kubeSubnetMgr).toBe(true);
    expect(field(['--kube-subnet-mgr', '--kube-annotation-prefix=a/b/c'])).toBe('--kube-annotation-prefix');
    expect(field(['--kube-subnet-mgr'], { FLANNELD_KUBE_ANNOTATION_PREFIX: 'NOPE' })).toBe('FLANNELD_KUBE_ANNOTATION_PREFIX');
    expect(parseRunOptions(['--kube-annotation-prefix=a/b/c'], {}).kubeSubnetMgr).toBe(false); // unused: not checked, as flanneld
    const ignored = parseRunOptions(['-vmodule=x=2', '--log_backtrace_at=a.go:1', '--public-ipv6=fd00::1'], {});
    expect(ignored.notices).toHaveLength(2);
    expect(ignored.publicIpv6).toBe('fd00::1');
    expect(ignored.notices.join('\n')).not.toMatch(/public-ipv6/);
  });

  it('Kubernetes: which node (NODE_NAME, else POD_NAME/POD_NAMESPACE) and which API (kubeconfig, URL, in-cluster), errors naming the culprit', () => {
    const flags = (over: Partial<KubeFlags> = {}): KubeFlags => ({
      kubeApiUrl: undefined, kubeconfigFile: undefined, kubeAnnotationPrefix: 'flannel.alpha.coreos.com', netConfigPath: '/n', setNodeNetworkUnavailable: true, ...over,
    });
    const kfield = (f: KubeFlags, env: NodeJS.ProcessEnv) => {
      try {
        kubeSettings(f, env);
      } catch (e) {
        if (e instanceof ConfigError) return e.field;
        throw e;
      }
      return undefined;
    };
    const url = flags({ kubeApiUrl: 'http://198.18.0.3:6443' });
    expect(kubeSettings(url, { NODE_NAME: 'n1', POD_NAME: 'p', POD_NAMESPACE: 'ns' }).node).toEqual({ kind: 'node', name: 'n1' });
    expect(kubeSettings(url, { POD_NAME: 'p', POD_NAMESPACE: 'ns' }).node).toEqual({ kind: 'pod', name: 'p', namespace: 'ns' });
    expect(kfield(url, { POD_NAME: 'p' })).toBe('NODE_NAME');
    expect(kubeSettings(url, { NODE_NAME: 'n' }).access).toEqual({ kind: 'url', apiUrl: 'http://198.18.0.3:6443' });
    expect(kubeSettings(flags(), { NODE_NAME: 'n', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }).access).toEqual({ kind: 'in-cluster' });
    expect(kfield(flags(), { NODE_NAME: 'n' })).toBe('--kube-subnet-mgr');
    expect(kfield(flags({ kubeconfigFile: '/nonexistent/kubeconfig' }), { NODE_NAME: 'n' })).toBe('--kubeconfig-file');
    expect(kubeSettings(flags({ kubeconfigFile: '/dev/null', kubeApiUrl: 'https://k:6443' }), { NODE_NAME: 'n' }).access).toEqual({ kind: 'kubeconfig', file: '/dev/null', apiUrl: 'https://k:6443' });
    expect(kfield(flags({ kubeApiUrl: 'k:6443' }), { NODE_NAME: 'n' })).toBe('--kube-api-url');
  });

  it('reads the renew margin as minutes (flannel) or a duration', () => {
    expect(parseRunOptions(['--subnet-lease-renew-margin=30'], {}).renewMarginMs).toBe(30 * 60_000);
    expect(parseRunOptions(['--subnet-lease-renew-margin=2s', '--subnet-lease-ttl=4s'], {})).toMatchObject({ renewMarginMs: 2000, leaseTtlMs: 4000 });
    expect(parseRunOptions(['--ip-masq', 'false'], {}).ipMasq).toBe(false);
  });

  it.each([
    [['--nope'], '--nope'],
    [['stray'], 'stray'],
    [['--', 'stray'], 'stray'],
    [['--healthz-port=70000'], '--healthz-port'],
    [['--ip-masq=maybe'], '--ip-masq'],
    [['--subnet-lease-renew-margin=soon'], '--subnet-lease-renew-margin'],
    [['--subnet-lease-renew-margin=0'], '--subnet-lease-renew-margin'],
    [['--subnet-lease-ttl=1m', '--subnet-lease-renew-margin=2m'], '--subnet-lease-renew-margin'],
    [['--etcd-endpoints=not a url'], '--etcd-endpoints'],
    [['--etcd-prefix=relative'], '--etcd-prefix'],
    [['--log-level=loud'], '--log-level'],
    [['--etcd-prefix'], '--etcd-prefix'],
    [['--public-ip=eth0'], '--public-ip'],
    [['--public-ipv6=10.0.0.1'], '--public-ipv6'],
    [['--iface-can-reach=host'], '--iface-can-reach'],
    [['--iface-regex=('], '--iface-regex'],
  ])('rejects %j naming %s', (argv, f) => {
    expect(field(argv)).toBe(f);
  });

  it('has every flanneld flag in its table (main.go and the klog flags it copies)', () => {
    const flanneld = [
      'etcd-endpoints', 'etcd-prefix', 'etcd-keyfile', 'etcd-certfile', 'etcd-cafile', 'etcd-username', 'etcd-password', 'iface', 'iface-regex',
      'iface-can-reach', 'subnet-file', 'public-ip', 'public-ipv6', 'subnet-lease-renew-margin', 'ip-masq', 'ip-masq-fully-random-disable',
      'kube-subnet-mgr', 'kube-api-url', 'kube-annotation-prefix', 'kubeconfig-file', 'version', 'healthz-ip', 'healthz-port', 'iptables-resync',
      'iptables-forward-rules', 'ip-blackhole-route', 'net-config-path', 'set-node-network-unavailable', 'v', 'vmodule', 'log_backtrace_at',
    ];
    const names = FLAG_TABLE.map((r) => r.name);
    expect(flanneld.filter((f) => !names.includes(f))).toEqual([]);
    expect(FLAG_TABLE.filter((r) => r.treatment === 'tulle').map((r) => r.name).filter((n) => flanneld.includes(n))).toEqual([]);
    for (const r of FLAG_TABLE) if (r.treatment !== 'same' && r.treatment !== 'tulle') expect(r.note, r.name).toBeTruthy();
  });
});
