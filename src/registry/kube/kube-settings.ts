/**
 * What `--kube-subnet-mgr` needs before it talks to the API server, checked at start without
 * loading the client library: how to reach the API (flanneld's clientcmd.BuildConfigFromFlags:
 * --kubeconfig-file, --kube-api-url overriding its server, --kube-api-url alone, else in-cluster),
 * which node this is (NODE_NAME, else the node of pod POD_NAMESPACE/POD_NAME), and the annotation
 * names. A problem here is a bad flag or environment: exit 2 naming it.
 */
import { existsSync } from 'node:fs';
import { ConfigError } from '../../util/errors.js';
import { annotationNames, type AnnotationNames } from './annotations.js';

export type ApiAccess =
  | { kind: 'kubeconfig'; file: string; apiUrl: string | undefined }
  | { kind: 'url'; apiUrl: string }
  /** in a pod: KUBERNETES_SERVICE_HOST/PORT and the service account's token and CA */
  | { kind: 'in-cluster' };

export type NodeIdentity = { kind: 'node'; name: string } | { kind: 'pod'; namespace: string; name: string };

export interface KubeSettings {
  access: ApiAccess;
  node: NodeIdentity;
  names: AnnotationNames;
  /** flanneld's --net-config-path */
  netConfPath: string;
  /** flanneld's --set-node-network-unavailable */
  setNodeNetworkUnavailable: boolean;
}

export interface KubeFlags {
  kubeApiUrl: string | undefined;
  kubeconfigFile: string | undefined;
  kubeAnnotationPrefix: string;
  netConfigPath: string;
  setNodeNetworkUnavailable: boolean;
}

export function kubeSettings(f: KubeFlags, env: NodeJS.ProcessEnv): KubeSettings {
  return {
    access: apiAccess(f, env),
    node: nodeIdentity(env),
    names: annotationNames(f.kubeAnnotationPrefix),
    netConfPath: f.netConfigPath,
    setNodeNetworkUnavailable: f.setNodeNetworkUnavailable,
  };
}

function apiAccess(f: KubeFlags, env: NodeJS.ProcessEnv): ApiAccess {
  if (f.kubeApiUrl !== undefined && !/^https?:\/\/[^/\s]+/.test(f.kubeApiUrl)) {
    throw new ConfigError('--kube-api-url', `"${f.kubeApiUrl}" is not like https://HOST:PORT`);
  }
  if (f.kubeconfigFile) {
    if (!existsSync(f.kubeconfigFile)) throw new ConfigError('--kubeconfig-file', `${f.kubeconfigFile} does not exist`);
    return { kind: 'kubeconfig', file: f.kubeconfigFile, apiUrl: f.kubeApiUrl };
  }
  if (f.kubeApiUrl) return { kind: 'url', apiUrl: f.kubeApiUrl };
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new ConfigError(
      '--kube-subnet-mgr',
      'no Kubernetes API server to talk to: not in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset) and neither --kube-api-url nor --kubeconfig-file given',
    );
  }
  return { kind: 'in-cluster' };
}

/** flanneld: NODE_NAME, else POD_NAME and POD_NAMESPACE (the pod's spec.nodeName is looked up). */
export function nodeIdentity(env: NodeJS.ProcessEnv): NodeIdentity {
  if (env.NODE_NAME) return { kind: 'node', name: env.NODE_NAME };
  if (!env.POD_NAME || !env.POD_NAMESPACE) {
    throw new ConfigError('NODE_NAME', 'env variables POD_NAME and POD_NAMESPACE must be set (or NODE_NAME): --kube-subnet-mgr must know which node it runs on');
  }
  return { kind: 'pod', namespace: env.POD_NAMESPACE, name: env.POD_NAME };
}
