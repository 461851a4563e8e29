// Sends UDP datagrams given as hex lines in a file: node send-datagrams.mjs FILE HOST PORT
// (run inside a test namespace with `ip netns exec`). Sends at most 2 s, paced in small bursts.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

const [file, host, port] = process.argv.slice(2);
const payloads = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((h) => Buffer.from(h, 'hex'));
const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
const deadline = Date.now() + 2000;
let i = 0;
function burst() {
  if (i >= payloads.length || Date.now() > deadline) return sock.close(() => console.log(`sent ${i}`));
  let inFlight = 0;
  for (const end = Math.min(i + 32, payloads.length); i < end; i++) {
    inFlight++;
    sock.send(payloads[i], Number(port), host, () => --inFlight === 0 && setImmediate(burst));
  }
}
burst();
