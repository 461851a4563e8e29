/**
 * WireGuard's userspace API text (src/wireguard/uapi.ts): the get answer in wireguard-go's keys
 * and form, and the request reader — get, set read to its end and refused, a bad byte after get,
 * an unknown operation, an overlong line — however the bytes are split.
 */
import { describe, expect, it } from 'vitest';
import { ERRNO_EINVAL, formatEndpoint, formatErrno, formatGet, MAX_LINE_BYTES, UapiReader, type UapiAction } from '../../src/wireguard/uapi.js';

const key = (b: number) => new Uint8Array(32).fill(b);

function readAll(text: string, cut = 1): UapiAction[] {
  const r = new UapiReader();
  const out: UapiAction[] = [];
  const b = Buffer.from(text, 'latin1');
  for (let i = 0; i < b.length; i += cut) out.push(...r.push(b.subarray(i, i + cut)));
  return out;
}

describe('uapi get answer', () => {
  it("writes wireguard-go's keys: device first, then each peer starting with public_key", () => {
    const text = formatGet({
      privateKey: key(0x11), listenPort: 51820,
      peers: [
        { publicKey: key(0x22), endpoint: '198.18.0.11:51820', allowedIps: ['10.244.5.0/24'], lastHandshakeAt: 1_700_000_000_123, rxBytes: 10, txBytes: 20n, persistentKeepaliveSeconds: 25 },
        { publicKey: key(0x33), presharedKey: key(0x44), allowedIps: [], rxBytes: 0, txBytes: 0, persistentKeepaliveSeconds: 0 },
      ],
    });
    expect(text.split('\n')).toEqual([
      `private_key=${'11'.repeat(32)}`, 'listen_port=51820',
      `public_key=${'22'.repeat(32)}`, `preshared_key=${'00'.repeat(32)}`, 'protocol_version=1', 'endpoint=198.18.0.11:51820',
      'last_handshake_time_sec=1700000000', 'last_handshake_time_nsec=123000000', 'tx_bytes=20', 'rx_bytes=10', 'persistent_keepalive_interval=25',
      'allowed_ip=10.244.5.0/24',
      `public_key=${'33'.repeat(32)}`, `preshared_key=${'44'.repeat(32)}`, 'protocol_version=1',
      'last_handshake_time_sec=0', 'last_handshake_time_nsec=0', 'tx_bytes=0', 'rx_bytes=0', 'persistent_keepalive_interval=0',
      'errno=0', '', '',
    ]);
    expect(formatErrno(-1)).toBe('errno=-1\n\n');
    expect(formatEndpoint('fd00::1', 51820)).toBe('[fd00::1]:51820');
    expect(formatEndpoint('198.18.0.1', 1)).toBe('198.18.0.1:1');
  });
});

describe('uapi requests', () => {
  it('reads get and set requests split at every byte', () => {
    const text = 'get=1\n\nset=1\npublic_key=abcd\nremove=true\n\nget=1\n\n';
    for (const cut of [1, 2, 5, 1000]) {
      expect(readAll(text, cut)).toEqual([{ kind: 'get' }, { kind: 'set', keys: ['public_key', 'remove'] }, { kind: 'get' }]);
    }
  });

  it('answers a byte other than a newline after get=1 with EINVAL and goes on', () => {
    expect(readAll('get=1\nxget=1\n\n', 3)).toEqual([{ kind: 'error', errno: ERRNO_EINVAL, reason: expect.stringMatching(/trailing/) }, { kind: 'get' }]);
  });

  it('closes on an unknown operation or an overlong line, and reads nothing after', () => {
    expect(readAll('get=2\n\nget=1\n\n', 100)).toEqual([{ kind: 'close', reason: expect.stringMatching(/invalid operation "get=2"/) }]);
    const r = new UapiReader();
    expect(r.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61))).toEqual([{ kind: 'close', reason: expect.stringMatching(/line over/) }]);
    expect(r.push(Buffer.from('get=1\n\n'))).toEqual([]);
    expect(readAll(`set=1\n${'k'.repeat(MAX_LINE_BYTES + 1)}\n\n`, 4096)).toEqual([{ kind: 'close', reason: expect.stringMatching(/line over/) }]);
  });
});
