/**
 * Type 4 transport messages in JavaScript: the slow reference the native seal/open is tested
 * against, and what tests use to talk to a WireGuard peer without the data plane. Not on any
 * packet path. Format in messages.ts.
 */
import { AEAD_TAG_BYTES, MESSAGE_TRANSPORT, PADDING_MULTIPLE, TRANSPORT_HEADER_BYTES } from './protocol-constants.js';
import { readU32, writeU32 } from './messages.js';
import { aeadOpen, aeadSeal } from './primitives.js';

export function paddedLength(n: number): number {
  return Math.ceil(n / PADDING_MULTIPLE) * PADDING_MULTIPLE;
}

export function sealTransport(key: Uint8Array, receiverIndex: number, counter: bigint, packet: Uint8Array): Uint8Array {
  const padded = new Uint8Array(paddedLength(packet.length));
  padded.set(packet);
  const m = new Uint8Array(TRANSPORT_HEADER_BYTES + padded.length + AEAD_TAG_BYTES);
  m[0] = MESSAGE_TRANSPORT;
  writeU32(m, 4, receiverIndex);
  new DataView(m.buffer).setBigUint64(8, counter, true);
  m.set(aeadSeal(key, counter, padded, new Uint8Array(0)), TRANSPORT_HEADER_BYTES);
  return m;
}

/** The padded plaintext (an IP packet carries its own length; empty = keepalive). */
export function openTransport(
  key: Uint8Array,
  m: Uint8Array,
): { receiverIndex: number; counter: bigint; plaintext: Uint8Array } | undefined {
  if (m.length < TRANSPORT_HEADER_BYTES + AEAD_TAG_BYTES || m[0] !== MESSAGE_TRANSPORT) return undefined;
  const counter = new DataView(m.buffer, m.byteOffset, m.byteLength).getBigUint64(8, true);
  const plaintext = aeadOpen(key, counter, m.subarray(TRANSPORT_HEADER_BYTES), new Uint8Array(0));
  return plaintext && { receiverIndex: readU32(m, 4), counter, plaintext };
}
