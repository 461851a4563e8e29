/**
 * How Go's encoding/json fills a struct — what flanneld's config decoding does, so tulle reads
 * the same documents the same way:
 *
 *   - a key matches a field by its exact name, else without regard to case (Go folds ASCII
 *     letters, plus 'ſ' → S and the Kelvin sign → K); a later key for the same field wins;
 *   - keys that match no field are ignored (we report their names so the caller can log them);
 *   - `null` leaves a plain bool/number/string field as it was.
 *
 * Pure. The typed readers below throw ConfigError naming the field, as flanneld's decoder
 * rejects a wrong type ("cannot unmarshal string into ... of type uint").
 */
import { ConfigError } from '../util/errors.js';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go's case folding of a JSON key for field matching. */
export function goFoldName(name: string): string {
  let out = '';
  for (const ch of name) {
    if (ch === '\u017f') out += 'S';
    else if (ch === '\u212a') out += 'K';
    else if (ch >= 'a' && ch <= 'z') out += ch.toUpperCase();
    else out += ch;
  }
  return out;
}

export interface Matched<F extends string> {
  /** field → the value of the last key that matched it (null included) */
  values: Partial<Record<F, unknown>>;
  /** keys that matched no field, in document order */
  unknown: string[];
  /** keys that matched a field under another spelling, e.g. "network" → Network */
  respelled: Array<{ key: string; field: F }>;
}

/** Matches the keys of a JSON object to struct fields as Go's decoder does. */
export function matchFields<F extends string>(obj: JsonObject, fields: readonly F[]): Matched<F> {
  const exact = new Set<string>(fields);
  const folded = new Map<string, F>();
  for (const f of fields) if (!folded.has(goFoldName(f))) folded.set(goFoldName(f), f);
  const out: Matched<F> = { values: {}, unknown: [], respelled: [] };
  for (const [key, value] of Object.entries(obj)) {
    const field = exact.has(key) ? (key as F) : folded.get(goFoldName(key));
    if (field === undefined) {
      out.unknown.push(key);
      continue;
    }
    if (field !== key) out.respelled.push({ key, field });
    out.values[field] = value;
  }
  return out;
}

/**
 * The object as Go would fill a struct with these fields, for reading values others wrote
 * (leases, backend data): the object itself when every key is a field's exact name (what
 * flanneld writes: no copy), else the fields matched as Go matches them ("publicip" →
 * PublicIP, a later key for the same field wins), other keys dropped.
 */
export function goFields<F extends string>(obj: JsonObject, fields: readonly F[]): Partial<Record<F, unknown>> {
  for (const key in obj) if (!(fields as readonly string[]).includes(key)) return matchFields(obj, fields).values;
  return obj as Partial<Record<F, unknown>>;
}

/** Go bool: true/false; null or absent → undefined (the field keeps its default). */
export function goBool(field: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Go string: null or absent → undefined. */
export function goString(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ConfigError(field, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

/** Go int/uint: a JSON integer (no fraction); null or absent → undefined. */
export function goInt(field: string, v: unknown, unsigned: boolean): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || (unsigned && v < 0)) {
    throw new ConfigError(field, `must be ${unsigned ? 'a whole number >= 0' : 'a whole number'}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * flannel's ip types (IP4, IP4Net, IP6Net) decode themselves from the text with the quotes
 * trimmed, so `null`, a number or "" reach the address parser and fail: never undefined here.
 */
export function goTextValue(field: string, v: unknown): string {
  if (typeof v === 'string') return v;
  throw new ConfigError(field, `must be a string, got ${JSON.stringify(v ?? null)}`);
}
