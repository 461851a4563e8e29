/**
 * The generated parts of docs/flannel-compat.md: flanneld's flags and environment (from the flag
 * table), and its network config fields (from the table below, checked against the parser's
 * field lists by test/unit/flannel-compat-doc.test.ts). Regenerate with `npm run docs:compat`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { BACKEND_FIELDS, CONFIG_FIELDS } from './network-config.js';
import { FLAG_TABLE, flanneldEnvName, tulleEnvName, type Treatment } from './flag-table.js';

export interface ConfigRow {
  field: string;
  treatment: Treatment | 'n/a';
  note: string;
  tests: readonly string[];
}

const T_NC = 'test/unit/network-config.test.ts';
const T_ERR = 'test/integration/daemon-errors.test.ts';
const T_WG = 'test/integration/cluster-wireguard.test.ts';
const T_DS = 'test/unit/dual-stack-allocation.test.ts';
const T_INT = 'test/integration/dual-stack.test.ts';

export const CONFIG_ROWS: readonly ConfigRow[] = [
  { field: '(field names)', treatment: 'same', note: "matched without regard to case, as Go's encoding/json; a later key wins", tests: [T_NC, T_ERR] },
  { field: '(unknown fields)', treatment: 'same', note: 'ignored, as flanneld; tulle also logs each name once per config change', tests: [T_NC, T_ERR] },
  { field: 'Network', treatment: 'same', note: 'required; host bits are masked (logged); 0.0.0.0/0 and prefixes longer than /28 are refused', tests: [T_NC, T_ERR] },
  { field: 'SubnetLen', treatment: 'same', note: '0 or absent: 24 when Network is /22 or shorter, else prefix + 2; at most 30; at least prefix + 2', tests: [T_NC] },
  { field: 'SubnetMin', treatment: 'differs', note: 'default: second subnet; inside Network, on a SubnetLen boundary; "0.0.0.0" is unset. tulle also refuses SubnetMin > SubnetMax (flanneld fails later: out of subnets)', tests: [T_NC] },
  { field: 'SubnetMax', treatment: 'same', note: 'default: last subnet; same checks as SubnetMin', tests: [T_NC] },
  { field: 'EnableIPv4', treatment: 'same', note: 'default true; false with EnableIPv6 is an IPv6-only network (Network not needed, not used); both false is refused (flanneld: none defined stack)', tests: [T_NC, T_DS] },
  { field: 'EnableIPv6', treatment: 'same', note: 'dual stack (or IPv6 only): an IPv6 subnet per lease, FLANNEL_IPV6_* in subnet.env, IPv6 address and route on the TUN, ip6tables / nft ip6 rules; with --kube-subnet-mgr the IPv6 entry of spec.podCIDRs and the public-ipv6 / backend-v6-data annotations', tests: [T_NC, T_DS, T_INT, 'test/integration/kube-subnet-mgr.test.ts'] },
  { field: 'IPv6Network', treatment: 'same', note: 'required with EnableIPv6; host bits masked (logged); ::/0 and prefixes longer than /124 refused', tests: [T_NC] },
  { field: 'IPv6SubnetLen', treatment: 'same', note: '0 or absent: 64 when IPv6Network is /62 or shorter, else prefix + 2; at most 126; at least prefix + 2', tests: [T_NC] },
  { field: 'IPv6SubnetMin', treatment: 'differs', note: 'default: second subnet; inside IPv6Network, on an IPv6SubnetLen boundary; null and "::" are unset. tulle also refuses IPv6SubnetMin > IPv6SubnetMax', tests: [T_NC] },
  { field: 'IPv6SubnetMax', treatment: 'same', note: 'default: last subnet; same checks as IPv6SubnetMin', tests: [T_NC] },
  { field: 'EnableNFTables', treatment: 'same', note: "parsed into config.enableNFTables; rules: see the rules section", tests: [T_NC] },
  { field: 'Backend', treatment: 'same', note: 'absent: {"Type": "udp"}; present without Type (or null): refused, as flanneld ("unknown backend type")', tests: [T_NC] },
  { field: 'Backend.Type', treatment: 'differs', note: 'lower-cased as flanneld; "udp" and "wireguard" run; flanneld\'s other backends (vxlan, host-gw, ipip, ipsec, …) are refused naming the field', tests: [T_NC, T_ERR] },
  { field: 'Backend.Port (udp)', treatment: 'same', note: 'default 8285; 1..65535 (flanneld takes 0 and then cannot be reached)', tests: [T_NC] },
  { field: 'Backend.ListenPort (wireguard)', treatment: 'same', note: 'default 51820; written into the lease as BackendData.Port', tests: [T_NC, T_WG] },
  { field: 'Backend.ListenPortV6 (wireguard)', treatment: 'differs', note: 'default 51821; the IPv6 tunnel\'s port in Mode "separate" (flanneld\'s flannel-wg-v6), written as BackendV6Data.Port in every Mode. In an IPv6-only network tulle\'s one socket listens here in every Mode (flanneld: ListenPort outside "separate")', tests: [T_NC, 'test/wireguard/wireguard-backend.test.ts', T_INT, 'test/wireguard/interop-separate.test.ts'] },
  { field: 'Backend.PSK (wireguard)', treatment: 'same', note: 'base64 of 32 bytes; "" means none', tests: [T_NC] },
  { field: 'Backend.MTU (wireguard)', treatment: 'differs', note: 'the underlay MTU, as flanneld: FLANNEL_MTU and the TUN MTU are MTU − 80; tulle needs MTU − 80 ≥ 576', tests: [T_NC, 'test/unit/node.test.ts'] },
  { field: 'Backend.PersistentKeepaliveInterval (wireguard)', treatment: 'same', note: 'seconds, 0..65535', tests: [T_NC] },
  { field: 'Backend.Mode (wireguard)', treatment: 'differs', note: '"separate" (default): two tunnels with one key, IPv4 on ListenPort and IPv6 on ListenPortV6, as flanneld\'s two devices; "ipv4", "ipv6", "auto" (flanneld\'s selectMode): one tunnel per peer. With one tunnel over IPv6 tulle dials the peer\'s BackendData.Port, where its one device listens (flanneld: BackendV6Data.Port). See docs/dual-stack.md', tests: [T_NC, 'test/wireguard/wireguard-backend.test.ts', 'test/unit/wireguard-auto-mode.test.ts', T_INT, 'test/wireguard/interop-separate.test.ts'] },
];

const treatmentText: Record<ConfigRow['treatment'], string> = {
  same: 'supported', differs: 'differs', ignored: 'accepted, ignored', refused: 'refused (exit 2)', tulle: 'tulle only', 'n/a': 'not applicable',
};

const cell = (s: string) => s.replace(/\|/g, '\\|');
const tests = (t: readonly string[] | undefined) => (t ?? []).map((x) => `\`${x.replace(/^test\//, '')}\``).join(', ');

export function renderFlagTable(): string {
  const head = '| flag | environment | default | tulle | notes | tests |\n|---|---|---|---|---|---|';
  const rows = FLAG_TABLE.map((r) => {
    const env = r.argvOnly ? '(flag only, as flanneld)' : `\`${flanneldEnvName(r.name)}\`, \`${tulleEnvName(r.name)}\``;
    const dflt = r.default === undefined ? '' : `\`${r.default}\``;
    const note = [r.repeatable ? 'repeatable' : '', r.note ?? ''].filter(Boolean).join('; ');
    return `| \`--${r.name}\` | ${env} | ${dflt} | ${treatmentText[r.treatment]} | ${cell(note || r.help)} | ${tests(r.tests)} |`;
  });
  return [head, ...rows].join('\n');
}

export function renderConfigTable(): string {
  const head = '| field | tulle | notes | tests |\n|---|---|---|---|';
  return [head, ...CONFIG_ROWS.map((r) => `| \`${r.field}\` | ${treatmentText[r.treatment]} | ${cell(r.note)} | ${tests(r.tests)} |`)].join('\n');
}

/** The config fields the parser knows, as CONFIG_ROWS names them. */
export function parserFieldNames(): string[] {
  return [
    ...CONFIG_FIELDS,
    ...Object.entries(BACKEND_FIELDS).flatMap(([type, fs]) => fs.filter((f) => f !== 'Type').map((f) => (f === 'Port' && type === 'udp' ? 'Backend.Port (udp)' : `Backend.${f} (${type})`))),
    'Backend.Type',
  ];
}

const SECTIONS: Record<string, () => string> = { flags: renderFlagTable, config: renderConfigTable };

/** Replaces each `<!-- generated:NAME -->…<!-- /generated:NAME -->` block of the doc. */
export function renderCompatDoc(doc: string): string {
  let out = doc;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const re = new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(<!-- /generated:${name} -->)`);
    if (!re.test(out)) throw new Error(`docs/flannel-compat.md has no generated:${name} block`);
    out = out.replace(re, (_m, a: string, b: string) => `${a}${render()}\n${b}`);
  }
  return out;
}

export function writeCompatDoc(file = 'docs/flannel-compat.md'): void {
  writeFileSync(file, renderCompatDoc(readFileSync(file, 'utf8')));
}
