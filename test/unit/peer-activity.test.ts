/** Plain mode's "last activity" (src/control/peer-activity.ts): dated when a peer's counters grow. */
import { describe, expect, it } from 'vitest';
import { PeerActivity } from '../../src/control/peer-activity.js';

const t = (tx: number, rx: number) => ({ txPackets: tx, txBytes: tx * 100, rxPackets: rx, rxBytes: rx * 100 });

describe('peer activity', () => {
  it('dates each direction by the sample in which it grew; nothing at first sight', () => {
    const a = new PeerActivity();
    a.observe([{ id: 1, traffic: t(5, 5) }], 1000);
    expect(a.last(1)).toEqual({ sentAt: undefined, receivedAt: undefined });
    a.observe([{ id: 1, traffic: t(6, 5) }], 2000);
    a.observe([{ id: 1, traffic: t(6, 5) }], 3000);
    expect(a.last(1)).toEqual({ sentAt: 2000, receivedAt: undefined });
    a.observe([{ id: 1, traffic: t(6, 9) }], 4000);
    expect(a.last(1)).toEqual({ sentAt: 2000, receivedAt: 4000 });
  });

  it('starts over when an id is reused (counters went back) and forgets peers that are gone', () => {
    const a = new PeerActivity();
    a.observe([{ id: 1, traffic: t(5, 5) }, { id: 2, traffic: t(0, 0) }], 1000);
    a.observe([{ id: 1, traffic: t(7, 7) }, { id: 2, traffic: t(1, 0) }], 2000);
    a.observe([{ id: 1, traffic: t(0, 0) }], 3000);
    expect(a.last(1)).toEqual({ sentAt: undefined, receivedAt: undefined });
    expect(a.last(2)).toEqual({ sentAt: undefined, receivedAt: undefined });
    a.observe([{ id: 1, traffic: t(1, 0) }, { id: 2, traffic: undefined }], 4000);
    expect(a.last(1)).toEqual({ sentAt: 4000, receivedAt: undefined });
  });
});
