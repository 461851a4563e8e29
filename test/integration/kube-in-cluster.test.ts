/**
 * `tulle run --kube-subnet-mgr` with the in-cluster config, as kube-tulle.yml runs it: no
 * --kube-api-url or --kubeconfig-file, KUBERNETES_SERVICE_HOST/PORT and the service account's
 * token and CA at /var/run/secrets/kubernetes.io/serviceaccount (mounted, in the daemon's own
 * mount namespace, on a tmpfs over /run: nothing on the host changes), NODE_NAME, POD_NAME and
 * POD_NAMESPACE from the downward API. The API-server double serves HTTPS with a test CA and
 * refuses requests without the token. Two daemons get their podCIDRs and reach each other.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts } from '../bed/etcd.js';
import { startKubeApiServer, type RemoteKubeApi } from '../bed/kube-apiserver-process.js';
import { createCluster, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

const TOKEN = 'in-cluster-service-account-token';
const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
let c: Cluster;
let api: RemoteKubeApi;
let dir: string;

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'kic', config: '' });
  dir = mkdtempSync(path.join(tmpdir(), 'tulle-kic-'));
  const apiHost = await c.bed.addHost('kapi', 3);
  const certs = await makeTestCerts(dir, [apiHost.underlayIp]);
  api = await startKubeApiServer({ bed: c.bed, ns: apiHost.ns, ip: apiHost.underlayIp, tls: certs });
  await api.call('setToken', TOKEN);
  mkdirSync(`${dir}/sa`);
  writeFileSync(`${dir}/sa/token`, TOKEN);
  writeFileSync(`${dir}/sa/namespace`, 'kube-tulle');
  copyFileSync(certs.caFile, `${dir}/sa/ca.crt`);
  writeFileSync(`${dir}/net-conf.json`, '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}');
  for (const [i, n] of c.bed.nodes.entries()) {
    await api.createNode({ metadata: { name: `worker-${i}` }, spec: { podCIDR: `10.244.${20 + i}.0/24` }, status: { addresses: [{ type: 'InternalIP', address: n.underlayIp }] } });
    await api.call('createPod', { metadata: { namespace: 'kube-tulle', name: `kube-tulle-ds-${i}` }, spec: { nodeName: `worker-${i}` } });
  }
});

afterAll(async () => {
  await c?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** the service account files where every pod has them, in the daemon's mount namespace only */
const inPod = (cmd: string, args: string[]): [string, string[]] => [
  'sh', ['-c', `mount -t tmpfs tmpfs /run && mkdir -p ${SA} && cp ${dir}/sa/* ${SA}/ && exec "$0" "$@"`, cmd, ...args],
];

describe('--kube-subnet-mgr with the in-cluster config', () => {
  it('finds the API from the pod environment, authenticates with the service account over TLS, and the nodes mesh', async () => {
    const ds: Daemon[] = c.bed.nodes.map((n, i) => c.startDaemon(n, ['--kube-subnet-mgr', `--net-config-path=${dir}/net-conf.json`, '--iface=eth0'], {
      ...process.env, KUBERNETES_SERVICE_HOST: '198.18.0.3', KUBERNETES_SERVICE_PORT: '6443',
      NODE_NAME: `worker-${i}`, POD_NAME: `kube-tulle-ds-${i}`, POD_NAMESPACE: 'kube-tulle',
    }, { bare: true, wrap: inPod }));
    expect(await Promise.all(ds.map((d) => d.readySubnet()))).toEqual(['10.244.20.0/24', '10.244.21.0/24']);
    const reqs = await api.requests();
    expect(reqs.length).toBeGreaterThan(0);
    expect(reqs.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(ds[0]!.logs.find((l) => l.msg === 'starting')).toMatchObject({ kubeApi: 'https://198.18.0.3:6443' });
    await until('both to route to each other', () => ds.every((d) => d.routeCount() === 1));
    expect((await c.ping(ds[0]!.node, tunAddress('10.244.21.0/24'))).ok).toBe(true);
    expect((await c.ping(ds[1]!.node, tunAddress('10.244.20.0/24'))).ok).toBe(true);
  });
});

describe('--kube-subnet-mgr without what it needs', () => {
  const bare = (): NodeJS.ProcessEnv => {
    const env = { ...process.env };
    for (const k of ['NODE_NAME', 'POD_NAME', 'POD_NAMESPACE', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) delete env[k];
    return env;
  };
  it.each([
    ['no node name (NODE_NAME, or POD_NAME and POD_NAMESPACE)', 'NODE_NAME', { KUBERNETES_SERVICE_HOST: '198.18.0.3', KUBERNETES_SERVICE_PORT: '6443', POD_NAME: 'p' }, []],
    ['no API server: outside a pod, neither --kube-api-url nor --kubeconfig-file', '--kube-subnet-mgr', { NODE_NAME: 'worker-0' }, []],
    ['a kubeconfig file that is not there', '--kubeconfig-file', { NODE_NAME: 'worker-0' }, ['--kubeconfig-file=/nonexistent/kubeconfig']],
  ] as Array<[string, string, NodeJS.ProcessEnv, string[]]>)('%s: exit 2 naming %s', async (_what, field, env, extra) => {
    const d = c.startDaemon(c.bed.nodes[0]!, ['--kube-subnet-mgr', '--iface=eth0', ...extra], { ...bare(), ...env }, { bare: true });
    expect(await d.exit).toBe(2);
    expect(d.logs.find((l) => l.level === 60)).toMatchObject({ code: 'ERR_TULLE_CONFIG', field, exitCode: 2 });
  });
});
