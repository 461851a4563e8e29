/**
 * Two queues: each flow stays on one queue in both directions. Outbound, the kernel's TUN flow
 * hash picks the queue; inbound, every datagram from a peer has the same outer 4-tuple, so the
 * reuseport program (native/src/reuseport.c) picks the socket by the inner ports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { waitForOutput } from '../bed/proc.js';
import { tcpTransfer } from './transfer.js';
import { startDataPlane } from '../../src/dataplane/dataplane.js';

const sender = `
import socket, sys
for sport in (int(sys.argv[2]), int(sys.argv[3])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', sport))
    for i in range(10):
        s.sendto(b'x' * 100, (sys.argv[1], 7003))
    s.close()
`;

describe('two queues', () => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'mq' });
    mesh = await startStaticMesh(bed, { queues: 2 });
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('steers inbound datagrams to the queue of their inner flow', async () => {
    const [a, b] = mesh.nodes;
    expect(b!.dp.offload.reuseportInnerFlow).toBe(true);
    const rx = bed.spawn(b!.node.ns, 'python3', ['-c', 'import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind((sys.argv[1],7003))\nprint("listening",flush=True)\ns.settimeout(30)\nn=0\ntry:\n  while n<20:\n    s.recv(2000); n+=1\nexcept socket.timeout: pass\nprint("got",n,flush=True)', b!.address]);
    // a fresh python3 can take over 10 s to start under scripts/sanitize-tests.sh (ASan preloaded)
    // on the loaded machine: generous deadlines for the receiver and the sender to come up
    await waitForOutput(rx, /listening/, 60_000).catch((e: Error) => {
      rx.kill('SIGKILL');
      throw e;
    });
    const got = waitForOutput(rx, /got \d+/, 90_000);
    const before = b!.dp.countersPerQueue().map((c) => c.inbound_delivered_packets!);
    // (40000 ^ 7003) % 2 = 1 and (40001 ^ 7003) % 2 = 0: one flow per queue
    await bed.exec(a!.node.ns, 'timeout', ['60', 'python3', '-c', sender, b!.address, '40000', '40001'], 70_000);
    expect(await got).toBe('got 20');
    const after = b!.dp.countersPerQueue().map((c) => c.inbound_delivered_packets!);
    expect(after.map((x, q) => x - before[q]!)).toEqual([10n, 10n]);
  });

  it('does not let a second data plane join the port through SO_REUSEPORT', () => {
    const a = mesh.nodes[0]!.node;
    for (const queues of [2, 1])
      expect(() => startDataPlane({ netns: a.nsPath, bindAddress: a.underlayIp, mtu: 1472, tunName: 'mq9', queues })).toThrow(
        /bind UDP 198\.18\.0\.10 port 8285: Address already in use/,
      );
  });

  it('carries an exact TCP transfer in each direction', async () => {
    const [a, b] = mesh.nodes;
    for (const [from, to] of [[a!, b!], [b!, a!]] as const) {
      const { sent, received } = await tcpTransfer(bed, from.node.ns, to.node.ns, to.address, 16 << 20, 7004);
      expect(received).toEqual(sent);
    }
  });
});
