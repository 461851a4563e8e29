/**
 * The wire-bytes reader of etcd's RangeResponse (src/registry/etcd-range-decode.ts) against the
 * generic protobuf decoder the etcd3 client uses, on random responses encoded by that same
 * library; and on truncated ones, which must throw, never read past the message.
 */
import { createRequire } from 'node:module';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { decodeRangeResponse } from '../../src/registry/etcd-range-decode.js';
import { seededRandom } from './seeded-random.js';

const proto = createRequire(import.meta.url).resolve('etcd3/proto/rpc.proto');
const pkg = loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const range = (pkg['etcdserverpb.KV'] as Record<string, { responseSerialize(o: object): Buffer; responseDeserialize(b: Buffer): any }>).Range!;
const PREFIX = '/coreos.com/network/subnets/';
const random = seededRandom(7);
const int = (max: number) => Math.floor(random() * max);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
// small, 49..63-bit, the largest, and negative int64s (the wire form of each differs)
const int64 = () => pick([
  () => String(int(1000)), () => String(BigInt(int(2 ** 31)) * BigInt(int(2 ** 32)) + BigInt(int(2 ** 32))), () => '7587890338262394123',
  () => '9223372036854775807', () => String(2 ** 49), () => String(2 ** 49 - 1), () => '-1', () => String(-BigInt(int(2 ** 40))),
])();

function response() {
  const kvs = Array.from({ length: int(20) }, (_, i) => ({
    key: Buffer.from(`${PREFIX}10.244.${i}.0-24${random() < 0.1 ? 'é' : ''}`),
    create_revision: int64(), mod_revision: String(int(2 ** 40)), version: String(int(100)),
    value: Buffer.from(random() < 0.1 ? '' : JSON.stringify({ PublicIP: `198.19.0.${i}`, PublicIPv6: null, x: 'ü'.repeat(int(3)) })),
    lease: random() < 0.2 ? '0' : int64(),
  }));
  return { header: { cluster_id: int64(), member_id: int64(), revision: String(int(2 ** 45)), raft_term: String(int(50)) }, kvs, more: random() < 0.5, count: String(kvs.length + int(5)) };
}

describe('etcd range response, read from the wire bytes', () => {
  it('agrees with the generic decoder on 2,000 random responses', () => {
    for (let n = 0; n < 2000; n++) {
      const buf = range.responseSerialize(response());
      const want = range.responseDeserialize(buf);
      const got = decodeRangeResponse(buf, PREFIX.length);
      expect(got.revision).toBe(Number(want.header.revision));
      expect(got.more).toBe(want.more);
      expect(got.page.entries()).toEqual(want.kvs.map((kv: any) => ({
        name: kv.key.toString().slice(PREFIX.length), value: kv.value.toString(), modRevision: Number(kv.mod_revision), leaseId: kv.lease,
      })));
      expect(got.lastKey?.toString()).toBe(want.kvs.at(-1)?.key.toString());
      // room made for fewer keys than came (a limit is the request's, not a promise): grows
      expect(decodeRangeResponse(buf, PREFIX.length, 1).page.entries()).toEqual(got.page.entries());
    }
  });

  it('a page finds the values that hold a text as a plain search of each value would, and reads each key in place', () => {
    const needles = ['"198.19.0.1"', '198.19.0.1', 'ü', '0-24', '{', '"'];
    for (let n = 0; n < 500; n++) {
      const page = decodeRangeResponse(range.responseSerialize(response()), PREFIX.length).page;
      const entries = page.entries();
      for (const needle of needles) {
        const expected = entries.flatMap((e, i) => (e.value.includes(needle) ? [i] : []));
        expect(page.valuesHolding(Buffer.from(needle)), needle).toEqual(expected);
      }
      expect(page.valuesHolding(0x7b /* { */)).toEqual(entries.flatMap((e, i) => (e.value.includes('{') ? [i] : [])));
      entries.forEach((e, i) => {
        expect(page.name(i)).toBe(e.name);
        expect(page.buf.toString('utf8', page.keyStart(i), page.keyEnd(i))).toBe(e.name);
      });
    }
  });

  it('throws on every truncation of a response instead of reading past it', () => {
    const r = response();
    r.kvs.push({ ...r.kvs[0]!, key: Buffer.from(`${PREFIX}10.244.99.0-24`), value: Buffer.from('{"PublicIP":"198.19.0.1"}') });
    const buf = range.responseSerialize(r);
    let threw = 0;
    for (let cut = 1; cut < buf.length; cut++) {
      try {
        decodeRangeResponse(buf.subarray(0, cut), PREFIX.length);
      } catch (e) {
        expect((e as Error).message).toMatch(/^etcd range response: /);
        threw++;
      }
    }
    // a cut exactly between two fields is a valid shorter message; every other cut throws
    expect(threw).toBeGreaterThan(buf.length / 2);
  });
});
