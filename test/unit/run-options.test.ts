import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { envName, parseRunOptions } from '../../src/config/run-options.js';
import { ConfigError } from '../../src/util/errors.js';

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
      etcdEndpoints: ['http://127.0.0.1:2379'], etcdPrefix: '/coreos.com/network', etcdCafile: undefined, etcdCertfile: undefined,
      etcdKeyfile: undefined, iface: undefined, publicIp: undefined, ipMasq: false,
      ipMasqFullyRandomDisable: false, iptablesForwardRules: true, iptablesResyncSeconds: 5, subnetFile: '/run/flannel/subnet.env',
      renewMarginMs: 60 * 60_000, leaseTtlMs: 24 * 3600_000, healthzIp: '0.0.0.0', healthzPort: 0, stateDir: '/var/lib/tulle',
      tunName: 'tulle0', logLevel: 'info',
    });
  });

  it('takes flags in both forms, env as TULLE_<FLAG>, and a file; file < env < flags', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tulle-opt-'));
    const file = path.join(dir, 'o.json');
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(file, JSON.stringify({ 'etcd-prefix': '/from/file', 'healthz-port': 1, 'ip-masq': true, 'etcd-endpoints': ['http://a:1', 'http://b:2'] }));
    const o = parseRunOptions(['--options-file', file, '--healthz-port=3', '-iface', 'eth1'], {
      [envName('healthz-port')]: '2', TULLE_ETCD_PREFIX: '/from/env', TULLE_PUBLIC_IP: '198.18.0.10',
    });
    expect(o).toMatchObject({
      etcdPrefix: '/from/env', healthzPort: 3, ipMasq: true, iface: 'eth1', publicIp: '198.18.0.10', etcdEndpoints: ['http://a:1', 'http://b:2'],
    });
    expect(envName('subnet-lease-renew-margin')).toBe('TULLE_SUBNET_LEASE_RENEW_MARGIN');
  });

  it("reads flanneld's iptables flags", () => {
    expect(parseRunOptions(['--iptables-forward-rules=false', '--iptables-resync=30', '--ip-masq-fully-random-disable'], {})).toMatchObject({
      iptablesForwardRules: false, iptablesResyncSeconds: 30, ipMasqFullyRandomDisable: true,
    });
    expect(field(['--iptables-resync=0'])).toBe('--iptables-resync');
  });

  it('reads the renew margin as minutes (flannel) or a duration', () => {
    expect(parseRunOptions(['--subnet-lease-renew-margin=30'], {}).renewMarginMs).toBe(30 * 60_000);
    expect(parseRunOptions(['--subnet-lease-renew-margin=2s', '--subnet-lease-ttl=4s'], {})).toMatchObject({ renewMarginMs: 2000, leaseTtlMs: 4000 });
    expect(parseRunOptions(['--ip-masq', 'false'], {}).ipMasq).toBe(false);
  });

  it.each([
    [['--nope'], '--nope'],
    [['stray'], 'stray'],
    [['--healthz-port=70000'], '--healthz-port'],
    [['--ip-masq=maybe'], '--ip-masq'],
    [['--subnet-lease-renew-margin=soon'], '--subnet-lease-renew-margin'],
    [['--subnet-lease-ttl=1m', '--subnet-lease-renew-margin=2m'], '--subnet-lease-renew-margin'],
    [['--etcd-endpoints=not a url'], '--etcd-endpoints'],
    [['--etcd-prefix=relative'], '--etcd-prefix'],
    [['--log-level=loud'], '--log-level'],
    [['--etcd-prefix'], '--etcd-prefix'],
  ])('rejects %j naming %s', (argv, f) => {
    expect(field(argv)).toBe(f);
  });

  it('names the environment variable when the bad value came from there', () => {
    expect(field([], { TULLE_HEALTHZ_PORT: 'x' })).toBe('TULLE_HEALTHZ_PORT');
  });
});
