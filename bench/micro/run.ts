/**
 * npm run bench:micro [-- --ms 300]
 *
 * Per-function micro-benchmarks of the C hot path (native/src/micro-bench.c): each stage is run
 * in a calibrated loop for about --ms milliseconds, three times; the median is printed as a
 * markdown table. Single-threaded, no I/O.
 */
import { parseArgs } from 'node:util';
import { loadAddon } from '../../src/dataplane/native.js';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '300' } } });
const targetMs = Number(values.ms);
const addon = loadAddon();

const stages = [
  ['split', 'gso_split: 64 KB TCP/IPv4 super-packet -> 47 segments of MSS 1408'],
  ['coalesce', 'gro_add x 47 + gro_output: 47 segments -> one super-packet'],
  ['coalesce-trusted', 'the same, bytes vouched for (UDP_GRO train, IPv6 peer, AEAD): no checksum sums'],
  ['single', 'gro_add + gro_output of a lone 1460-byte segment (verified, NEEDS_CSUM)'],
  ['single-trusted', 'the same, bytes vouched for'],
  ['complete', 'gso_complete_csum: partial checksum of a 1448-byte packet'],
  ['csum', 'csum_add: 1408 bytes'],
  ['lookup', 'rt_lookup: random address, 1024 /24 routes'],
  ['seal', 'aead_seal: ChaCha20-Poly1305 of a 1424-byte segment in place (encrypted mode)'],
  ['open', 'aead_open: the same, verified (includes a 1440-byte memcpy to restore it)'],
  ['seal-small', 'aead_seal of a 96-byte message (a 64-byte UDP datagram with its headers, padded)'],
  ['open-small', 'aead_open of the same (includes a 112-byte memcpy)'],
] as const;

const rows: string[] = ['| stage | what | ns/op | ns/unit |', '|---|---|---:|---:|'];
for (const [name, what] of stages) {
  let iters = 1;
  while (addon.microBench(name, iters).nsPerOp * iters < targetMs * 1e5) iters *= 4; // calibrate on ~1/10
  iters = Math.max(1, Math.ceil((targetMs * 1e6) / addon.microBench(name, iters).nsPerOp));
  const runs = [0, 1, 2].map(() => addon.microBench(name, iters)).sort((a, b) => a.nsPerOp - b.nsPerOp);
  const m = runs[1]!;
  const unit = m.unit === 'op' ? '' : `${m.nsPerUnit.toFixed(m.nsPerUnit < 1 ? 3 : 1)} per ${m.unit}`;
  rows.push(`| ${name} | ${what} | ${m.nsPerOp.toFixed(1)} | ${unit} |`);
}
console.log(rows.join('\n'));
