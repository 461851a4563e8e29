/**
 * Differential fuzzing of the native addon against the TypeScript references, for `npm run fuzz`:
 * seeded, mutated inputs through both sides for a given time, every disagreement a finding.
 *
 *   route      routeLookup (route-table.c)        vs ReferenceRouter (src/dataplane/route-reference.ts)
 *   replay     replayCheck (replay.c)             vs ReplayWindow (src/wireguard/replay-window.ts)
 *   split      offloadSplit (gso.c)               vs referenceSplit (src/dataplane/offload-reference.ts)
 *   coalesce   offloadCoalesce (gro.c)            vs referenceCoalesce
 *   transport  aeadSeal/aeadOpen (aead.c)         vs sealTransport/openTransport (src/wireguard/transport-reference.ts)
 *
 * Inputs start valid (generated flows, command streams, sealed messages) and are then mutated:
 * header fields set to edge values, bytes flipped, prefixes and counters pushed to the edges.
 */
import { loadAddon } from '../../src/dataplane/native.js';
import { encodeCommands, type Command } from '../../src/dataplane/commands.js';
import { ReferenceRouter } from '../../src/dataplane/route-reference.js';
import { formatAddress, formatPrefix, type Address, type Prefix } from '../../src/util/ip.js';
import { ReplayWindow } from '../../src/wireguard/replay-window.js';
import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW_BITS } from '../../src/wireguard/protocol-constants.js';
import { openTransport, paddedLength, sealTransport } from '../../src/wireguard/transport-reference.js';
import {
  GSO_NONE,
  VNET_F_NEEDS_CSUM,
  encodeVnet,
  referenceCoalesce,
  referenceSplit,
  transport,
  type VnetHdr,
} from '../../src/dataplane/offload-reference.js';
import { headerLen, hex, randomBytes, randomFlow, superPacket } from '../../test/offload/packets.js';
import { seededRandom } from '../../test/unit/seeded-random.js';

export interface DifferentialResult {
  name: string;
  inputs: number;
  findings: string[];
}

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[int(rand, xs.length)]!;

/* ---- route table ---- */

function randomPrefix(rand: Rand, base: Address[]): Prefix {
  const family = rand() < 0.6 ? 4 : 6;
  const same = base.filter((a) => a.family === family);
  const bytes = same.length && rand() < 0.7 ? pick(rand, same).bytes.slice() : randomBytes(rand, family === 4 ? 4 : 16);
  if (rand() < 0.5) { const i = int(rand, bytes.length); bytes[i] = bytes[i]! ^ (1 << int(rand, 8)); }
  const max = family === 4 ? 32 : 128;
  const len = rand() < 0.3 ? pick(rand, [0, 1, max - 1, max, 8, 16, 24, 64]) % (max + 1) : int(rand, max + 1);
  return { family, bytes, len };
}

function routeOnce(rand: Rand, findings: string[]): void {
  const addon = loadAddon();
  const base: Address[] = [];
  const ref = new ReferenceRouter();
  const cmds: Command[] = [];
  const n = 1 + int(rand, 40);
  for (let i = 0; i < n; i++) {
    const p = randomPrefix(rand, base);
    base.push(p);
    if (rand() < 0.75) {
      const peer = rand() < 0.1 ? pick(rand, [0, 0xfffff, 1 << 19]) : int(rand, 64);
      cmds.push({ op: 'setRoute', subnet: formatPrefix(p), peer });
      ref.set(p, peer);
    } else {
      cmds.push({ op: 'deleteRoute', subnet: formatPrefix(p) });
      ref.delete(p);
    }
  }
  const queries: Address[] = [];
  for (let i = 0; i < 64; i++) {
    const a = base.length && rand() < 0.8 ? { ...pick(rand, base) } : randomPrefix(rand, []);
    const bytes = a.bytes.slice();
    if (rand() < 0.6) { const k = int(rand, bytes.length); bytes[k] = bytes[k]! ^ (1 << int(rand, 8)); }
    queries.push({ family: a.family, bytes });
  }
  const q = new Uint8Array(queries.length * 17);
  queries.forEach((a, i) => {
    q[i * 17] = a.family;
    q.set(a.bytes, i * 17 + 1);
  });
  const got = addon.routeLookup(encodeCommands(cmds), q);
  queries.forEach((a, i) => {
    const want = ref.lookup(a) ?? 0xffffffff;
    if (got[i] !== want) findings.push(`route: lookup ${formatAddress(a)} -> ${got[i]}, reference ${want} (${cmds.length} commands)`);
  });
}

/* ---- replay window ---- */

function replayOnce(rand: Rand, findings: string[]): void {
  const addon = loadAddon();
  const ref = new ReplayWindow();
  const w = BigInt(REPLAY_WINDOW_BITS);
  let last = rand() < 0.1 ? REJECT_AFTER_MESSAGES - 20000n : BigInt(int(rand, 100000));
  const xs: bigint[] = [];
  for (let i = 0; i < 200; i++) {
    const d = BigInt(int(rand, 70));
    let c: bigint;
    switch (int(rand, 8)) {
      case 0: c = last - w + d - 35n; break; // the window's edge
      case 1: c = last + w + d; break; // a jump past a whole window
      case 2: c = xs.length ? pick(rand, xs) : 0n; break; // a replay
      case 3: c = REJECT_AFTER_MESSAGES - 35n + d; break; // the end of the counter space
      case 4: c = last + (1n << BigInt(int(rand, 64))); break;
      default: c = last - 64n + d * 2n;
    }
    c = c < 0n ? 0n : c >= 1n << 64n ? (1n << 64n) - 1n : c;
    xs.push(c);
    if (c > last && c < REJECT_AFTER_MESSAGES) last = c;
  }
  const got = addon.replayCheck(BigUint64Array.from(xs));
  xs.forEach((c, i) => {
    const want = ref.accept(c) ? 1 : 0;
    if (got[i] !== want) findings.push(`replay: counter ${c} (#${i}) -> ${got[i]}, reference ${want}`);
  });
}

/* ---- offload split / coalesce ---- */

function mutateVnet(rand: Rand, h: VnetHdr): VnetHdr {
  const m = { ...h };
  switch (int(rand, 6)) {
    case 0: m.gsoSize = pick(rand, [1, 2, 7, 8, 1400, 65535, m.gsoSize + 1, m.gsoSize - 1]) & 0xffff; break;
    case 1: m.hdrLen = int(rand, 65536); break;
    case 2: m.flags = int(rand, 256); break;
    default: break; // unchanged: most inputs stay valid so the outputs are compared
  }
  return m;
}

function splitOnce(rand: Rand, findings: string[]): void {
  const addon = loadAddon();
  const f = randomFlow(rand);
  const gso = 1 + int(rand, rand() < 0.2 ? 9000 : 1500);
  const { l4, l4len } = headerLen(f);
  const payload = int(rand, Math.min(65535 - l4 - l4len, gso * 64) + 1);
  const flags = f.proto === 6 ? pick(rand, [0x10, 0x18, 0x19, 0x90, 0x98, 0x11, 0x02]) : 0;
  const sp = superPacket(f, randomBytes(rand, payload), gso, flags);
  let vnet = mutateVnet(rand, sp.vnet);
  if (rand() < 0.15) vnet = { ...vnet, gsoType: GSO_NONE, flags: VNET_F_NEEDS_CSUM };
  const got = addon.offloadSplit(encodeVnet(vnet), sp.pkt);
  if (typeof got === 'number') {
    if (vnet.gsoType !== GSO_NONE && vnet.gsoSize > 0 && vnet === sp.vnet) findings.push(`split: valid super-packet refused (${got})`);
    return;
  }
  const want = referenceSplit(vnet, sp.pkt);
  if (!want || want.length !== got.length || want.some((s, i) => hex(s) !== hex(got[i]!)))
    findings.push(`split: ${got.length} segments, reference ${want?.length ?? 'error'} (gso ${vnet.gsoSize}, ${sp.pkt.length} bytes, type ${vnet.gsoType})`);
}

function coalesceOnce(rand: Rand, findings: string[]): void {
  const addon = loadAddon();
  const all: Uint8Array[] = [];
  const flows = Array.from({ length: 1 + int(rand, 3) }, () => randomFlow(rand));
  const queues = flows.map((f) => {
    const gso = 1 + int(rand, 1400);
    const { l4, l4len } = headerLen(f);
    const payload = int(rand, Math.min(8000, gso * 70, 65535 - l4 - l4len));
    const sp = superPacket(f, randomBytes(rand, payload), gso, f.proto === 6 && rand() < 0.3 ? 0x18 : 0x10);
    return referenceSplit(sp.vnet, sp.pkt)!;
  });
  while (queues.some((q) => q.length)) {
    const q = pick(rand, queues);
    for (let i = 1 + int(rand, 10); i > 0 && q.length; i--) all.push(q.shift()!);
  }
  for (const p of all) {
    if (rand() > 0.04) continue;
    const { l4 } = transport(p);
    const at = pick(rand, [int(rand, p.length), l4 + 13, l4 + 4, 0, 9, l4 + 12]) % p.length;
    p[at] = rand() < 0.5 ? p[at]! ^ (1 << int(rand, 8)) : pick(rand, [0, 0xff, 0x10, 0x18, 0x45, 0x60]);
  }
  // the native coalescer is specified for packets that passed ip_parse (gro.h): keep those
  const ok = all.filter((p) => {
    const v = p[0]! >> 4;
    if (v === 4) return p.length >= 20 && (p[0]! & 15) * 4 >= 20 && (p[0]! & 15) * 4 <= p.length && ((p[2]! << 8) | p[3]!) === p.length;
    return v === 6 && p.length >= 40 && ((p[4]! << 8) | p[5]!) + 40 === p.length;
  });
  const tcp = rand() < 0.9;
  const udp = rand() < 0.7;
  const trusted = rand() < 0.5; // bytes vouched for (gro.h): no checksum sums
  const got = addon.offloadCoalesce(ok.map((p) => p.slice()), tcp, udp, trusted);
  const want = referenceCoalesce(ok, { tcp, udp, trusted });
  const g = got.map((o) => `${hex(o.vnet)}/${hex(o.packet)}/${o.segments}`);
  const w = want.map((o) => `${hex(o.vnet)}/${hex(o.packet)}/${o.segments}`);
  if (g.length !== w.length || g.some((x, i) => x !== w[i]))
    findings.push(`coalesce: ${got.length} outputs, reference ${want.length} (${ok.length} packets, tcp ${tcp}, udp ${udp}, trusted ${trusted})`);
}

/* ---- transport messages ---- */

function transportOnce(rand: Rand, findings: string[]): void {
  const addon = loadAddon();
  const key = randomBytes(rand, 32);
  const counter = rand() < 0.2 ? pick(rand, [0n, 1n, (1n << 64n) - 1n, REJECT_AFTER_MESSAGES]) : BigInt(int(rand, 2 ** 32));
  const packet = randomBytes(rand, rand() < 0.1 ? 0 : int(rand, 1500));
  const msg = sealTransport(key, int(rand, 2 ** 32), counter, packet);
  const padded = new Uint8Array(paddedLength(packet.length));
  padded.set(packet);
  const sealed = addon.aeadSeal(key, counter, padded);
  if (!sealed || hex(sealed) !== hex(msg.subarray(16))) findings.push(`transport: seal of ${packet.length} bytes differs from the reference`);
  const c = msg.slice();
  if (rand() < 0.5) { const k = 16 + int(rand, c.length - 16); c[k] = c[k]! ^ (1 << int(rand, 8)); }
  const opened = addon.aeadOpen(key, counter, c.subarray(16));
  const ref = openTransport(key, c);
  if ((opened === null) !== (ref === undefined) || (opened && ref && hex(opened) !== hex(ref.plaintext)))
    findings.push(`transport: open -> ${opened ? 'plaintext' : 'null'}, reference ${ref ? 'plaintext' : 'undefined'}`);
}

const references: ReadonlyArray<[string, (rand: Rand, findings: string[]) => void]> = [
  ['route', routeOnce],
  ['replay', replayOnce],
  ['split', splitOnce],
  ['coalesce', coalesceOnce],
  ['transport', transportOnce],
];

export async function runDifferential(o: { seconds: number; seed: number }): Promise<DifferentialResult[]> {
  const out: DifferentialResult[] = [];
  for (const [name, once] of references) {
    const rand = seededRandom(o.seed * 7919 + name.length);
    const findings: string[] = [];
    let inputs = 0;
    const end = Date.now() + o.seconds * 1000;
    while (Date.now() < end && findings.length < 20) {
      try {
        once(rand, findings);
      } catch (err) {
        findings.push(`${name}: threw ${(err as Error).message}`);
      }
      inputs++;
    }
    out.push({ name, inputs, findings });
  }
  return out;
}
