/**
 * A real etcd for tests and the demo: the `etcd` binary (Debian's etcd-server 3.4) either in a
 * bed namespace on the underlay (e.g. 198.18.0.2:2379) or on 127.0.0.1 with free ports. Its data
 * dir is a temp dir under /tmp, removed at stop. stop()/start() keep the data (an outage);
 * processes are stopped by the PID we started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../../src/host/exec.js';
import { stopProcess, type Bed } from './bed.js';

export interface EtcdServer {
  /** http://IP:PORT */
  endpoint: string;
  dataDir: string;
  /** runs etcdctl against this server (inside its namespace when it has one) */
  etcdctl(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** stops the process, keeping the data dir */
  stop(): Promise<void>;
  /** starts it again on the same data dir and waits until it answers */
  start(): Promise<void>;
  /** stops and removes the data dir */
  destroy(): Promise<void>;
  readonly running: boolean;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) if (p.exitCode === null && p.pid) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface EtcdOptions {
  /** run inside this bed namespace (from bed.addHost); else on loopback */
  bed?: Bed;
  ns?: string;
  /** listen address: the namespace's underlay IP, or 127.0.0.1 */
  ip?: string;
  port?: number;
  /** serve TLS with this certificate (which must also be good for client auth) and demand client certificates */
  tls?: TlsFiles;
}

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A throw-away CA and one certificate for etcd and its clients, made with openssl. */
export async function makeTestCerts(dir: string, ips: string[]): Promise<TlsFiles> {
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=tulle-test-ca', '-keyout', f('ca.key'), '-out', f('ca.crt')]);
  await run('openssl', ['req', ...ec, '-subj', '/CN=etcd', '-keyout', f('etcd.key'), '-out', f('etcd.csr')]);
  writeFileSync(f('ext.cnf'), `subjectAltName=${ips.map((i) => `IP:${i}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  await run('openssl', ['x509', '-req', '-in', f('etcd.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-out', f('etcd.crt'), '-extfile', f('ext.cnf')]);
  return { caFile: f('ca.crt'), certFile: f('etcd.crt'), keyFile: f('etcd.key') };
}

export async function startEtcd(o: EtcdOptions = {}): Promise<EtcdServer> {
  const ip = o.ip ?? '127.0.0.1';
  const port = o.port ?? (o.ns ? 2379 : await freePort());
  const peerPort = o.ns ? 2380 : await freePort();
  const endpoint = `${o.tls ? 'https' : 'http'}://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tulle-etcd-'));
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'tulle-test', '--data-dir', dataDir,
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `tulle-test=${peer}`,
    '--logger', 'zap', '--log-level', 'error', '--log-outputs', 'stderr',
    ...(o.tls ? ['--cert-file', o.tls.certFile, '--key-file', o.tls.keyFile, '--trusted-ca-file', o.tls.caFile, '--client-cert-auth'] : []),
  ];
  const clientTls = o.tls ? ['--cacert', o.tls.caFile, '--cert', o.tls.certFile, '--key', o.tls.keyFile] : [];
  let proc: ChildProcess | undefined;
  let stderr = '';

  const etcdctl = async (a: readonly string[], timeoutMs = 10_000) => {
    const full = ['--endpoints', endpoint, '--dial-timeout', '2s', '--command-timeout', '5s', ...clientTls, ...a];
    const r = o.bed && o.ns ? await o.bed.exec(o.ns, 'etcdctl', full, timeoutMs) : await run('etcdctl', full, { timeoutMs });
    return r.stdout;
  };

  const start = async () => {
    stderr = '';
    const p = o.bed && o.ns ? o.bed.spawn(o.ns, 'etcd', args) : spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = p;
    live.add(p);
    p.once('exit', () => live.delete(p));
    p.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    p.stdout?.resume();
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`etcd exited (${p.exitCode}): ${stderr}`);
      try {
        await etcdctl(['endpoint', 'health'], 5000);
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`etcd at ${endpoint} not healthy after 20 s: ${(e as Error).message} ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const stop = async () => {
    if (proc) await stopProcess(proc, 5000);
    proc = undefined;
  };

  await start();
  return {
    endpoint,
    dataDir,
    etcdctl,
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
    get running() {
      return proc !== undefined && proc.exitCode === null;
    },
  };
}
