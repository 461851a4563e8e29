/**
 * A node configured the way a flanneld node is, with real daemons and a real etcd:
 * FLANNELD_* environment only (etcd with authentication, --iface as an address,
 * --ip-blackhole-route), a Type=notify socket that must get READY=1 from the daemon's own PID;
 * flanneld's default endpoints and --iface-can-reach in Go's single-dash flag style; --version;
 * --kube-subnet-mgr outside a cluster refused naming what it lacks.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startEtcd } from '../bed/etcd.js';
import { createCluster, HEALTH_PORT, until, type Cluster } from './cluster.js';

let c: Cluster;
const dirs: string[] = [];

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'fld', config: '' });
});

afterAll(async () => {
  await c?.teardown();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const fatalOf = (logs: Array<Record<string, unknown>>) => logs.find((l) => l.level === 60);

/** A unix datagram socket as systemd's NOTIFY_SOCKET: resolves with "message pid" of the first datagram. */
async function notifyListener(): Promise<{ socket: string; received: Promise<string> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tulle-notify-'));
  dirs.push(dir);
  const socket = path.join(dir, 'notify');
  const py = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print('bound', flush=True)
s.settimeout(90)
msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
pid = [int.from_bytes(d[0:4], 'little') for l, t, d in anc if l == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS]
print(msg.decode(), pid[0] if pid else None, flush=True)
`;
  const p = spawn('timeout', ['100', 'python3', '-c', py, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => void p.kill());
  let out = '';
  const received = new Promise<string>((r) => p.on('exit', () => r(out.split('\n')[1] ?? '')));
  await new Promise<void>((resolve) => p.stdout.on('data', (b: Buffer) => ((out += b.toString()), out.startsWith('bound\n') && resolve())));
  return { socket, received };
}

describe('tulle as flanneld', () => {
  it('configured only by FLANNELD_* (etcd auth, --iface by address, blackhole route); READY=1 to a Type=notify socket', async () => {
    const root = ['--user=root:rootpw'];
    const ctl = (args: string[]) => c.etcd.etcdctl([...root, ...args]);
    await c.etcd.etcdctl(['put', '/fl/config', '{"Network":"10.244.0.0/16","Backend":{"Type":"UDP"}}']);
    await c.etcd.etcdctl(['user', 'add', 'root', '--new-user-password=rootpw']);
    await c.etcd.etcdctl(['user', 'grant-role', 'root', 'root']);
    await c.etcd.etcdctl(['user', 'add', 'flannel', '--new-user-password=flpw']);
    await c.etcd.etcdctl(['role', 'add', 'flannel']);
    await c.etcd.etcdctl(['role', 'grant-permission', 'flannel', '--prefix=true', 'readwrite', '/fl/']);
    await c.etcd.etcdctl(['user', 'grant-role', 'flannel', 'flannel']);
    await c.etcd.etcdctl(['auth', 'enable']);
    const n = c.bed.nodes[0]!;
    const notify = await notifyListener();
    const env = {
      ...process.env,
      FLANNELD_ETCD_ENDPOINTS: c.etcd.endpoint, FLANNELD_ETCD_PREFIX: '/fl', FLANNELD_ETCD_USERNAME: 'flannel', FLANNELD_ETCD_PASSWORD: 'flpw',
      FLANNELD_IFACE: n.underlayIp, FLANNELD_IP_BLACKHOLE_ROUTE: 'true', FLANNELD_IPTABLES_RESYNC: '1',
      FLANNELD_HEALTHZ_IP: '127.0.0.1', FLANNELD_HEALTHZ_PORT: String(HEALTH_PORT), NOTIFY_SOCKET: notify.socket,
    };
    const d = c.startDaemon(n, [], env, { bare: true });
    const subnet = await d.readySubnet(30_000);
    expect(await notify.received).toBe(`READY=1 ${d.proc.pid}`);
    const lease = JSON.parse(await ctl(['get', `/fl/subnets/${subnet.replace('/', '-')}`, '--print-value-only']));
    expect(lease).toEqual({ PublicIP: n.underlayIp, PublicIPv6: null }); // flanneld's udp backend writes no BackendType
    expect(await until('health', () => c.health(d))).toMatchObject({ state: 'running', backend: 'udp', publicIp: n.underlayIp });
    const blackholes = async () => (await c.bed.exec(n.ns, 'ip', ['-4', 'route', 'show', 'type', 'blackhole'])).stdout;
    await until('the blackhole route', async () => (await blackholes()).includes(subnet));
    // deleted by someone: put back within --iptables-resync
    await c.bed.exec(n.ns, 'ip', ['route', 'del', 'blackhole', subnet]);
    await until('the blackhole route back', async () => (await blackholes()).includes(subnet), 10_000);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect(await blackholes()).not.toContain(subnet);
    // a wrong password is waited out, not fatal, and /healthz says why
    const bad = c.startDaemon(n, [], { ...env, FLANNELD_ETCD_PASSWORD: 'wrong', NOTIFY_SOCKET: '' }, { bare: true });
    const h = await until('health', async () => {
      const x = await c.health(bad);
      return x.error && x;
    });
    expect(h).toMatchObject({ state: 'waiting-for-config', ready: false });
    expect(h.error).toMatch(/authentication failed|invalid user ID or password/i);
    bad.proc.kill('SIGTERM');
    expect(await bad.exit).toBe(0);
  });

  it("flanneld's default endpoints (127.0.0.1:4001 then :2379) and -iface-can-reach, Go's single-dash style", async () => {
    const n = c.bed.nodes[1]!;
    const local = await startEtcd({ bed: c.bed, ns: n.ns, ip: '127.0.0.1' });
    onTestFinished(() => local.destroy());
    await local.etcdctl(['put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16"}']);
    const d = c.startDaemon(n, ['-iface-can-reach', c.etcdNode.underlayIp, '-healthz-ip=127.0.0.1', '-healthz-port', String(HEALTH_PORT)], process.env, { bare: true });
    const subnet = await d.readySubnet(30_000);
    expect((await d.waitLog((l) => l.msg === 'starting')).by).toBe(`--iface-can-reach ${c.etcdNode.underlayIp}`);
    const lease = JSON.parse(await local.etcdctl(['get', `/coreos.com/network/subnets/${subnet.replace('/', '-')}`, '--print-value-only']));
    expect(lease.PublicIP).toBe(n.underlayIp);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  it('--version prints the version and exits 0; --kube-subnet-mgr outside a cluster exits 2 naming what it lacks', async () => {
    const v = c.startDaemon(c.bed.nodes[0]!, ['--version'], process.env, { bare: true });
    expect(await v.exit).toBe(0);
    expect(v.stderr).toMatch(/^tulle \d+\.\d+\.\d+\n$/);
    const k = c.startDaemon(c.bed.nodes[0]!, ['--kube-subnet-mgr'], process.env, { bare: true });
    expect(await k.exit).toBe(2);
    expect(fatalOf(k.logs)).toMatchObject({ field: '--kube-subnet-mgr', msg: expect.stringMatching(/no Kubernetes API server to talk to/) });
  });
});
