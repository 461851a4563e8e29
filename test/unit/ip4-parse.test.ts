/** The fast IPv4 paths of src/util/ip4.ts agree with the generic parser (src/util/ip.ts) on random text. */
import { describe, expect, it } from 'vitest';
import { intToIp4, ip4ToInt, parseNet4 } from '../../src/util/ip4.js';
import { parseAddress, parsePrefix } from '../../src/util/ip.js';
import { seededRandom } from './seeded-random.js';

const outcome = (f: () => unknown) => {
  try {
    return { value: f() };
  } catch (e) {
    return { error: (e as { code?: string }).code };
  }
};
const generic = (text: string) => {
  const a = parseAddress(text);
  if (a.family !== 4) throw Object.assign(new Error(), { code: 'ERR_TULLE_ADDRESS' });
  return ((a.bytes[0]! << 24) | (a.bytes[1]! << 16) | (a.bytes[2]! << 8) | a.bytes[3]!) >>> 0;
};

describe('IPv4 text', () => {
  it('parses addresses and prefixes as the generic parser does, and refuses what it refuses', () => {
    const random = seededRandom(14);
    const pieces = ['0', '1', '9', '10', '01', '00', '255', '256', '999', '1000', '', '-1', 'a', ' 1', '1e1', '0x1', '244'];
    const pick = () => pieces[Math.floor(random() * pieces.length)]!;
    const texts = ['10.244.3.0', '255.255.255.255', '0.0.0.0', '1.2.3', '1.2.3.4.5', '::1', '::ffff:1.2.3.4', '1..2.3', '.1.2.3', '1.2.3.'];
    for (let i = 0; i < 20_000; i++) {
      const n = 3 + Math.floor(random() * 3);
      texts.push(Array.from({ length: n }, pick).join(random() < 0.95 ? '.' : ':'));
    }
    for (const t of texts) {
      expect(outcome(() => ip4ToInt(t)), t).toEqual(outcome(() => generic(t)));
      for (const len of ['24', '0', '32', '33', '024', '', 'x']) {
        const p = `${t}/${len}`;
        const want = outcome(() => {
          const x = parsePrefix(p);
          if (x.family !== 4) throw Object.assign(new Error(), { code: 'ERR_TULLE_PREFIX' });
          return { base: generic(t), len: x.len };
        });
        expect(outcome(() => parseNet4(p)), p).toEqual(want);
      }
    }
    expect(intToIp4(ip4ToInt('10.244.255.7'))).toBe('10.244.255.7');
  });
});
