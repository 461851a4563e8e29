/**
 * `tulle demo`: etcd and three nodes in network namespaces on this machine, a `tulle run` in
 * each, then the leases, a ping between every pair, a short iperf3, a summary — and teardown
 * (or, with --keep, stay up until Ctrl-C). Traffic stays inside the namespaces it creates.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBed, type Bed, type BedNode } from '../../test/bed/bed.js';
import { startEtcd, type EtcdServer } from '../../test/bed/etcd.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NEEDED = ['ip', 'ping', 'etcd', 'etcdctl', 'iperf3', 'iptables'];
const PREFIX = '/coreos.com/network';
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}';

const say = (s = '') => process.stdout.write(`${s}\n`);
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

interface DemoNode {
  node: BedNode;
  proc: ChildProcess;
  startedAt: number;
  ready: Promise<{ subnet: string; ms: number }>;
  /** routes in its data plane, from its last 'peers updated' log line */
  routes: number;
}

function startNode(bed: Bed, node: BedNode, etcd: EtcdServer, dir: string): DemoNode {
  const startedAt = Date.now();
  // flanneld's defaults, as a user runs it: no health port; what it does shows in its log
  const proc = bed.spawn(node.ns, process.execPath, [
    path.join(ROOT, 'bin/tulle'), 'run', `--etcd-endpoints=${etcd.endpoint}`, '--iface=eth0', `--public-ip=${node.underlayIp}`,
    `--state-dir=${dir}/state`, `--subnet-file=${dir}/subnet.env`,
  ]);
  let deadline: NodeJS.Timeout | undefined;
  const ready = new Promise<{ subnet: string; ms: number }>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
        try {
          const l = JSON.parse(buf.slice(0, nl)) as { msg: string; subnet?: string; level: number; routes?: number };
          if (l.msg === 'node ready') resolve({ subnet: l.subnet!, ms: Date.now() - startedAt });
          if (l.msg === 'peers updated') dn.routes = Number(l.routes);
          if (l.level >= 60) reject(new Error(`${node.ns}: ${l.msg}`));
        } catch { /* not JSON */ }
      }
    });
    proc.once('exit', (code) => reject(new Error(`${node.ns}: tulle run exited (${code})`)));
    deadline = setTimeout(() => reject(new Error(`${node.ns}: not ready after 60 s`)), 60_000);
  });
  ready.catch(() => undefined).finally(() => clearTimeout(deadline));
  const dn: DemoNode = { node, proc, startedAt, ready, routes: 0 };
  return dn;
}

export async function runDemo(args: readonly string[]): Promise<number> {
  const keep = args.includes('--keep');
  if (process.getuid?.() !== 0) {
    say('tulle demo creates network namespaces: run it as root');
    return 1;
  }
  const missing = NEEDED.filter((c) => !has(c));
  if (missing.length) {
    say(`installing what the demo needs (${missing.join(', ')}) with scripts/ensure-deps.sh ...`);
    if (spawnSync('bash', [path.join(ROOT, 'scripts/ensure-deps.sh')], { stdio: 'inherit' }).status !== 0) return 1;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'tulle-demo-'));
  let bed: Bed | undefined;
  let etcd: EtcdServer | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      say('\ntearing down ...');
      await etcd?.stop();
      await bed?.teardown();
      await etcd?.destroy();
      rmSync(dir, { recursive: true, force: true });
      say('done');
    })());
  // Ctrl-C or a kill at any point still removes the namespaces and processes
  const onSignal = () => void cleanup().then(() => process.exit(130));
  if (!keep) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    say('tulle demo: etcd + 3 nodes, each in its own network namespace (underlay 198.18.0.0/24)');
    bed = await createBed({ nodes: 3, tag: 'demo' });
    const etcdNode = await bed.addHost('etcd', 2);
    etcd = await startEtcd({ bed, ns: etcdNode.ns, ip: etcdNode.underlayIp });
    await etcd.etcdctl(['put', `${PREFIX}/config`, CONFIG]);
    say(`  etcd        ${etcd.endpoint}   ${PREFIX}/config = ${CONFIG}`);

    const nodes = bed.nodes.map((n, i) => startNode(bed!, n, etcd!, path.join(dir, `n${i}`)));
    const ready = await Promise.all(nodes.map((n) => n.ready));
    nodes.forEach((n, i) => say(`  node n${i}     ${n.node.underlayIp}  subnet ${ready[i]!.subnet}  ready ${ready[i]!.ms} ms after start`));

    say('\nleases in etcd:');
    const leases = (await etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`])).trim().split('\n');
    for (let i = 0; i + 1 < leases.length; i += 2) say(`  ${leases[i]}  ${leases[i + 1]}`);

    // "ready" is per node; wait until every node has also learned every other node's lease
    const t0 = Date.now();
    for (;;) {
      const counts = nodes.map((n) => n.routes);
      if (counts.every((c) => c === nodes.length - 1)) break;
      if (Date.now() - t0 > 15_000) throw new Error(`the mesh did not converge in 15 s (routes per node: ${counts.join(', ')})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    say(`\nevery node routes to the other ${nodes.length - 1} (from each node's log)`);

    say('\nping between every pair (overlay addresses):');
    const addr = (i: number) => ready[i]!.subnet.split('/')[0]!;
    let pingsOk = 0;
    let pairs = 0;
    for (let a = 0; a < nodes.length; a++) {
      for (let b = 0; b < nodes.length; b++) {
        if (a === b) continue;
        pairs++;
        const r = await bed.exec(nodes[a]!.node.ns, 'ping', ['-n', '-q', '-c', '3', '-i', '0.2', '-W', '2', addr(b)], 15_000).then(
          (x) => x.stdout,
          (e: Error) => e.message,
        );
        const ok = /3 received/.test(r);
        if (ok) pingsOk++;
        const rtt = /= [\d.]+\/([\d.]+)\//.exec(r)?.[1];
        say(`  n${a} → n${b} ${addr(b).padEnd(12)} ${ok ? `ok, avg ${rtt} ms` : 'FAILED'}`);
      }
    }

    say('\niperf3 n0 → n1 over the overlay (3 s):');
    const server = bed.spawn(nodes[1]!.node.ns, 'iperf3', ['-s', '-1', '-B', addr(1)]);
    let gbps: number | undefined;
    for (let attempt = 0; attempt < 20 && gbps === undefined; attempt++) {
      try {
        const { stdout } = await bed.exec(nodes[0]!.node.ns, 'iperf3', ['-c', addr(1), '-t', '3', '-J', '--connect-timeout', '1000'], 20_000);
        gbps = (JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
      } catch {
        await new Promise((r) => setTimeout(r, 100)); // the server may not listen yet
      }
    }
    server.kill('SIGTERM');
    say(gbps === undefined ? '  FAILED' : `  ${gbps.toFixed(2)} Gbit/s`);

    say('\nsummary:');
    say(`  nodes ready: ${ready.length}/3 (slowest ${Math.max(...ready.map((r) => r.ms))} ms from start to lease held and forwarding)`);
    say(`  ping pairs:  ${pingsOk}/${pairs}`);
    say(`  iperf3:      ${gbps === undefined ? 'failed' : `${gbps.toFixed(2)} Gbit/s`}`);
    const ok = pingsOk === pairs && gbps !== undefined;
    if (keep) {
      say(`\nkept up. Try:  ip netns exec ${nodes[0]!.node.ns} ping ${addr(1)}`);
      say(`               ip netns exec ${etcdNode.ns} etcdctl --endpoints ${etcd.endpoint} get --prefix ${PREFIX}`);
      say('Ctrl-C to tear down.');
      // a signal listener does not keep the process alive: this handle does, until the signal
      const keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
      await new Promise<void>((r) => {
        process.once('SIGINT', r);
        process.once('SIGTERM', r);
      });
      clearInterval(keepAlive);
    }
    return ok ? 0 : 1;
  } catch (e) {
    say(`demo failed: ${(e as Error).message}`);
    return 1;
  } finally {
    await cleanup();
  }
}
