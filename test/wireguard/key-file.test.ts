import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, readFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { loadOrCreateKey, KEY_FILE_NAME } from '../../src/wireguard/key-file.js';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('static key file', () => {
  it('is created 0600 on first start and reused after', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tulle-key-'));
    const state = path.join(dir, 'state');
    const k1 = await loadOrCreateKey(state);
    expect(k1.created).toBe(true);
    const st = await stat(path.join(state, KEY_FILE_NAME));
    expect(st.mode & 0o777).toBe(0o600);
    const k2 = await loadOrCreateKey(state);
    expect(k2.created).toBe(false);
    expect(k2.publicKeyBase64).toBe(k1.publicKeyBase64);
    expect(Buffer.from(k2.privateKey)).toEqual(Buffer.from(k1.privateKey));
  });

  it('never shows the private key in JSON or inspect', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tulle-key-'));
    const k = await loadOrCreateKey(dir);
    const priv = (await readFile(path.join(dir, KEY_FILE_NAME), 'utf8')).trim();
    expect(JSON.stringify(k)).not.toContain(priv);
    expect(inspect(k)).not.toContain(priv);
    expect(JSON.stringify(k)).toContain(k.publicKeyBase64);
  });

  it('tightens a key file readable by others and rejects a corrupt one', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tulle-key-'));
    await loadOrCreateKey(dir);
    const f = path.join(dir, KEY_FILE_NAME);
    await chmod(f, 0o644);
    await loadOrCreateKey(dir);
    expect((await stat(f)).mode & 0o777).toBe(0o600);
    await import('node:fs/promises').then((fs) => fs.writeFile(f, 'not a key\n'));
    await expect(loadOrCreateKey(dir)).rejects.toMatchObject({ code: 'ERR_TULLE_WG_KEY' });
  });
});
