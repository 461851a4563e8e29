/**
 * The local control protocol between `tulle status` and a running daemon, over a Unix stream
 * socket (root only). Read-only: nothing a client sends can change the daemon.
 *
 *   frame    = [length u32 BE][CBOR]            length counts the CBOR bytes only
 *   request  = {v: 1, id: u32, op: "status" | "ping"}
 *   response = {v: 1, id, ok: true, result}
 *            | {v: 1, id, ok: false, error: {code, message}}
 *
 * A client may send several requests on one connection; each gets one response, in order.
 * A frame longer than the reader's limit, or a body that is not CBOR, ends the connection after
 * an error response (the stream cannot be trusted to be in step any more). An unknown version
 * or op is answered with an error and the connection stays usable. Pure: no I/O here.
 */
import { decode, encode } from 'cbor-x';

export const PROTOCOL_VERSION = 1;
/** requests are tiny; anything bigger is not a tulle client */
export const MAX_REQUEST_BYTES = 4096;
/** a status of thousands of peers fits with room to spare */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const HEADER_BYTES = 4;

export const OPS = ['status', 'ping'] as const;
export type Op = (typeof OPS)[number];

export interface Request {
  v: number;
  id: number;
  op: Op;
}

export interface ErrorBody {
  code: string;
  message: string;
}

export type Response = { v: number; id: number; ok: true; result: unknown } | { v: number; id: number; ok: false; error: ErrorBody };

/** Error codes a server answers with (stable; clients and tests match on them). */
export const ERR = {
  badFrame: 'ERR_TULLE_CONTROL_BAD_FRAME',
  tooLarge: 'ERR_TULLE_CONTROL_TOO_LARGE',
  version: 'ERR_TULLE_CONTROL_VERSION',
  unknownOp: 'ERR_TULLE_CONTROL_UNKNOWN_OP',
  internal: 'ERR_TULLE_CONTROL_INTERNAL',
} as const;

export function encodeFrame(message: unknown): Buffer {
  const body = encode(message) as Buffer;
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, HEADER_BYTES);
  return out;
}

export type FrameResult = { kind: 'message'; message: unknown } | { kind: 'error'; code: string; message: string };

/**
 * Splits a byte stream into decoded frames. After an error result the reader is broken: the
 * caller answers once and closes.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  /** chunks of a long frame, joined once it is complete (no copy per chunk) */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private need = 0;
  private broken = false;
  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): FrameResult[] {
    if (this.broken) return [];
    if (this.need) {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.partBytes < this.need) return [];
      chunk = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = this.need = 0;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: FrameResult[] = [];
    while (this.buf.length >= HEADER_BYTES) {
      const len = this.buf.readUInt32BE(0);
      if (len > this.maxBytes) {
        // refused on the header: the body is never buffered
        this.broken = true;
        out.push({ kind: 'error', code: ERR.tooLarge, message: `frame of ${len} bytes is over the limit of ${this.maxBytes}` });
        return out;
      }
      if (this.buf.length < HEADER_BYTES + len) {
        // wait for the rest without copying what has come so far on every chunk
        this.parts = [this.buf];
        this.partBytes = this.buf.length;
        this.need = HEADER_BYTES + len;
        this.buf = Buffer.alloc(0);
        break;
      }
      const body = this.buf.subarray(HEADER_BYTES, HEADER_BYTES + len);
      this.buf = this.buf.subarray(HEADER_BYTES + len);
      try {
        if (len === 0) throw new Error('empty frame');
        out.push({ kind: 'message', message: decode(body) });
      } catch (e) {
        this.broken = true;
        out.push({ kind: 'error', code: ERR.badFrame, message: `not a CBOR message: ${(e as Error).message}` });
        return out;
      }
    }
    return out;
  }

  /** bytes of a frame begun but not yet complete */
  get pending(): number {
    return this.buf.length + this.partBytes;
  }
}

export type Checked = { ok: true; request: Request } | { ok: false; id: number; error: ErrorBody };

/** Validates a decoded request; the id is echoed even on errors when it can be read. */
export function checkRequest(m: unknown): Checked {
  const r = (m && typeof m === 'object' && !Array.isArray(m) ? m : {}) as Record<string, unknown>;
  const id = typeof r.id === 'number' && Number.isInteger(r.id) && r.id >= 0 && r.id <= 0xffffffff ? r.id : 0;
  if (r.v !== PROTOCOL_VERSION) {
    return { ok: false, id, error: { code: ERR.version, message: `protocol version ${JSON.stringify(r.v ?? null)} is not served; this daemon speaks v${PROTOCOL_VERSION}` } };
  }
  if (typeof r.op !== 'string' || !(OPS as readonly string[]).includes(r.op)) {
    return { ok: false, id, error: { code: ERR.unknownOp, message: `unknown op ${JSON.stringify(r.op ?? null)}; known: ${OPS.join(', ')}` } };
  }
  return { ok: true, request: { v: PROTOCOL_VERSION, id, op: r.op as Op } };
}

/** Validates a decoded response as a client sees it. */
export function checkResponse(m: unknown, id: number): Response {
  const r = (m && typeof m === 'object' ? m : {}) as Record<string, unknown>;
  if (r.v !== PROTOCOL_VERSION) throw new Error(`daemon answered with protocol version ${JSON.stringify(r.v ?? null)}, not v${PROTOCOL_VERSION}`);
  if (r.id !== id) throw new Error(`daemon answered request ${JSON.stringify(r.id ?? null)}, not ${id}`);
  if (r.ok === true) return { v: PROTOCOL_VERSION, id, ok: true, result: r.result };
  const e = (r.error ?? {}) as Record<string, unknown>;
  if (r.ok === false && typeof e.code === 'string' && typeof e.message === 'string') return { v: PROTOCOL_VERSION, id, ok: false, error: { code: e.code, message: e.message } };
  throw new Error('daemon sent a malformed response');
}
