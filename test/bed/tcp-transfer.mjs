#!/usr/bin/env node
// An exact TCP transfer for the impairment matrix and fault tests, run inside bed namespaces:
//   recv BIND_IP PORT          accept one connection, print {"bytes","sha256","ms"} when it ends
//   send DST_IP PORT SEED BYTES   send BYTES of a deterministic stream (AES-128-CTR of zeros,
//                                 keyed by SEED) and print {"bytes","sha256","ms"}
// Both sides hash what passed through them; equal digests mean TCP delivered the same bytes.
// Callers bound it with `timeout`.
import { createCipheriv, createHash } from 'node:crypto';
import net from 'node:net';

const [mode, ip, portS, seed, bytesS] = process.argv.slice(2);
const port = Number(portS);

if (mode === 'recv') {
  const server = net.createServer((sock) => {
    server.close();
    const h = createHash('sha256');
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    sock.on('data', (d) => {
      bytes += d.length;
      h.update(d);
    });
    sock.on('end', () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      process.stdout.write(`${JSON.stringify({ bytes, sha256: h.digest('hex'), ms })}\n`);
      sock.end();
    });
    sock.on('error', (e) => {
      process.stderr.write(`recv: ${e.message}\n`);
      process.exit(1);
    });
  });
  server.listen(port, ip, () => process.stdout.write('listening\n'));
} else if (mode === 'send') {
  const total = Number(bytesS);
  const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(64 * 1024);
  const h = createHash('sha256');
  let sent = 0;
  const t0 = process.hrtime.bigint();
  const sock = net.connect(port, ip, () => {
    const pump = () => {
      while (sent < total) {
        const n = Math.min(zeros.length, total - sent);
        const chunk = cipher.update(zeros.subarray(0, n));
        h.update(chunk);
        sent += n;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
      sock.end();
    };
    pump();
  });
  sock.on('error', (e) => {
    process.stderr.write(`send: ${e.message}\n`);
    process.exit(1);
  });
  sock.on('close', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(`${JSON.stringify({ bytes: sent, sha256: h.digest('hex'), ms })}\n`);
  });
  sock.resume();
} else {
  process.stderr.write('usage: tcp-transfer.mjs recv BIND_IP PORT | send DST_IP PORT SEED BYTES\n');
  process.exit(2);
}
