/**
 * A Kubernetes API server test double for Nodes (and Pods, for POD_NAME lookups), speaking the
 * real JSON and watch protocol to the real client library. No kube-apiserver can be installed
 * on these machines (not in Debian, not on npm); this is what --kube-subnet-mgr is tested
 * against. What it implements, as the API server does:
 *
 *   GET    /api/v1/nodes[?limit=N&continue=T]    NodeList, metadata.resourceVersion (pages of one
 *            snapshot; an unknown continue token: 410 Expired)
 *   GET    /api/v1/nodes?watch=true&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=S
 *            200, then one JSON event per line: {"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object":…}
 *            history after RV first; RV "" or "0": ADDED for every node; RV older than the
 *            compaction point: an ERROR event with a Status of code 410 (or HTTP 410, see
 *            `goneAs`), then the stream ends; BOOKMARK every `bookmarkMs` when asked for
 *   GET    /api/v1/nodes/NAME                    Node or 404 Status
 *   POST   /api/v1/nodes                         create (409 if it exists)
 *   DELETE /api/v1/nodes/NAME                    delete (DELETED event with a new resourceVersion)
 *   PATCH  /api/v1/nodes/NAME[/status]           application/merge-patch+json (RFC 7386) or
 *            application/strategic-merge-patch+json (lists with a merge key — status.conditions
 *            and status.addresses by `type` — merge by it, as v1.Node's patchMergeKey says);
 *            on /status a change to spec is dropped, on the node a change to status (Node's
 *            update strategies); a patch that changes nothing does not bump the resourceVersion
 *   GET    /api/v1/namespaces/NS/pods/NAME       Pod or 404
 *
 * Bearer-token auth when `token` is set (401 Status otherwise). Every mutating request is kept
 * in `requests` (method, path, content type, body) so tests can check what a client sent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

export type Obj = Record<string, any>;

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  /** the Authorization header, if any */
  authorization: string | undefined;
  body: unknown;
}

interface WatchStream {
  res: ServerResponse;
  bookmarks: boolean;
  bookmarkTimer?: NodeJS.Timeout | undefined;
  endTimer?: NodeJS.Timeout | undefined;
}

const MERGE_KEYS: Record<string, string> = { 'status.conditions': 'type', 'status.addresses': 'type' };

export function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386 merge patch; with `strategic`, lists under a known merge key merge by it. */
export function mergePatch(target: unknown, patch: unknown, strategic: boolean, path = ''): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    if (strategic && Array.isArray(patch) && Array.isArray(target) && MERGE_KEYS[path]) {
      const key = MERGE_KEYS[path]!;
      const out = target.map((x) => clone(x));
      for (const item of patch as Obj[]) {
        const i = out.findIndex((x: Obj) => x?.[key] === item?.[key]);
        if (i >= 0) out[i] = mergePatch(out[i], item, strategic, `${path}[]`);
        else out.push(clone(item));
      }
      return out;
    }
    return clone(patch);
  }
  const out: Obj = typeof target === 'object' && target !== null && !Array.isArray(target) ? clone(target as Obj) : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v, strategic, path ? `${path}.${k}` : k);
  }
  return out;
}

export class KubeApiDouble {
  /** the last resourceVersion handed out */
  rv = 1000;
  /** watches from a resourceVersion below this get 410 Gone */
  compactedBelow = 0;
  /** how a too-old watch is refused: an ERROR event in a 200 stream (what the watch cache does), or HTTP 410 */
  goneAs: 'event' | 'http' = 'event';
  bookmarkMs = 1000;
  /** the resourceVersion of the last BOOKMARK sent */
  lastBookmarkRv = 0;
  token: string | undefined;
  readonly requests: RecordedRequest[] = [];
  private readonly nodes = new Map<string, Obj>();
  private readonly pods = new Map<string, Obj>();
  private readonly history: Array<{ rv: number; type: string; object: Obj }> = [];
  private readonly streams = new Set<WatchStream>();
  private readonly snapshots = new Map<string, { rv: number; items: Obj[] }>();
  private nextToken = 0;
  /** GETs of the node list, pages counted one by one */
  listRequests = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private listenAt: { host: string; port: number; tls?: { certFile: string; keyFile: string } | undefined } | undefined;

  /** Starts serving (again, after stop(): same state); HTTPS with `tls` (what in-cluster clients require). */
  async listen(host: string, port: number, tls?: { certFile: string; keyFile: string }): Promise<{ host: string; port: number }> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const server: Server = tls ? createTlsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, handler) : createServer(handler);
    server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as { port: number };
    this.listenAt = { host, port: a.port, tls };
    return { host, port: a.port };
  }

  /** An outage: the listener closes and every connection (watch streams too) is cut. State stays. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const w of this.streams) this.endStream(w);
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  async start(): Promise<{ host: string; port: number }> {
    if (!this.listenAt) throw new Error('never listened');
    return this.listen(this.listenAt.host, this.listenAt.port, this.listenAt.tls);
  }

  // ---- what a cluster admin (kubectl) or the controllers do ----

  createNode(node: Obj): Obj {
    const name = node.metadata?.name;
    if (!name || this.nodes.has(name)) throw new Error(`cannot create node ${name}`);
    const n = clone(node);
    n.kind = 'Node';
    n.apiVersion = 'v1';
    n.metadata = { annotations: {}, labels: {}, ...n.metadata, uid: `uid-${name}-${this.rv + 1}`, creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    n.spec ??= {};
    n.status ??= { conditions: [] };
    return this.commit('ADDED', n);
  }

  deleteNode(name: string): Obj | undefined {
    const n = this.nodes.get(name);
    if (!n) return undefined;
    this.nodes.delete(name);
    return this.commit('DELETED', clone(n), false);
  }

  getNode(name: string): Obj | undefined {
    const n = this.nodes.get(name);
    return n && clone(n);
  }

  listNodes(): Obj[] {
    return [...this.nodes.values()].map(clone);
  }

  /** PATCH as the API does it; returns the node, or a Status for errors. */
  patchNode(name: string, patch: unknown, type: 'merge' | 'strategic', subresource?: 'status'): Obj {
    const old = this.nodes.get(name);
    if (!old) return status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' });
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return status(400, 'BadRequest', 'the patch is not a JSON object');
    const next = mergePatch(old, patch, type === 'strategic') as Obj;
    // Node's update strategies: the status subresource changes metadata and status, the node metadata and spec
    if (subresource === 'status') next.spec = clone(old.spec);
    else next.status = clone(old.status);
    next.metadata.name = name;
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (JSON.stringify(next) === JSON.stringify(old)) return clone(old);
    return this.commit('MODIFIED', next);
  }

  createPod(pod: Obj): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    this.pods.set(key, { kind: 'Pod', apiVersion: 'v1', ...clone(pod), metadata: { ...pod.metadata, resourceVersion: String(++this.rv) } });
  }

  /** Drops the watch history: a watch from before now gets 410 Gone. */
  compact(): void {
    this.compactedBelow = this.rv;
    this.history.length = 0;
  }

  setGoneAs(how: 'event' | 'http'): void {
    this.goneAs = how;
  }

  setBookmarkMs(ms: number): void {
    this.bookmarkMs = ms;
  }

  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** open watch streams (for tests of reconnects) */
  watchCount(): number {
    return this.streams.size;
  }

  recorded(): RecordedRequest[] {
    return this.requests;
  }

  private commit(type: 'ADDED' | 'MODIFIED' | 'DELETED', n: Obj, store = true): Obj {
    n.metadata.resourceVersion = String(++this.rv);
    if (store) this.nodes.set(n.metadata.name, n);
    this.history.push({ rv: this.rv, type, object: clone(n) });
    const line = JSON.stringify({ type, object: n }) + '\n';
    for (const w of this.streams) w.res.write(line);
    return clone(n);
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const send = (code: number, body: Obj) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      req.resume();
      return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const contentType = req.headers['content-type']?.split(';')[0];
    const parts = url.pathname.split('/').filter(Boolean); // api v1 nodes NAME [status]
    if (method !== 'GET') this.requests.push({ method, path: url.pathname, contentType, authorization: req.headers.authorization, body: parseJson(body) });

    if (parts[0] !== 'api' || parts[1] !== 'v1') return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (parts[2] === 'namespaces' && parts[4] === 'pods' && parts.length === 6 && method === 'GET') {
      const pod = this.pods.get(`${parts[3]}/${parts[5]}`);
      return pod ? send(200, pod) : send(404, status(404, 'NotFound', `pods "${parts[5]}" not found`, { name: parts[5], kind: 'pods' }));
    }
    if (parts[2] !== 'nodes') return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const name = parts[3];
    if (!name) {
      if (method === 'GET' && ['true', '1'].includes(url.searchParams.get('watch') ?? '')) return this.watch(url, res);
      if (method === 'GET') return this.list(url, send);
      if (method === 'POST') {
        const n = parseJson(body) as Obj;
        if (this.nodes.has(n?.metadata?.name)) return send(409, status(409, 'AlreadyExists', `nodes "${n.metadata.name}" already exists`));
        return send(201, this.createNode(n));
      }
      return send(405, status(405, 'MethodNotAllowed', `${method} is not supported`));
    }
    const sub = parts[4];
    if (sub !== undefined && sub !== 'status') return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (method === 'GET') {
      const n = this.getNode(name);
      return n ? send(200, n) : send(404, status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' }));
    }
    if (method === 'DELETE' && !sub) {
      const n = this.deleteNode(name);
      return n ? send(200, n) : send(404, status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' }));
    }
    if (method === 'PATCH') {
      const type = contentType === 'application/strategic-merge-patch+json' ? 'strategic' : contentType === 'application/merge-patch+json' ? 'merge' : undefined;
      if (!type) return send(415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${contentType})`));
      const patch = parseJson(body);
      if (patch === undefined) return send(400, status(400, 'BadRequest', 'the patch is not JSON'));
      const r = this.patchNode(name, patch, type, sub === 'status' ? 'status' : undefined);
      return send(r.kind === 'Status' ? r.code : 200, r);
    }
    return send(405, status(405, 'MethodNotAllowed', `${method} is not supported`));
  }

  /** limit/continue: every page of one list is the snapshot the first page was cut from, at its resourceVersion */
  private list(url: URL, send: (code: number, body: Obj) => void): void {
    const limit = Number(url.searchParams.get('limit') ?? 0);
    const token = url.searchParams.get('continue');
    let page: { rv: number; items: Obj[] } | undefined;
    if (token) {
      page = this.snapshots.get(token);
      if (!page) return send(410, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.'));
      this.snapshots.delete(token);
    } else {
      page = { rv: this.rv, items: this.listNodes() };
    }
    this.listRequests++;
    const items = limit > 0 ? page.items.slice(0, limit) : page.items;
    const rest = page.items.slice(items.length);
    const metadata: Obj = { resourceVersion: String(page.rv) };
    if (rest.length) {
      const next = `c${++this.nextToken}`;
      this.snapshots.set(next, { rv: page.rv, items: rest });
      metadata.continue = next;
      metadata.remainingItemCount = rest.length;
    }
    send(200, { kind: 'NodeList', apiVersion: 'v1', metadata, items });
  }

  private watch(url: URL, res: ServerResponse): void {
    const from = url.searchParams.get('resourceVersion') ?? '';
    const fromRv = from === '' || from === '0' ? undefined : Number(from);
    if (fromRv !== undefined && (!Number.isSafeInteger(fromRv) || fromRv < this.compactedBelow)) {
      const gone = status(410, 'Expired', `too old resource version: ${from} (${this.compactedBelow})`);
      if (this.goneAs === 'http') {
        res.writeHead(410, { 'content-type': 'application/json' });
        res.end(JSON.stringify(gone));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const w: WatchStream = { res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    if (fromRv === undefined) for (const n of this.nodes.values()) res.write(JSON.stringify({ type: 'ADDED', object: n }) + '\n');
    else for (const h of this.history) if (h.rv > fromRv) res.write(JSON.stringify({ type: h.type, object: h.object }) + '\n');
    this.streams.add(w);
    if (w.bookmarks) {
      w.bookmarkTimer = setInterval(() => {
        this.lastBookmarkRv = this.rv;
        res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } }) + '\n');
      }, this.bookmarkMs);
    }
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    if (timeout > 0) w.endTimer = setTimeout(() => this.endStream(w), timeout * 1000);
    res.once('close', () => this.endStream(w));
  }

  private endStream(w: WatchStream): void {
    if (!this.streams.delete(w)) return;
    clearInterval(w.bookmarkTimer);
    clearTimeout(w.endTimer);
    w.res.end();
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

function parseJson(s: string): unknown {
  if (!s) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
