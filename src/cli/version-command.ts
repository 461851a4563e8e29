/**
 * `tulle --version`: the version, the native addon's build, and the offloads this kernel
 * accepts (probed, as root). `tulle run --version` keeps flanneld's form: one line on stderr.
 */
import os from 'node:os';
import { addonPath, loadAddon } from '../dataplane/native.js';
import { kernelOffloadNames, probeOffloads } from '../dataplane/offload-probe.js';
import { tulleVersion } from '../version.js';

export function versionReport(): string {
  const lines = [tulleVersion(), `node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}`];
  let loaded = false;
  try {
    const a = loadAddon();
    lines.push(`native addon: ${addonPath()} (${a.buildInfo ?? 'build unknown'})`);
    loaded = true;
  } catch (e) {
    lines.push(`native addon: cannot load: ${(e as Error).message}`);
  }
  if (!loaded) lines.push('kernel offloads: not probed (no native addon)');
  else if (process.getuid?.() !== 0) lines.push('kernel offloads: not probed (creating a TUN needs root)');
  else {
    try {
      const names = kernelOffloadNames(probeOffloads());
      lines.push(`kernel offloads: ${names.length ? names.join(' ') : 'none'}`);
    } catch (e) {
      lines.push(`kernel offloads: cannot probe: ${(e as Error).message}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function runVersion(out: NodeJS.WritableStream = process.stdout): number {
  out.write(versionReport());
  return 0;
}
