/**
 * Events from the native data plane (encrypted mode), as drainEvents() returns them: fixed
 * 176-byte records, little-endian (native/src/wg.c):
 *
 *   0      1        2       4       8                 24      26    28                 176
 *   | kind | family | port  | peer  | address (16)    | len   | rsv | data (148)         |
 *
 *   kind 1 handshake message: data[0..len) is a type 1-3 message from address:port
 *   kind 2 needs handshake:   peer has no usable session (port = 0) or its session is due for
 *                             a rekey (port = 1)
 *   kind 3 unknown index:     transport data under a receiver index we do not know, from
 *                             address:port, an address of one of our peers (no data; at most
 *                             once per 250 ms per source, natively)
 */
export const EVENT_RECORD_BYTES = 176;

export type DataPlaneEvent =
  | { kind: 'handshake'; family: 4 | 6; address: string; port: number; source: Uint8Array; message: Uint8Array }
  | { kind: 'need-handshake'; peer: number; reason: 'no-session' | 'rekey' }
  | { kind: 'unknown-index'; family: 4 | 6; address: string; port: number };

function addressText(family: 4 | 6, b: Uint8Array): string {
  if (family === 4) return Array.from(b.subarray(0, 4)).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

export function decodeEvents(buf: Uint8Array): DataPlaneEvent[] {
  const out: DataPlaneEvent[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let at = 0; at + EVENT_RECORD_BYTES <= buf.length; at += EVENT_RECORD_BYTES) {
    const kind = buf[at];
    if (kind === 1) {
      const family = buf[at + 1] === 6 ? 6 : 4;
      const len = v.getUint16(at + 24, true);
      out.push({
        kind: 'handshake',
        family,
        address: addressText(family, buf.subarray(at + 8, at + 24)),
        port: v.getUint16(at + 2, true),
        // address bytes then port (big-endian): what a cookie is bound to
        source: Uint8Array.of(...buf.subarray(at + 8, at + (family === 4 ? 12 : 24)), buf[at + 3]!, buf[at + 2]!),
        message: buf.subarray(at + 28, at + 28 + len), // a view: each drain returns a fresh buffer
      });
    } else if (kind === 3) {
      const family = buf[at + 1] === 6 ? 6 : 4;
      out.push({ kind: 'unknown-index', family, address: addressText(family, buf.subarray(at + 8, at + 24)), port: v.getUint16(at + 2, true) });
    } else if (kind === 2) {
      out.push({ kind: 'need-handshake', peer: v.getUint32(at + 4, true), reason: v.getUint16(at + 2, true) === 1 ? 'rekey' : 'no-session' });
    }
  }
  return out;
}
