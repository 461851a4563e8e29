import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { decodeBackendData, encodeBackendData, parseWireGuardOptions } from '../../src/wireguard/backend-data.js';

describe('wireguard lease BackendData and config options', () => {
  it('round-trips flannel\'s BackendData', () => {
    const key = randomBytes(32);
    const d = encodeBackendData(key, 51820);
    expect(JSON.parse(JSON.stringify(d))).toEqual({ PublicKey: key.toString('base64'), Port: 51820 });
    const back = decodeBackendData(d, '10.244.1.0-24');
    expect(Buffer.from(back.publicKey)).toEqual(key);
    expect(back.port).toBe(51820);
  });

  it("reads BackendData's fields as Go does in flanneld: exact name, else any case; a later key wins", () => {
    const key = randomBytes(32);
    const other = randomBytes(32);
    const d = JSON.parse(`{"publickey":"${other.toString('base64')}","PUBLICKEY":"${key.toString('base64')}","port":51830,"Extra":1}`);
    const back = decodeBackendData(d, '10.244.1.0-24');
    expect(Buffer.from(back.publicKey)).toEqual(key);
    expect(back.port).toBe(51830);
  });

  it('names what is wrong with a bad lease', () => {
    expect(() => decodeBackendData(null, 'L')).toThrow(/BackendData missing/);
    expect(() => decodeBackendData({ PublicKey: 'abc', Port: 1 }, 'L')).toThrow(/PublicKey is not/);
    expect(() => decodeBackendData({ PublicKey: randomBytes(32).toString('base64'), Port: 70000 }, 'L')).toThrow(/Port/);
  });

  it('parses PSK, PersistentKeepaliveInterval and ListenPort', () => {
    const psk = randomBytes(32).toString('base64');
    expect(parseWireGuardOptions({ PSK: psk, PersistentKeepaliveInterval: 25 })).toMatchObject({ persistentKeepaliveMs: 25_000, listenPort: 51820 });
    expect(parseWireGuardOptions({}).presharedKey).toBeUndefined();
    expect(() => parseWireGuardOptions({ PSK: 'short' })).toThrow(/Backend.PSK/);
    expect(() => parseWireGuardOptions({ PersistentKeepaliveInterval: -1 })).toThrow(/PersistentKeepaliveInterval/);
  });
});
