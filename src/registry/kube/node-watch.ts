/**
 * The Node watch behind Registry.watchSubnets, as a reflector runs it: watch from the listed
 * resourceVersion with bookmarks, resume from the last resourceVersion seen (event or bookmark)
 * when the stream ends or breaks, and report `410 Gone` (an ERROR event with a Status of code
 * 410, or HTTP 410) as `resync`: the lease manager then re-lists and diffs. Node events become
 * lease events only when a node's lease changes (flanneld's handleUpdateLeaseEvent), so kubelet's
 * status updates cost nothing downstream.
 *
 *   ADDED/MODIFIED  node → nodeEntry → put (new or changed lease), delete (no longer a lease)
 *   DELETED         delete of the node's last lease
 *   BOOKMARK        resume point only
 *   ERROR 410       resync;  other ERROR: logged, the stream is restarted
 */
import type { Logger } from 'pino';
import type { WatchEvent, WatchSink } from '../registry.js';
import type { AnnotationNames } from './annotations.js';
import type { KubeApi } from './kube-api.js';
import { nodeEntry, type Families, type KubeNode } from './node-lease.js';

/** what the watch last knew of a node's lease: node name → lease key name and value */
export type KnownLeases = Map<string, { name: string; value: string }>;

export interface NodeWatchOptions {
  api: KubeApi;
  names: AnnotationNames;
  /** the network's families: which subnets and annotations make a node's lease */
  families: Families;
  log: Logger;
  /** watch from after this resourceVersion */
  resourceVersion: string;
  /** the leases at that resourceVersion (from the listing); the watch keeps its own copy */
  known: KnownLeases;
  sink: WatchSink;
  onBad(node: KubeNode, problem: string): void;
  random?: () => number;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export function rvNumber(rv: string | undefined): number {
  const n = Number(rv);
  return Number.isSafeInteger(n) ? n : 0;
}

/** One node event → lease events, updating `known`. Pure but for `known`. */
export function nodeEvents(
  phase: 'ADDED' | 'MODIFIED' | 'DELETED', node: KubeNode, known: KnownLeases, names: AnnotationNames, onBad: (n: KubeNode, p: string) => void, families?: Families,
): WatchEvent[] {
  const nodeName = node.metadata?.name ?? '';
  const rev = rvNumber(node.metadata?.resourceVersion);
  const prev = known.get(nodeName);
  const e = phase === 'DELETED' ? ({ kind: 'none' } as const) : nodeEntry(node, names, families);
  if (e.kind === 'bad') onBad(node, e.problem);
  const next = e.kind === 'lease' ? { name: e.name, value: e.value } : undefined;
  const out: WatchEvent[] = [];
  if (prev && (!next || prev.name !== next.name)) {
    known.delete(nodeName);
    // two nodes given the same pod CIDR (a broken cluster): the subnet stays while one has it
    if (![...known.values()].some((k) => k.name === prev.name)) out.push({ type: 'delete', name: prev.name, modRevision: rev });
  }
  if (next && (!prev || prev.name !== next.name || prev.value !== next.value)) {
    known.set(nodeName, next);
    out.push({ type: 'put', name: next.name, value: next.value, modRevision: rev, leaseId: '0' });
  }
  return out;
}

export function startNodeWatch(o: NodeWatchOptions): { cancel(): Promise<void> } {
  const known: KnownLeases = new Map(o.known);
  const random = o.random ?? Math.random;
  let rv = o.resourceVersion;
  let stopped = false;
  let up = false;
  let failures = 0;
  let stream: { abort(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;

  const connect = async () => {
    timer = undefined;
    if (stopped) return;
    let ended = false;
    let gone: string | undefined;
    const done = (err: (Error & { statusCode?: number }) | null) => {
      if (ended) return;
      ended = true;
      stream = undefined;
      if (stopped) return;
      if (gone || err?.statusCode === 410) {
        stopped = true;
        o.sink.resync(gone ?? `resourceVersion ${rv} is too old (HTTP 410 Gone)`);
        return;
      }
      if (err) {
        failures++;
        if (up) o.sink.connection((up = false), err);
        else o.log.debug({ err: err.message }, 'node watch: cannot connect yet');
      } else {
        failures = 0; // the server ended the stream (timeoutSeconds): resume at once
      }
      const wait = failures ? Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures - 1, 5)) : 0;
      timer = setTimeout(() => void connect(), wait);
    };
    const onEvent = (phase: string, obj: any) => {
      if (stopped || ended) return;
      if (phase === 'ERROR') {
        const status = obj as { code?: number; message?: string; reason?: string };
        if (status?.code === 410) gone = `watch expired: ${status.message ?? status.reason ?? '410 Gone'}`;
        else o.log.warn({ status }, 'node watch: the API server sent an error; restarting the watch');
        const s = stream;
        done(null); // (first: the abort below ends the stream with an error of its own)
        s?.abort();
        return;
      }
      const node = obj as KubeNode;
      if (node?.metadata?.resourceVersion) rv = node.metadata.resourceVersion;
      if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') return; // BOOKMARK: the resume point only
      const evs = nodeEvents(phase, node, known, o.names, o.onBad, o.families);
      if (evs.length) o.sink.events(evs, rvNumber(rv));
    };
    try {
      // as client-go's reflector: the server ends each watch after 5–10 minutes, and we resume
      const timeoutSeconds = 300 + Math.floor(random() * 300);
      const s = await o.api.watchNodes(rv, timeoutSeconds, onEvent, done);
      if (ended || stopped) {
        s.abort();
        return;
      }
      stream = s;
      failures = 0;
      if (!up) o.sink.connection((up = true));
    } catch (e) {
      done(e as Error);
    }
  };
  void connect();
  return {
    async cancel() {
      stopped = true;
      clearTimeout(timer);
      stream?.abort();
    },
  };
}
