/**
 * iptablesFirewall.observe() (src/host/rules/firewall.ts): every chain it reads comes from one
 * `sh` (each process the daemon starts forks all of its memory), and reads the same as one
 * `iptables -S` per chain; without a shell it falls back to one process per chain. The real
 * tools are exercised in test/integration/host-rules.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { iptablesFirewall, type Exec } from '../../src/host/rules/firewall.js';
import { forwardChain, masqChain } from '../../src/host/rules/rule-set.js';

/** A host's chains as `iptables -S <chain>` prints them; a missing chain fails. */
const CHAINS: Record<string, string> = {
  'nat POSTROUTING': '-P POSTROUTING ACCEPT\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-A POSTROUTING -j KUBE-POSTROUTING\n',
  'nat FLANNEL-POSTRTG': '-N FLANNEL-POSTRTG\n-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN\n',
  'filter FORWARD': '-P FORWARD ACCEPT\n-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n',
  // filter FLANNEL-FWD is missing (someone deleted it)
};

function fakeHost(withShell: boolean) {
  const calls: string[] = [];
  const listing = (table: string, chain: string) => CHAINS[`${table} ${chain}`];
  const exec: Exec = async (cmd, args) => {
    calls.push(cmd);
    if (cmd === 'iptables-save' || cmd === 'iptables-restore') return { stdout: '', stderr: '' };
    if (cmd === 'iptables') {
      const out = listing(args[3]!, args[5]!);
      if (out === undefined) throw new Error(`iptables: chain ${args[5]} does not exist`);
      return { stdout: out, stderr: '' };
    }
    if (cmd === 'sh' && withShell) {
      // run the script's lines as a shell would: `iptables -w 5 -t T -S C 2>/dev/null; echo 'END'`
      let stdout = '';
      for (const line of args[1]!.split('\n')) {
        const m = /^iptables -w 5 -t (\S+) -S (\S+) 2>\/dev\/null; echo '(.*)'$/.exec(line);
        if (!m) throw new Error(`unexpected script line: ${line}`);
        stdout += (listing(m[1]!, m[2]!) ?? '') + `${m[3]}\n`;
      }
      return { stdout, stderr: '' };
    }
    throw new Error(`spawn ${cmd} ENOENT`);
  };
  return { exec, calls };
}

async function observeWith(withShell: boolean) {
  const h = fakeHost(withShell);
  const fw = iptablesFirewall(4, h.exec);
  await fw.apply([masqChain('10.244.0.0/16', '10.244.1.0/24', false), forwardChain('10.244.0.0/16')]);
  h.calls.length = 0;
  return { text: await fw.observe(), calls: h.calls };
}

describe('iptables observe', () => {
  it('reads every chain of a resync from one shell, the same text as one iptables per chain', async () => {
    const batched = await observeWith(true);
    const single = await observeWith(false);
    expect(batched.calls).toEqual(['sh']);
    expect(single.calls).toEqual(['sh', 'iptables', 'iptables', 'iptables', 'iptables']);
    expect(batched.text).toBe(single.text);
    // what it sees: our jumps and our masq chain's rule, and not the missing forward chain's
    expect(batched.text).toContain('FLANNEL-POSTRTG');
    expect(batched.text).toContain('10.244.1.0/24');
    expect(batched.text).not.toContain('KUBE-POSTROUTING');
  });
});
