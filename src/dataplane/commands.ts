/**
 * The closed command set that programs the native data plane, and its binary encoding.
 *
 *   record = [op u8][reserved u8][size u16 LE][payload]       (size counts the whole record)
 *   setPeer     op 1, 28 B: peer u32, family u8, rsv u8, port u16, address[16]
 *   deletePeer  op 2,  8 B: peer u32
 *   setRoute    op 3, 28 B: peer u32, family u8, len u8, rsv u16, subnet[16]
 *   deleteRoute op 4, 28 B: rsv u32, family u8, len u8, rsv u16, subnet[16]
 * encrypted mode only (native/src/wg.h):
 *   installSession op 5, 84 B: peer u32, local index u32, remote index u32, role u8 (1 = current,
 *                  we initiated; 0 = next, we responded), rsv[3], send key[32], receive key[32]
 *   retireSession  op 6,  8 B: local index u32 (keys wiped)
 *   sendKeepalive  op 7,  8 B: peer u32
 *   clearStaged    op 8,  8 B: peer u32 (a handshake gave up)
 *
 * Peer ids are small integers chosen by the caller (the peer directory); a route names the peer
 * that owns the subnet. Mirrors enum dp_op in native/src/dataplane.h.
 */
import { parseAddress, parsePrefix, type Address, type Prefix } from '../util/ip.js';

export type Command =
  | { op: 'setPeer'; peer: number; address: string; port: number }
  | { op: 'deletePeer'; peer: number }
  | { op: 'setRoute'; subnet: string; peer: number }
  | { op: 'deleteRoute'; subnet: string }
  | {
      op: 'installSession';
      peer: number;
      localIndex: number;
      remoteIndex: number;
      role: 'current' | 'next';
      sendKey: Uint8Array;
      receiveKey: Uint8Array;
    }
  | { op: 'retireSession'; localIndex: number }
  | { op: 'sendKeepalive'; peer: number }
  | { op: 'clearStaged'; peer: number };

const OP = { setPeer: 1, deletePeer: 2, setRoute: 3, deleteRoute: 4, installSession: 5, retireSession: 6, sendKeepalive: 7, clearStaged: 8 } as const;
const SIZE = { setPeer: 28, deletePeer: 8, setRoute: 28, deleteRoute: 28, installSession: 84, retireSession: 8, sendKeepalive: 8, clearStaged: 8 } as const;

export function encodeCommands(cmds: readonly Command[]): Uint8Array {
  const out = new Uint8Array(cmds.reduce((n, c) => n + SIZE[c.op], 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const c of cmds) {
    out[at] = OP[c.op];
    view.setUint16(at + 2, SIZE[c.op], true);
    switch (c.op) {
      case 'setPeer': {
        const a: Address = parseAddress(c.address);
        view.setUint32(at + 4, c.peer, true);
        out[at + 8] = a.family;
        view.setUint16(at + 10, c.port, true);
        out.set(a.bytes, at + 12);
        break;
      }
      case 'deletePeer':
      case 'sendKeepalive':
      case 'clearStaged':
        view.setUint32(at + 4, c.peer, true);
        break;
      case 'retireSession':
        view.setUint32(at + 4, c.localIndex, true);
        break;
      case 'installSession':
        view.setUint32(at + 4, c.peer, true);
        view.setUint32(at + 8, c.localIndex, true);
        view.setUint32(at + 12, c.remoteIndex, true);
        out[at + 16] = c.role === 'current' ? 1 : 0;
        out.set(c.sendKey, at + 20);
        out.set(c.receiveKey, at + 52);
        break;
      case 'setRoute':
      case 'deleteRoute': {
        const p: Prefix = parsePrefix(c.subnet);
        if (c.op === 'setRoute') view.setUint32(at + 4, c.peer, true);
        out[at + 8] = p.family;
        out[at + 9] = p.len;
        out.set(p.bytes, at + 12);
        break;
      }
    }
    at += SIZE[c.op];
  }
  return out;
}
