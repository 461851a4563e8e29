/**
 * A restarted tulle node and a stock WireGuard peer (issue 16): a `tulle run` daemon in encrypted
 * mode and Debian's wireguard-go, configured as flannel configures kernel WireGuard, with a lease
 * of its own in etcd so the daemon peers with it. wireguard-go's timers are fixed: after tulle is
 * killed (or stopped) and started again, it keeps sealing for its old session, so it is tulle
 * that must bring it back — reachable from wireguard-go, and reaching it, within a second of
 * tulle's readiness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from '../integration/cluster.js';
import { restartUnderPing } from '../integration/restart-under-ping.js';
import { startWireguardGo, type WgGo } from './wireguard-go.js';

const WITHIN_MS = 1000;
/** ping's 20 ms interval and a loaded machine */
const SLACK_MS = 250;
const WG_GO_SUBNET = '10.244.200.0/24';
const WG_GO_ADDRESS = '10.244.200.0';

let c: Cluster;
let wggo: WgGo | undefined;
let d: Daemon;
let subnet: string;

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'wir', config: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}' });
  const [n0, n1] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
  wggo = await startWireguardGo(c.bed, n1, { address: `${WG_GO_ADDRESS}/32`, network: '10.244.0.0/16', port: 51820, mtu: 1420 });
  const lease = { PublicIP: n1.underlayIp, PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: Buffer.from(wggo.publicKey).toString('base64'), Port: 51820 } };
  await c.etcd.etcdctl(['put', `${PREFIX}/subnets/${WG_GO_SUBNET.replace('/', '-')}`, JSON.stringify(lease)]);
  d = c.startDaemon(n0, [], process.env, { health: true });
  subnet = await d.readySubnet(60_000);
  const own = JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnet.replace('/', '-')}`, '--print-value-only']));
  await wggo.addPeer({ publicKey: Buffer.from(own.BackendData.PublicKey, 'base64'), endpoint: `${n0.underlayIp}:51820`, allowedIps: subnet });
  await until('tulle to route to wireguard-go', async () => Object.keys((await c.health(d)).routes).length === 1, 30_000);
});

afterAll(async () => {
  await wggo?.stop();
  await c?.teardown();
});

describe('a restarted tulle node with a wireguard-go peer', () => {
  const cases = (['SIGKILL', 'SIGTERM'] as const).flatMap((signal) => (['to', 'from', 'both'] as const).map((dir) => [signal, dir] as const));
  it.each(cases)('%s and an immediate restart, ping %s tulle: replies within a second of ready', async (signal, dir) => {
    const [n0, n1] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    const { again, figures } = await restartUnderPing({
      bed: c.bed, victim: d, signal, dir,
      other: { ns: n1.ns, address: WG_GO_ADDRESS },
      victimAddress: tunAddress(subnet),
      restart: () => (d = c.startDaemon(n0, [], process.env, { health: true })),
      diagnose: async (again) => `tulle ${JSON.stringify((await c.health(again)).backendStatus)}; wireguard-go ${await wggo!.show()}`,
    });
    console.log(`restart figures ${JSON.stringify({ peer: 'wireguard-go', signal, dir, ...figures })}`);
    for (const f of [figures.toRestarted, figures.fromRestarted]) if (f) expect(f.afterReadyMs).toBeLessThan(WITHIN_MS + SLACK_MS);
    const h = (await c.health(again)).backendStatus;
    expect(Object.values(h.sessions as Record<string, number>)).toEqual([expect.any(Number)]);
    expect(h.handshakes.sessions_installed).toBeGreaterThanOrEqual(1);
  });
});
