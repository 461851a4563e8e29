/**
 * The API-server double (kube-apiserver.ts) as a process inside a bed namespace, on the
 * underlay like etcd (e.g. http://198.18.0.3:6443), so daemons in node namespaces reach it. The
 * test drives it over the child's stdin/stdout, one JSON line per call: {id, method, args} →
 * {id, result} | {id, error} — what a cluster admin or controller would do (create, patch,
 * delete nodes), and outages (stop/start: the listener closes and every connection is cut;
 * the state stays). Run as a script: node dist/test/bed/kube-apiserver-process.js HOST PORT [CERT KEY].
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { Bed } from './bed.js';
import { REPO_ROOT } from './daemons.js';
import { KubeApiDouble, type Obj, type RecordedRequest } from './kube-apiserver.js';

export interface RemoteKubeApi {
  /** http://IP:PORT (http://[IPv6]:PORT) */
  url: string;
  proc: ChildProcess;
  call<T = unknown>(method: keyof KubeApiDouble & string, ...args: unknown[]): Promise<T>;
  createNode(node: Obj): Promise<Obj>;
  getNode(name: string): Promise<Obj | undefined>;
  deleteNode(name: string): Promise<Obj | undefined>;
  patchNode(name: string, patch: Obj, type: 'merge' | 'strategic', subresource?: 'status'): Promise<Obj>;
  requests(): Promise<RecordedRequest[]>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startKubeApiServer(o: { bed: Bed; ns: string; ip: string; port?: number; tls?: { certFile: string; keyFile: string } }): Promise<RemoteKubeApi> {
  const port = o.port ?? 6443;
  const script = path.join(REPO_ROOT, 'dist/test/bed/kube-apiserver-process.js');
  const proc = o.bed.spawn(o.ns, process.execPath, [script, o.ip, String(port), ...(o.tls ? [o.tls.certFile, o.tls.keyFile] : [])], { stdin: 'pipe' });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const ready = new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => {
      const e = new Error(`kube-apiserver double exited (${code}): ${stderr}`);
      reject(e);
      for (const p of pending.values()) p.reject(e);
    });
    createInterface(proc.stdout!).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: boolean; id?: number; result?: unknown; error?: string };
      if (m.ready) return resolve();
      const p = pending.get(m.id!);
      pending.delete(m.id!);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.result);
    });
  });
  await ready;
  const call = <T>(method: string, ...args: unknown[]) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      proc.stdin!.write(JSON.stringify({ id, method, args }) + '\n');
    });
  return {
    url: `${o.tls ? 'https' : 'http'}://${o.ip.includes(':') ? `[${o.ip}]` : o.ip}:${port}`,
    proc,
    call,
    createNode: (n) => call('createNode', n),
    getNode: (n) => call('getNode', n),
    deleteNode: (n) => call('deleteNode', n),
    patchNode: (n, p, t, s) => call('patchNode', n, p, t, s),
    requests: () => call('recorded'),
    stop: () => call('stop'),
    start: async () => void (await call('start')),
  };
}

async function main(host: string, port: number, certFile?: string, keyFile?: string): Promise<void> {
  const api = new KubeApiDouble();
  await api.listen(host, port, certFile && keyFile ? { certFile, keyFile } : undefined);
  const out = (m: object) => process.stdout.write(JSON.stringify(m) + '\n');
  out({ ready: true });
  createInterface(process.stdin).on('line', (line) => {
    const { id, method, args } = JSON.parse(line) as { id: number; method: string; args: unknown[] };
    void (async () => {
      try {
        const fn = (api as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
        if (typeof fn !== 'function') throw new Error(`no method ${method}`);
        out({ id, result: (await fn.apply(api, args)) ?? null });
      } catch (e) {
        out({ id, error: (e as Error).message });
      }
    })();
  });
  process.stdin.once('end', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main(process.argv[2] ?? '127.0.0.1', Number(process.argv[3] ?? 6443), process.argv[4], process.argv[5]);
