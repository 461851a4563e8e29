/**
 * The few API calls the subnet manager makes, on the official client (@kubernetes/client-node):
 * list, get, watch Nodes; strategic-merge PATCH of nodes/NAME/status (flanneld patches its
 * annotations there too, so its ClusterRole needs only nodes/status patch); get a Pod. The only
 * module that loads the client library. Unary calls carry a deadline so an unreachable API
 * server fails fast; the caller owns retries.
 */
import { CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';
import { TulleError } from '../../util/errors.js';
import type { KubeNode } from './node-lease.js';
import type { ApiAccess } from './kube-settings.js';

export type WatchPhase = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface KubeApi {
  readonly server: string;
  /** all nodes, in pages of `pageSize` (limit/continue: one consistent snapshot, as the API serves them) */
  listNodes(pageSize?: number): Promise<{ items: KubeNode[]; resourceVersion: string }>;
  /** undefined when the node does not exist (404) */
  readNode(name: string): Promise<KubeNode | undefined>;
  patchNodeStatus(name: string, body: object): Promise<KubeNode>;
  podNodeName(namespace: string, name: string): Promise<string | undefined>;
  /** GET /api/v1/nodes?watch=true…; `done` once, when the stream ends (err: why; null: closed by the server) */
  watchNodes(
    resourceVersion: string, timeoutSeconds: number,
    onEvent: (phase: WatchPhase, obj: any) => void, done: (err: (Error & { statusCode?: number }) | null) => void,
  ): Promise<{ abort(): void }>;
}

const CALL_TIMEOUT_MS = 10_000;
/** nodes per list response (client-go's reflector pages by 500 too) */
export const LIST_PAGE = 500;

export function kubeConfigFor(access: ApiAccess): KubeConfig {
  const kc = new KubeConfig();
  if (access.kind === 'in-cluster') {
    kc.loadFromCluster();
    return kc;
  }
  if (access.kind === 'url') {
    kc.loadFromOptions({
      clusters: [{ name: 'tulle', server: access.apiUrl }], users: [{ name: 'tulle' }],
      contexts: [{ name: 'tulle', cluster: 'tulle', user: 'tulle' }], currentContext: 'tulle',
    });
  } else {
    kc.loadFromFile(access.file);
    if (!kc.getCurrentCluster()) throw new TulleError('ERR_TULLE_CONFIG', `config: --kubeconfig-file: ${access.file} has no current cluster`);
  }
  const cur = kc.getCurrentCluster()!;
  const server = (access.kind === 'kubeconfig' && access.apiUrl) || cur.server;
  // --kube-api-url overrides the kubeconfig's server, as client-go's ConfigOverrides. The client
  // refuses plain http unless TLS verification is off; client-go (flanneld) takes http as it is,
  // and there is no TLS to verify: say so for http servers only.
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === cur.name ? { ...c, server, ...(server.startsWith('http://') ? { skipTLSVerify: true } : {}) } : c)),
    users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext,
  });
  return kc;
}

function deadline<T>(what: string, server: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new TulleError('ERR_TULLE_KUBE', `Kubernetes API ${what} (${server}): no answer in ${CALL_TIMEOUT_MS / 1000} s`)), CALL_TIMEOUT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t)).catch((cause: Error & { code?: number; body?: unknown }) => {
    if (cause instanceof TulleError) throw cause;
    const status = typeof cause.code === 'number' ? ` (HTTP ${cause.code})` : '';
    const err = new TulleError('ERR_TULLE_KUBE', `Kubernetes API ${what} (${server})${status}: ${statusMessage(cause)}`, { cause });
    (err as TulleError & { status?: number }).status = typeof cause.code === 'number' ? cause.code : undefined;
    throw err;
  });
}

/** the API's Status message when there is one, else the error's own */
function statusMessage(e: Error & { body?: unknown }): string {
  try {
    const b = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    if (b && typeof b === 'object' && typeof (b as { message?: unknown }).message === 'string') return (b as { message: string }).message;
  } catch {
    /* not JSON */
  }
  return e.message.split('\n')[0]!;
}

export function httpStatus(e: unknown): number | undefined {
  return (e as { status?: number } | undefined)?.status;
}

export function kubeApi(kc: KubeConfig): KubeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const watch = new Watch(kc);
  const server = kc.getCurrentCluster()?.server ?? '(no server)';
  const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
  return {
    server,
    async listNodes(pageSize = LIST_PAGE) {
      const items: KubeNode[] = [];
      let resourceVersion: string | undefined;
      let token: string | undefined;
      do {
        const r = await deadline('list nodes', server, core.listNode({ limit: pageSize, ...(token ? { _continue: token } : {}) }));
        items.push(...(r.items as KubeNode[]));
        resourceVersion ??= r.metadata?.resourceVersion;
        token = r.metadata?._continue || undefined;
      } while (token);
      // (an expired continue token fails the call with 410: the caller's retry lists afresh)
      return { items, resourceVersion: resourceVersion ?? '0' };
    },
    async readNode(name) {
      try {
        return (await deadline(`get node ${name}`, server, core.readNode({ name }))) as KubeNode;
      } catch (e) {
        if (httpStatus(e) === 404) return undefined;
        throw e;
      }
    },
    async patchNodeStatus(name, body) {
      return (await deadline(`patch node ${name} status`, server, core.patchNodeStatus({ name, body }, strategic))) as KubeNode;
    },
    async podNodeName(namespace, name) {
      const pod = await deadline(`get pod ${namespace}/${name}`, server, core.readNamespacedPod({ namespace, name }));
      return pod.spec?.nodeName || undefined;
    },
    async watchNodes(resourceVersion, timeoutSeconds, onEvent, done) {
      const c = await watch.watch('/api/v1/nodes', { resourceVersion, allowWatchBookmarks: true, timeoutSeconds }, (phase, obj) => onEvent(phase as WatchPhase, obj), done);
      return { abort: () => c.abort() };
    },
  };
}
