/**
 * The node's static X25519 key in the state dir: created on first start (mode 0600, written
 * atomically), reused on every later start so peers never see a new key after a restart.
 * The format is `wg genkey`'s: the private key in base64 and a newline. Key material never
 * appears in errors or logs; `toJSON`/`inspect` of the returned object show the public key only.
 */
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { TulleError } from '../util/errors.js';
import { generateKeyPair, publicKeyOf } from './primitives.js';

export const KEY_FILE_NAME = 'wireguard.key';

export interface StaticKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly publicKeyBase64: string;
  /** true when this start created the key */
  readonly created: boolean;
}

function wrap(privateKey: Uint8Array, created: boolean): StaticKey {
  const publicKey = publicKeyOf(privateKey);
  const publicKeyBase64 = Buffer.from(publicKey).toString('base64');
  const redacted = { publicKey: publicKeyBase64, privateKey: '[redacted]' };
  return Object.freeze({
    privateKey,
    publicKey,
    publicKeyBase64,
    created,
    toJSON: () => redacted,
    [inspect.custom]: () => `StaticKey ${publicKeyBase64} (private key redacted)`,
  });
}

export function decodeKey(text: string, what: string): Uint8Array {
  const t = text.trim();
  const b = Buffer.from(t, 'base64');
  if (b.length !== 32 || b.toString('base64') !== t) {
    throw new TulleError('ERR_TULLE_WG_KEY', `${what} is not a base64 32-byte WireGuard key`);
  }
  return new Uint8Array(b);
}

export async function loadOrCreateKey(stateDir: string): Promise<StaticKey> {
  const file = path.join(stateDir, KEY_FILE_NAME);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TulleError('ERR_TULLE_WG_KEY', `cannot read the WireGuard key ${file}`, { cause: e });
    }
  }
  if (text !== undefined) {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) await chmod(file, 0o600); // tighten a loosened file
    return wrap(decodeKey(text, `the key file ${file}`), false);
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPair();
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(Buffer.from(privateKey).toString('base64') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return wrap(privateKey, true);
}
