/**
 * Exact transfers across the overlay for the offload tests: a TCP stream of deterministic bytes
 * whose length and SHA-256 the receiver reports, and a UDP_SEGMENT (GSO) burst received
 * datagram by datagram. Each side is a small script run by the node binary or python3 inside a
 * namespace, bounded in time.
 */
import type { ChildProcess } from 'node:child_process';
import type { Bed } from '../bed/bed.js';
import { waitForOutput } from '../bed/proc.js';

const tcpServer = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port] = process.argv.slice(1);
const srv = net.createServer((s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { console.log(JSON.stringify({ bytes: n, sha256: h.digest('hex') })); s.end(); srv.close(); });
});
srv.listen(Number(port), host, () => console.log('listening'));
setTimeout(() => process.exit(3), 30000).unref();
`;

const tcpClient = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port, total] = process.argv.slice(1);
const h = crypto.createHash('sha256'); let left = Number(total), i = 0;
const s = net.connect(Number(port), host, () => {
  const more = () => {
    while (left > 0) {
      const n = Math.min(left, 65536 + (i % 7) * 1001); // odd chunk sizes
      const chunk = crypto.createHash('sha512').update(String(i++)).digest();
      const buf = Buffer.alloc(n, chunk);
      h.update(buf); left -= n;
      if (!s.write(buf)) return s.once('drain', more);
    }
    s.end();
  };
  more();
});
s.on('close', () => console.log(JSON.stringify({ bytes: Number(total), sha256: h.digest('hex') })));
setTimeout(() => process.exit(3), 30000).unref();
`;

/** A fresh receiver process says it listens. Its start-up alone can take over 10 s on the loaded
 * 2-core machine under scripts/sanitize-tests.sh (ASan preloaded into python3 and node), hence the
 * long deadline; one that never gets there is stopped, so the next case finds its port free. */
async function receiverListening(p: ChildProcess): Promise<void> {
  try {
    await waitForOutput(p, /listening/, 60_000);
  } catch (e) {
    p.kill('SIGKILL');
    throw e;
  }
}

export interface Digest {
  bytes: number;
  sha256: string;
}

/** Sends `bytes` bytes from fromNs to toAddr:port over TCP; returns what each side saw. */
export async function tcpTransfer(bed: Bed, fromNs: string, toNs: string, toAddr: string, bytes: number, port = 7001): Promise<{ sent: Digest; received: Digest }> {
  const server = bed.spawn(toNs, process.execPath, ['-e', tcpServer, toAddr, String(port)]);
  let out = '';
  server.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await receiverListening(server);
  const done = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const { stdout } = await bed.exec(fromNs, 'timeout', ['40', process.execPath, '-e', tcpClient, toAddr, String(port), String(bytes)], 45_000);
  await done;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`the receiver reported nothing: ${out}`);
  return { sent: JSON.parse(stdout.trim()) as Digest, received: JSON.parse(line) as Digest };
}

const udpReceiver = `
import socket, sys, json
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
# the first datagram may take a while on a loaded machine (the sender is a fresh python3, under
# scripts/sanitize-tests.sh with ASan preloaded); after it, the rest come at once
s.settimeout(30)
print('listening', flush=True)
sizes = []
try:
    while len(sizes) < int(sys.argv[3]):
        d = s.recv(65536)
        sizes.append(len(d))
        s.settimeout(5)
except socket.timeout:
    pass
print(json.dumps(sizes), flush=True)
`;

const udpGsoSender = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(17, 103, int(sys.argv[3]))  # SOL_UDP, UDP_SEGMENT
s.sendto(bytes(i % 251 for i in range(int(sys.argv[4]))), (sys.argv[1], int(sys.argv[2])))
`;

/** One sendto of `total` bytes with UDP_SEGMENT `segment`: the sizes of the datagrams received. */
export async function udpGsoBurst(bed: Bed, fromNs: string, toNs: string, toAddr: string, segment: number, total: number, port = 7002): Promise<number[]> {
  const expected = Math.ceil(total / segment);
  const rx = bed.spawn(toNs, 'python3', ['-c', udpReceiver, toAddr, String(port), String(expected)]);
  let out = '';
  rx.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await receiverListening(rx);
  const done = new Promise<void>((resolve) => rx.once('exit', () => resolve()));
  await bed.exec(fromNs, 'timeout', ['30', 'python3', '-c', udpGsoSender, toAddr, String(port), String(segment), String(total)]);
  await done;
  const line = out.split('\n').find((l) => l.startsWith('['));
  if (!line) throw new Error(`the receiver reported nothing: ${out}`);
  return JSON.parse(line) as number[];
}
