/**
 * One exact TCP transfer between bed namespaces (test/bed/tcp-transfer.mjs on both ends),
 * bounded by `timeout`: the receiver's SHA-256 against the sender's, and the goodput the
 * receiver saw (payload bits over the time from accept to FIN).
 */
import path from 'node:path';
import type { ExecError } from '../../src/host/exec.js';
import type { Bed, BedNode } from './bed.js';
import { REPO_ROOT } from './daemons.js';
import { waitForOutput } from './proc.js';

export interface TransferResult {
  /** both ends finished and the digests match and the byte count is the one sent */
  ok: boolean;
  bytes: number;
  sentSha: string | undefined;
  receivedSha: string | undefined;
  ms: number;
  mbps: number;
  error?: string;
}

const SCRIPT = path.join(REPO_ROOT, 'test/bed/tcp-transfer.mjs');
let nextPort = 7100;

export async function tcpTransfer(bed: Bed, from: BedNode, to: BedNode, toIp: string, bytes: number, timeoutS: number, seed = 'tulle'): Promise<TransferResult> {
  const port = nextPort++;
  if (nextPort > 7999) nextPort = 7100;
  const recv = bed.spawn(to.ns, 'timeout', [String(timeoutS + 5), process.execPath, SCRIPT, 'recv', toIp, String(port)]);
  let out = '';
  recv.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  recv.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const recvDone = new Promise<void>((r) => recv.once('exit', () => r()));
  const fail = (error: string): TransferResult => ({ ok: false, bytes: 0, sentSha: undefined, receivedSha: undefined, ms: 0, mbps: 0, error });
  try {
    await waitForOutput(recv, /listening/, 15_000);
  } catch (e) {
    recv.kill('SIGKILL');
    return fail(`receiver: ${(e as Error).message}`);
  }
  let sent: { bytes: number; sha256: string } | undefined;
  let sendErr: string | undefined;
  try {
    const r = await bed.exec(from.ns, 'timeout', [String(timeoutS), process.execPath, SCRIPT, 'send', toIp, String(port), seed, String(bytes)], (timeoutS + 10) * 1000);
    sent = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytes: number; sha256: string };
  } catch (e) {
    sendErr = (e as ExecError).exitCode === 124 ? `timed out after ${timeoutS} s` : (e as Error).message.slice(0, 300);
  }
  if (sendErr) recv.kill('SIGKILL');
  await recvDone;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) return fail(sendErr ?? `receiver gave no result: ${err.slice(0, 300)}`);
  const got = JSON.parse(line) as { bytes: number; sha256: string; ms: number };
  const ok = !sendErr && sent !== undefined && got.sha256 === sent.sha256 && got.bytes === bytes;
  return {
    ok, bytes: got.bytes, sentSha: sent?.sha256, receivedSha: got.sha256, ms: got.ms, mbps: (got.bytes * 8) / (got.ms * 1000),
    ...(sendErr ? { error: sendErr } : ok ? {} : { error: 'digest or length differs' }),
  };
}
