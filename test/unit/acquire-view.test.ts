/**
 * What an acquisition takes from a listing without decoding every value (src/lease/acquire-view.ts):
 * the taken subnets from the key names, and the leases with our PublicIP found by a raw search of
 * the value text, the decoded PublicIP deciding.
 */
import { describe, expect, it } from 'vitest';
import { AcquireView, ourNeedle } from '../../src/lease/acquire-view.js';
import { encodeLeaseValue, type Lease, type LeaseAttrs } from '../../src/lease/lease.js';
import type { RegistryEntry } from '../../src/registry/registry.js';

const OURS: LeaseAttrs = { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' };
const entry = (name: string, value: string, modRevision = 5, leaseId = '77'): RegistryEntry => ({ name, value, modRevision, leaseId });
const lease = (ip: string, extra: Partial<LeaseAttrs> = {}) => encodeLeaseValue({ PublicIP: ip, PublicIPv6: null, BackendType: 'udp', ...extra });

function view(entries: RegistryEntry[], attrs = OURS) {
  const decoded: string[] = [];
  const isOurs = (l: Lease) => (decoded.push(l.subnet), l.attrs.PublicIP === attrs.PublicIP);
  return { v: new AcquireView({ entries, revision: 9 }, ourNeedle(attrs, true), isOurs), decoded };
}

describe('acquire view', () => {
  it('finds our lease by the raw search, decoding only the values that hold our address', () => {
    const { v, decoded } = view([
      entry('10.244.1.0-24', lease('198.18.0.1')),
      entry('10.244.2.0-24', lease('198.18.0.10'), 6, '1234'),
      entry('10.244.3.0-24', lease('198.18.0.3')),
    ]);
    expect([...v.ours.values()]).toEqual([{ lease: expect.objectContaining({ subnet: '10.244.2.0/24', modRevision: 6 }), leaseId: '1234' }]);
    expect(decoded).toEqual(['10.244.2.0/24']); // the other two were never decoded
  });

  it('a value that merely contains our address elsewhere is not ours', () => {
    const { v, decoded } = view([
      entry('10.244.1.0-24', lease('198.18.0.100')), // our address is a prefix of theirs
      entry('10.244.2.0-24', lease('198.18.0.2', { BackendData: { Note: 'was 198.18.0.10' } })),
      entry('10.244.3.0-24', lease('198.18.0.3', { PublicIPv6: null, BackendType: '198.18.0.10' })),
      entry('10.244.4.0-24', '{"PublicIP":"198.18.0.4","Old":{"PublicIP":"198.18.0.10"}}'),
    ]);
    expect(v.ours.size).toBe(0);
    // the search is for our address as a JSON string, quotes included: a longer address or our
    // address inside other text is no candidate; where it is a whole string of another field,
    // the decoded PublicIP says no
    expect(decoded).toEqual(['10.244.3.0/24', '10.244.4.0/24']);
  });

  it('our address as a prefix of another (198.18.1.1 vs 198.18.1.10) is not even decoded', () => {
    const { v, decoded } = view([entry('10.244.1.0-24', lease('198.18.1.10')), entry('10.244.2.0-24', lease('198.18.1.1'), 7, '9')], { ...OURS, PublicIP: '198.18.1.1' });
    expect([...v.ours.values()]).toEqual([{ lease: expect.objectContaining({ subnet: '10.244.2.0/24' }), leaseId: '9' }]);
    expect(decoded).toEqual(['10.244.2.0/24']);
  });

  it('our address spelled with JSON escapes is still found (a backslash makes a value a candidate)', () => {
    const { v } = view([entry('10.244.5.0-24', '{"PublicIP":"198.18.0.1\\u0030","PublicIPv6":null}')]);
    expect([...v.ours.keys()]).toEqual(['10.244.5.0/24']);
  });

  it("our lease written with other key spellings is ours, as Go's decoder reads it in flanneld", () => {
    const { v } = view([
      entry('10.244.6.0-24', '{"publicip":"198.18.0.10","backendtype":"udp"}', 8, '42'),
      entry('10.244.7.0-24', '{"PUBLICIP":"198.18.0.7"}'),
    ]);
    expect([...v.ours.values()]).toEqual([{ lease: expect.objectContaining({ subnet: '10.244.6.0/24', attrs: OURS }), leaseId: '42' }]);
  });

  it('every lease key is taken, whatever its value; names that are no lease key are not', () => {
    const { v } = view([entry('10.244.1.0-24', 'not json {'), entry('10.244.2.0-23', lease('198.18.0.2')), entry('hello', 'world')]);
    expect(v.overlaps({ subnet: '10.244.1.0/24' })).toBe(true);
    expect(v.overlaps({ subnet: '10.244.3.0/24' })).toBe(true); // inside the /23
    expect(v.overlaps({ subnet: '10.244.4.0/24' })).toBe(false);
    expect(v.ours.size).toBe(0);
  });

  it('folds in what changed: new keys are taken, a lease of ours someone rewrote is ours no more', () => {
    const { v } = view([entry('10.244.2.0-24', lease('198.18.0.10'))]);
    v.absorb({ entries: [entry('10.244.7.0-24', lease('198.18.0.7')), entry('10.244.2.0-24', lease('198.18.0.99'), 12)], revision: 12 });
    expect(v.revision).toBe(12);
    expect(v.overlaps({ subnet: '10.244.7.0/24' })).toBe(true);
    expect(v.ours.size).toBe(0);
    v.absorb({ entries: [entry('10.244.8.0-24', lease('198.18.0.10'), 13)], revision: 13 });
    expect([...v.ours.keys()]).toEqual(['10.244.8.0/24']);
  });

  it('our address in a key name, or spanning a key and a value, is no hit', () => {
    // fromEntries lays names and values side by side: a hit must lie inside one value
    const { v, decoded } = view([entry('"198.18.0.10"', '{}'), entry('10.244.1.0-24', '"198.18'), entry('.0.10"', '{}')]);
    expect(v.ours.size).toBe(0);
    expect(decoded).toEqual([]);
  });

  it('the entries for the table: the listing, with what changed since and without a forgotten lease', () => {
    const { v } = view([entry('10.244.1.0-24', lease('198.18.0.1'), 5, '11'), entry('10.244.2.0-24', lease('198.18.0.10'), 6, '12')]);
    v.absorb({ entries: [entry('10.244.1.0-24', lease('198.18.0.1'), 20, '21'), entry('10.244.3.0-24', lease('198.18.0.3'), 21, '22')], revision: 21 });
    v.forget(v.ours.get('10.244.2.0/24')!.lease);
    expect(v.entries()).toEqual([entry('10.244.1.0-24', lease('198.18.0.1'), 20, '21'), entry('10.244.3.0-24', lease('198.18.0.3'), 21, '22')]);
  });

  it('forgetting a deleted lease of ours frees its subnet', () => {
    const { v } = view([entry('10.244.2.0-24', lease('198.18.0.10')), entry('10.244.3.0-24', lease('198.18.0.3'))]);
    v.forget(v.ours.get('10.244.2.0/24')!.lease);
    expect(v.overlaps({ subnet: '10.244.2.0/24' })).toBe(false);
    expect(v.overlaps({ subnet: '10.244.3.0/24' })).toBe(true);
    expect(v.ours.size).toBe(0);
  });
});
