/**
 * deploy/kubernetes/*.yml, checked without a cluster: every document parses (the same under
 * YAML 1.1, as Kubernetes reads it, and 1.2), every object validates against the Kubernetes API
 * schema (kubernetes-models) and type-checks as its API type (so no unknown field), and the DaemonSet passes and mounts what tulle reads — every arg
 * and env names a flag of the flag table, every path a flag points at is mounted (from the same
 * host path where the host must see it), the probes hit the health port passed, the ConfigMap's
 * net-conf.json sits where --net-config-path reads it and parses as tulle parses it. No daemon is
 * started: the Kubernetes mode is checked against the flag table, not run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FLAG_TABLE, flagRow, flanneldEnvName, tulleEnvName } from '../../src/config/flag-table.js';
import { readNetworkConfig } from '../../src/config/network-config.js';
import { parseFlagArgs, parseRunOptions } from '../../src/config/run-options.js';
import { typeErrors } from './manifest-types.js';

const DIR = 'deploy/kubernetes';
const FILES = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
/** where the image puts tulle (deploy/image/Containerfile) */
const IMAGE_APP_DIR = '/opt/tulle';
/** flanneld's --net-config-path default (main.go), for as long as the table has none */
const FLANNELD_NET_CONF_PATH = '/etc/kube-flannel/net-conf.json';
/** what flanneld reads from the environment besides its flags (pkg/subnet/kube/kube.go): the node's name */
const KUBE_IDENTITY_ENV: Record<string, string> = { NODE_NAME: 'spec.nodeName', POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace' };
/** flags whose value is a path on the node the daemon reads or writes */
const PATH_FLAGS = ['subnet-file', 'state-dir', 'write-cni-conf-when-ready', 'etcd-cafile', 'etcd-certfile', 'etcd-keyfile', 'kubeconfig-file'];
/** those the host (the kubelet, the CNI plugins, the next pod) must see at the same path */
const HOST_PATH_FLAGS = ['subnet-file', 'state-dir', 'write-cni-conf-when-ready'];

type Obj = Record<string, any>;
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace, 'v1/ServiceAccount': ServiceAccount, 'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole, 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/DaemonSet': DaemonSet,
};

function load(file: string): Obj[] {
  const text = readFileSync(path.join(DIR, file), 'utf8');
  const read = (version: '1.1' | '1.2') => {
    const docs = parseAllDocuments(text, { version });
    if (!Array.isArray(docs)) return [];
    for (const d of docs) expect([...d.errors, ...d.warnings].map((e) => e.message)).toEqual([]);
    return docs.map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null);
  };
  const objs = read('1.2');
  expect(read('1.1')).toEqual(objs); // no scalar Kubernetes (YAML 1.1) reads otherwise: 0400, yes, on
  return objs;
}

const under = (p: string, dir: string) => path.posix.relative(dir, p) === '' || !path.posix.relative(dir, p).startsWith('..');

/** What the DaemonSet's container passes and mounts, and where each flag's value comes from. */
function daemon(objs: Obj[]) {
  const ds = objs.find((o) => o.kind === 'DaemonSet')!;
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  const args: string[] = c.args ?? [];
  const env: Array<{ name: string; value?: string; valueFrom?: Obj }> = c.env ?? [];
  const flags = parseFlagArgs(args); // throws on a name that is not a flag
  const value = (flag: string): string | undefined => {
    const row = flagRow(flag)!;
    const fromEnv = env.find((e) => e.name === tulleEnvName(flag)) ?? env.find((e) => e.name === flanneldEnvName(flag));
    return flags.get(flag)?.at(-1) ?? fromEnv?.value ?? row.default;
  };
  const mountFor = (p: string) => {
    const m = (c.volumeMounts as Obj[]).filter((v) => under(p, v.mountPath)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    return m && { mount: m, volume: (pod.volumes as Obj[]).find((v) => v.name === m.name)! };
  };
  return { ds, pod, c, args, env, flags, value, mountFor };
}

describe.each(FILES)('%s', (file) => {
  const objs = load(file);
  const d = daemon(objs);
  const kube = d.flags.has('kube-subnet-mgr');

  it('every object validates against the Kubernetes API schema', () => {
    expect(objs.length).toBeGreaterThan(1);
    for (const o of objs) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => new Model!(o).validate(), `${o.kind} ${o.metadata?.name}`).not.toThrow();
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('every object type-checks as its API type: no unknown field anywhere, no wrong type', () => {
    expect(typeErrors(objs, process.cwd())).toEqual([]);
  });

  it('one privileged namespace holds every namespaced object; the DaemonSet runs as its ServiceAccount', () => {
    const ns = objs.filter((o) => o.kind === 'Namespace');
    expect(ns).toHaveLength(1);
    expect(ns[0]!.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    for (const o of objs.filter((x) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind))) expect(o.metadata.namespace).toBe(ns[0]!.metadata.name);
    expect(objs.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === d.pod.serviceAccountName)).toBeDefined();
    expect(d.ds.spec.template.metadata.labels).toMatchObject(d.ds.spec.selector.matchLabels);
  });

  it('runs as a node agent: host network, NET_ADMIN/NET_RAW, Linux nodes, tolerations, priority, requests, a pinned image', () => {
    expect(d.pod.hostNetwork).toBe(true);
    expect(d.pod.priorityClassName).toBe('system-node-critical');
    expect(d.pod.tolerations).toContainEqual({ operator: 'Exists', effect: 'NoSchedule' });
    expect(d.pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toContainEqual({
      matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }],
    });
    expect(d.c.securityContext.capabilities.add).toEqual(expect.arrayContaining(['NET_ADMIN', 'NET_RAW']));
    expect(d.c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(d.c.image).toMatch(new RegExp(`:${VERSION.replace(/\./g, '\\.')}$`));
    expect(d.c.command).toEqual([`${IMAGE_APP_DIR}/bin/tulle`, 'run']);
  });

  it('every arg and env names a flag of the flag table (or the node identity flanneld reads)', () => {
    expect(d.args.every((a) => a.startsWith('--'))).toBe(true);
    for (const e of d.env) {
      if (KUBE_IDENTITY_ENV[e.name]) {
        expect(e.valueFrom?.fieldRef?.fieldPath, e.name).toBe(KUBE_IDENTITY_ENV[e.name]);
        continue;
      }
      const row = FLAG_TABLE.find((r) => !r.argvOnly && (tulleEnvName(r.name) === e.name || flanneldEnvName(r.name) === e.name));
      expect(row, `${e.name} is not a flag's environment name`).toBeDefined();
    }
    expect(d.flags.has('ip-masq')).toBe(true);
    expect(d.value('write-cni-conf-when-ready')).toMatch(/^\/etc\/cni\/net\.d\/[^/]+\.conflist$/);
  });

  it('mounts every path tulle reads or writes, from the host path where the host must see it', () => {
    for (const flag of PATH_FLAGS) {
      const p = d.value(flag);
      if (p === undefined) continue;
      const m = d.mountFor(p);
      expect(m, `--${flag}=${p} is not under any volumeMount`).toBeDefined();
      if (HOST_PATH_FLAGS.includes(flag)) {
        expect(m!.volume.hostPath?.path, `--${flag}`).toBe(m!.mount.mountPath.replace(/\/$/, ''));
        expect(m!.mount.readOnly ?? false, `--${flag}`).toBe(false);
      }
    }
    // the CNI dir is the one the runtime reads, subnet.env where flannel's plugin reads it
    expect(d.mountFor(d.value('write-cni-conf-when-ready')!)!.volume.hostPath.path).toBe('/etc/cni/net.d');
    expect(d.value('subnet-file')).toBe('/run/flannel/subnet.env');
    expect(d.mountFor('/dev/net/tun')!.volume.hostPath).toEqual({ path: '/dev/net/tun', type: 'CharDevice' });
    expect(d.mountFor('/run/xtables.lock')!.volume.hostPath).toEqual({ path: '/run/xtables.lock', type: 'FileOrCreate' });
  });

  it('the probes ask /readyz and /healthz on the health port and address passed', () => {
    const port = Number(d.value('healthz-port'));
    expect(port).toBeGreaterThan(0);
    const ip = d.value('healthz-ip')!;
    const resolve = (p: number | string) => (typeof p === 'number' ? p : (d.c.ports as Obj[]).find((x) => x.name === p)?.containerPort);
    for (const [probe, urlPath] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']] as const) {
      const g = d.c[probe].httpGet;
      expect(g.path).toBe(urlPath);
      expect(resolve(g.port)).toBe(port);
      if (ip !== '0.0.0.0') expect(g.host).toBe(ip);
    }
  });

  if (kube) {
    it('Kubernetes mode: RBAC as kube-flannel, the node name from the downward API', () => {
      const role = objs.find((o) => o.kind === 'ClusterRole')!;
      const has = (res: string, verbs: string[]) => role.rules.some((r: Obj) => r.apiGroups.includes('') && r.resources.includes(res) && verbs.every((v) => r.verbs.includes(v)));
      expect(has('nodes', ['get', 'list', 'watch'])).toBe(true);
      expect(has('nodes/status', ['patch'])).toBe(true);
      expect(has('pods', ['get'])).toBe(true);
      const binding = objs.find((o) => o.kind === 'ClusterRoleBinding')!;
      expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
      expect(binding.subjects).toContainEqual({ kind: 'ServiceAccount', name: d.pod.serviceAccountName, namespace: d.ds.metadata.namespace });
      expect(d.env.map((e) => e.name)).toEqual(expect.arrayContaining(Object.keys(KUBE_IDENTITY_ENV)));
    });

    it("the ConfigMap's net-conf.json is where --net-config-path reads it, and tulle parses it (udp; wireguard as the comment says)", () => {
      const confPath = d.value('net-config-path') ?? FLANNELD_NET_CONF_PATH;
      const m = d.mountFor(confPath)!;
      expect(m, `${confPath} is not mounted`).toBeDefined();
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === m.volume.configMap?.name)!;
      expect(cm, 'the volume names a ConfigMap of this file').toBeDefined();
      const rel = path.posix.relative(m.mount.mountPath, confPath);
      const key = (m.volume.configMap.items as Obj[] | undefined)?.find((i) => i.path === rel)?.key ?? rel;
      const text: string = cm.data[key];
      expect(text, `ConfigMap key ${key}`).toBeDefined();
      expect(readNetworkConfig(text).config).toMatchObject({ ipv4: { network: '10.244.0.0/16' }, backend: { type: 'udp' } });
      expect(readFileSync(path.join(DIR, file), 'utf8')).toContain('"Backend": { "Type": "wireguard" }');
      expect(readNetworkConfig(text.replace(/"Type": "udp"/, '"Type": "wireguard"')).config.backend.type).toBe('wireguard');
    });
  } else {
    it('etcd mode: the options parse as `tulle run` parses them, the TLS files come from a Secret', () => {
      const env = Object.fromEntries(d.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      const o = parseRunOptions(d.args, env);
      expect(o).toMatchObject({ ipMasq: true, cniConfPath: '/etc/cni/net.d/10-tulle.conflist', healthzPort: 8471, subnetFile: '/run/flannel/subnet.env' });
      for (const f of [o.etcdCafile, o.etcdCertfile, o.etcdKeyfile]) expect(d.mountFor(f!)!.volume.secret?.secretName).toBeDefined();
      expect(objs.some((o) => o.kind === 'ClusterRole')).toBe(false);
      expect(d.pod.automountServiceAccountToken).toBe(false);
    });
  }
});

describe('the checks can fail', () => {
  it('the schema validator rejects a wrong type and a missing required field', () => {
    const ds = load('kube-tulle.yml').find((o) => o.kind === 'DaemonSet')!;
    const bad = structuredClone(ds);
    bad.spec.template.spec.containers[0].ports[0].containerPort = 'healthz';
    expect(() => new DaemonSet(bad).validate()).toThrow(/containerPort/);
    const noSelector = structuredClone(ds);
    delete noSelector.spec.selector;
    expect(() => new DaemonSet(noSelector).validate()).toThrow(/selector/);
  });

  it('the type check rejects a misspelt field deep down and a wrong type', () => {
    const ds = load('kube-tulle.yml').find((o) => o.kind === 'DaemonSet')!;
    const misspelt = structuredClone(ds);
    misspelt.spec.template.spec.containers[0].readinesProbe = misspelt.spec.template.spec.containers[0].readinessProbe;
    const deep = structuredClone(ds);
    deep.spec.template.spec.containers[0].volumeMounts[0].readonly = true;
    const wrongType = structuredClone(ds);
    wrongType.spec.template.spec.hostNetwork = 'true';
    const errors = typeErrors([misspelt, deep, wrongType], process.cwd()); // one program: each object's own error
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/"readinesProbe"' does not exist in type 'IContainer'/);
    expect(errors[1]).toMatch(/"readonly"' does not exist in type 'IVolumeMount'/);
    expect(errors[2]).toMatch(/Type 'string' is not assignable to type 'boolean \| undefined'/);
    expect(errors.every((e) => e.startsWith('DaemonSet kube-tulle-ds: '))).toBe(true);
  });

  it('a misspelt flag in args is refused by the flag table', () => {
    expect(() => parseFlagArgs(['--kube-subnet-manager'])).toThrow(/unknown flag/);
  });

  it('there is a Kubernetes-mode manifest and an etcd one', () => {
    expect(FILES).toEqual(['kube-tulle-etcd.yml', 'kube-tulle.yml']);
  });
});
