/**
 * WireGuard's four message formats (all integers little-endian; whitepaper §5.4):
 *
 * Initiation, 148 bytes                    Response, 92 bytes
 *   0      1      4         8                0      1      4        8         12
 *   | type | rsv  | sender  |                | type | rsv  | sender | receiver |
 *   |  =1  | 000  |  u32    |                |  =2  | 000  |  u32   |   u32    |
 *   8: ephemeral (32)                        12: ephemeral (32)
 *   40: encrypted static (32 + 16 tag)       44: encrypted nothing (0 + 16 tag)
 *   88: encrypted TAI64N (12 + 16 tag)       60: mac1 (16)   76: mac2 (16)
 *   116: mac1 (16)   132: mac2 (16)
 *
 * Cookie reply, 64 bytes                   Transport data, 16 + n + 16 bytes
 *   0      1      4          8               0      1      4          8           16
 *   | type | rsv  | receiver |               | type | rsv  | receiver | counter u64 |
 *   |  =3  | 000  |   u32    |               |  =4  | 000  |   u32    |   (nonce)   |
 *   8: nonce (24)                            16: encrypted packet, zero-padded to 16 (n + 16 tag)
 *   32: encrypted cookie (16 + 16 tag)
 *
 * mac1 covers every byte before it; mac2 every byte before it (so it also covers mac1).
 */
import {
  COOKIE_REPLY_BYTES,
  INITIATION_BYTES,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_BYTES,
  TRANSPORT_HEADER_BYTES,
  AEAD_TAG_BYTES,
} from './protocol-constants.js';

export const INIT = { sender: 4, ephemeral: 8, static: 40, timestamp: 88, mac1: 116, mac2: 132 } as const;
export const RESP = { sender: 4, receiver: 8, ephemeral: 12, empty: 44, mac1: 60, mac2: 76 } as const;
export const COOKIE = { receiver: 4, nonce: 8, cookie: 32 } as const;

export type MessageKind = 'initiation' | 'response' | 'cookie-reply' | 'transport';

/** The kind of a datagram by its first 4 bytes and exact length; undefined = not WireGuard. */
export function messageKind(b: Uint8Array): MessageKind | undefined {
  if (b.length < 4 || b[1] !== 0 || b[2] !== 0 || b[3] !== 0) return undefined;
  switch (b[0]) {
    case MESSAGE_INITIATION: return b.length === INITIATION_BYTES ? 'initiation' : undefined;
    case MESSAGE_RESPONSE: return b.length === RESPONSE_BYTES ? 'response' : undefined;
    case MESSAGE_COOKIE_REPLY: return b.length === COOKIE_REPLY_BYTES ? 'cookie-reply' : undefined;
    case MESSAGE_TRANSPORT:
      return b.length >= TRANSPORT_HEADER_BYTES + AEAD_TAG_BYTES ? 'transport' : undefined;
    default: return undefined;
  }
}

export function header(type: number, size: number): Uint8Array {
  const m = new Uint8Array(size);
  m[0] = type;
  return m;
}

export function readU32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);
}

export function writeU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, true);
}
