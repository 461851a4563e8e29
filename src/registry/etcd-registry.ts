/**
 * The registry on etcd v3 (the `etcd3` client), flannel's schema:
 *   <prefix>/config             network config JSON
 *   <prefix>/subnets/<name>     one lease each, attached to an etcd lease (TTL)
 * Calls carry a deadline so an unreachable etcd fails fast; retry policy belongs to the lease
 * manager. The watch resumes from its last revision after a reconnect (the client does that);
 * a compacted or canceled watch is reported as `resync`.
 *
 * With several endpoints (an etcd cluster), two things the `etcd3` client (1.1.2) does not do
 * on its own, found by test/faults/etcd-cluster.test.ts:
 *   - A member cut off from its peers still accepts connections: a call there hangs until its
 *     deadline, and a watch there stays "connected" and silently receives nothing. Every call
 *     and the watch stream carry etcd's `hasleader` metadata (what the Go client's
 *     WithRequireLeader sets): such a member then refuses calls at once ("no leader") and
 *     cancels watch streams, which reconnect to another member.
 *   - The client picks a random endpoint for every call and never skips one that just failed
 *     (with its circuit breakers off, as they must be for a single endpoint). A small per-host
 *     policy here skips a host for a few seconds after it failed with a transport-level error,
 *     as long as some other host is not skipped — so one endpoint is never skipped.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { InterceptingCall, type Interceptor, type Metadata } from '@grpc/grpc-js';
import { castGrpcError, Etcd3, EtcdInvalidAuthTokenError, type IKeyValue, type IOptions, type Watcher } from 'etcd3';
import { TulleError } from '../util/errors.js';
import { decodeRangeResponse, type RawRange } from './etcd-range-decode.js';
import type { LeasePage } from './lease-page.js';
import { guardPrefixes } from './overlap-guard.js';
import type { Registry, RegistryEntry, WatchEvent, WatchSink, WriteResult } from './registry.js';

export interface EtcdRegistryOptions {
  /** e.g. ['http://198.18.0.2:2379'] */
  endpoints: string[];
  /** default /coreos.com/network */
  prefix: string;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** etcd authentication (flanneld's --etcd-username/--etcd-password) */
  username?: string | undefined;
  password?: string | undefined;
  /** deadline of one unary call (default 5 s) */
  callTimeoutMs?: number;
  /** keys per page of a listing (default LIST_PAGE; tests make it small to see several pages) */
  listPage?: number;
}

/**
 * keys per range request when listing leases. 5,000 rather than 1,000: a join storm at 10,000
 * leases (two pages per listing instead of ten) cost the joiners and etcd about 12 % less CPU and
 * ended about 15 % sooner, back to back (bench/results/control-plane-storm-2026-12-03c.md); a
 * page of flannel leases (≈ 130 bytes a key on the wire) stays well inside gRPC's 4 MiB message.
 */
export const LIST_PAGE = 5000;
/** the largest etcd response we take: the Go client's default (math.MaxInt32) */
const MAX_RESPONSE_BYTES = 2 ** 31 - 1;
/**
 * Deadline of one page of a listing. Longer than a plain call's: a page that is slow because etcd
 * (or this process) is busy — hundreds of nodes joining at once each list every lease — is worth
 * waiting for; abandoning it makes etcd's work for it wasted and the retry adds more of the same
 * (a 200-node storm at 5,000 leases made 1,131 listings for 87 leases in 60 s, nearly all of them
 * restarts after a page hit the 5 s deadline). An unreachable member still fails fast: a refused
 * connection at once, a member without a leader at once (hasleader).
 */
export const LIST_PAGE_TIMEOUT_MS = 30_000;

/** HTTP/2 receive window of the connection to etcd and of each call on it (see the client options) */
export const FLOW_CONTROL_WINDOW = 4 << 20;

/** The parts of the `etcd3` client's (1.1.2) connection pool a raw range call uses. */
interface RawPool {
  withConnection<T>(service: 'KV', fn: (c: { client: RawKvClient; metadata: Metadata }) => Promise<T>): Promise<T>;
  authenticator: { invalidateMetadata(): void };
}
interface RawKvClient {
  constructor: { service: { Range: { path: string; requestSerialize: (req: object) => Buffer } } };
  makeUnaryRequest(
    path: string, serialize: (req: object) => Buffer, deserialize: (b: Buffer) => Buffer, req: object, metadata: Metadata,
    options: object, cb: (err: Error | null, res?: Buffer) => void,
  ): void;
}

/** etcd3's watch backoff interface: reconnect quickly, at most every 2 s. */
function backoff(ms: number): { duration: number; next(): ReturnType<typeof backoff> } {
  return { duration: ms, next: () => backoff(Math.min(ms * 2, 2000)) };
}

/** etcd's WithRequireLeader: a member without a leader answers "no leader" instead of hanging. */
const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('hasleader', 'true');
      next(metadata, listener);
    },
  });

/** gRPC failures that say "this member, now" rather than "this request": worth another member. */
export function isHostFault(e: unknown): boolean {
  const err = e as { code?: number; message?: string };
  if (err?.code === 14 /* UNAVAILABLE, incl. "no leader" */ || err?.code === 4 /* DEADLINE_EXCEEDED */) return true;
  return /no leader|deadline exceeded|ECONNREFUSED|Connection dropped|leader changed/i.test(err?.message ?? '');
}

class HostSkipped extends Error {
  constructor() {
    super('etcd endpoint failed recently; trying another');
  }
}

/**
 * One policy per endpoint, sharing their state: after a host fault the endpoint is skipped for
 * `cooldownMs`, unless every other endpoint is skipped too. (async: the client's markFailed()
 * relies on execute() returning a rejected promise, not throwing.)
 */
export function hostPolicies(cooldownMs: number, now: () => number = Date.now) {
  const until = new Map<string, number>();
  return (host: string) => ({
    async execute<T>(fn: () => Promise<T>): Promise<T> {
      const t = now();
      if ((until.get(host) ?? 0) > t && [...until.keys()].some((h) => h !== host && (until.get(h) ?? 0) <= t)) throw new HostSkipped();
      try {
        const r = await fn();
        until.set(host, 0);
        return r;
      } catch (e) {
        if (isHostFault(e)) until.set(host, now() + cooldownMs);
        throw e;
      }
    },
    /** registers the host so the others know it exists and is usable */
    register() {
      if (!until.has(host)) until.set(host, 0);
    },
  });
}

// async: see hostPolicies
const passThrough = { execute: async <T>(fn: () => Promise<T>) => fn() };

export function etcdRegistry(o: EtcdRegistryOptions): Registry {
  const prefix = o.prefix.replace(/\/+$/, '');
  const subnets = `${prefix}/subnets/`;
  const callTimeoutMs = o.callTimeoutMs ?? 5000;
  const policies = hostPolicies(10_000);
  const options: IOptions = {
    hosts: o.endpoints,
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? { interceptors: [requireLeader] } : { deadline: Date.now() + callTimeoutMs, interceptors: [requireLeader] }),
    faultHandling: {
      // our lease manager retries; no breaker that could stop every endpoint at once
      global: passThrough as never,
      host: ((h: string) => {
        const p = policies(h);
        p.register();
        return p;
      }) as never,
      watchBackoff: backoff(100) as never,
    },
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.keepalive_permit_without_calls': 1,
      // HTTP/2 receive window (grpc-js's default: 65,535 bytes). A listing page of 5,000 leases is
      // ≈ 650 KB: with the default etcd stops about ten times per page for a window update from
      // our event loop, which in a join storm is busy with other pages. 4 MiB: a page in one go
      // (storm at 10,000 leases ≈ 30 % sooner, ≈ 25 % less CPU here and in etcd, A/B; see
      // bench/results/control-plane-storm-2026-12-03c.md)
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
      // responses as large as flanneld's etcd client takes (clientv3: math.MaxInt32), not grpc-js's
      // 4 MiB: a listing page of LIST_PAGE leases whose values carry fields flanneld ignores
      // can exceed 4 MiB, and flanneld lists it
      'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
    },
  };
  if (o.caFile || o.certFile || o.keyFile) {
    options.credentials = {
      rootCertificate: readFileSync(o.caFile ?? '/etc/ssl/certs/ca-certificates.crt'),
      ...(o.keyFile ? { privateKey: readFileSync(o.keyFile) } : {}),
      ...(o.certFile ? { certChain: readFileSync(o.certFile) } : {}),
    };
  }
  if (o.username) options.auth = { username: o.username, password: o.password ?? '' };
  const client = new Etcd3(options);
  const wrap = <T>(what: string, p: Promise<T>): Promise<T> =>
    p.catch((cause: Error) => {
      throw new TulleError('ERR_TULLE_ETCD', `etcd ${what} (${o.endpoints.join(',')}): ${cause.message}`, { cause });
    });

  const grant = async (ttlSeconds: number) => (await client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID;
  const revoke = (id: string) => client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);

  /** One transaction whose put carries a fresh lease: kept when the transaction succeeds, revoked otherwise. */
  const leasedTxn = async (ttlSeconds: number, txn: (leaseId: string) => Promise<{ succeeded: boolean; header: { revision: string } }>): Promise<WriteResult> => {
    const leaseId = await grant(ttlSeconds);
    try {
      const r = await txn(leaseId);
      if (!r.succeeded) void revoke(leaseId);
      return { ok: r.succeeded, modRevision: Number(r.header.revision), leaseId: r.succeeded ? leaseId : '0' };
    } catch (e) {
      void revoke(leaseId);
      throw e;
    }
  };

  const putIf = (name: string, value: string, ttlSeconds: number, cmp: 'Version' | 'Mod', expect: number): Promise<WriteResult> => {
    const key = subnets + name;
    return leasedTxn(ttlSeconds, (leaseId) => client.if(key, cmp, '==', expect).then(client.put(key).value(value).lease(leaseId)).commit());
  };

  // If(version(key) == 0 && no key that could overlap the subnet was created after `since`) Then
  // Put. Those keys are a few name prefixes (overlap-guard.ts): a compare per prefix range (a
  // range without keys compares as create revision 0). Creates of far-apart subnets no longer
  // refuse each other, so a booting cluster does not serialise on one key space.
  const createGuarded = (name: string, value: string, ttlSeconds: number, since: number, guardAll: boolean): Promise<WriteResult> => {
    const key = subnets + name;
    return leasedTxn(ttlSeconds, (leaseId) =>
      client.kv.txn({
        compare: [
          { key: Buffer.from(key), target: 'Version', result: 'Equal', version: 0 },
          ...guardPrefixes(name, guardAll).map((p) => ({
            key: Buffer.from(subnets + p), range_end: prefixEnd(subnets + p), target: 'Create' as const, result: 'Less' as const, create_revision: since + 1,
          })),
        ],
        success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }],
        failure: [],
      }),
    );
  };

  // a page of a listing, its response read from the wire bytes (etcd-range-decode.ts), through the
  // client's own connections (host policies, auth token): the generic decoding was most of a
  // join storm's CPU
  const pool = (client as unknown as { pool?: RawPool }).pool;
  if (typeof pool?.withConnection !== 'function' || typeof pool.authenticator?.invalidateMetadata !== 'function')
    throw new Error('the etcd3 client is not the version tulle was built with: listings are read through etcd3 1.1.2\'s connection pool (package.json pins it); reinstall with npm ci');
  const rangeRaw = (req: { limit: number; [field: string]: unknown }, deadline: number, retried = false): Promise<RawRange> =>
    pool!.withConnection('KV', ({ client: kv, metadata }) => new Promise<RawRange>((resolve, reject) => {
      const def = kv.constructor.service.Range;
      kv.makeUnaryRequest(def.path, def.requestSerialize, (b: Buffer) => b, req, metadata, { deadline, interceptors: [requireLeader] }, (err: Error | null, buf?: Buffer) => {
        if (err) return reject(castGrpcError(err));
        try {
          resolve(decodeRangeResponse(buf!, subnets.length, req.limit));
        } catch (e) {
          reject(e as Error);
        }
      });
    })).catch((e: Error) => {
      if (!(e instanceof EtcdInvalidAuthTokenError) || retried) throw e;
      pool!.authenticator.invalidateMetadata(); // an expired token: authenticate again, once (as the client does)
      return rangeRaw(req, deadline, true);
    });

  const listPages = async (what: string, filter: { min_mod_revision?: number }) => {
    const pages: LeasePage[] = [];
    let revision: number | undefined;
    let from = Buffer.from(subnets);
    const end = prefixEnd(subnets);
    for (;;) {
      const r = await wrap(what, rangeRaw(
        { key: from, range_end: end, limit: o.listPage ?? LIST_PAGE, ...filter, ...(revision ? { revision } : {}) },
        Date.now() + Math.max(callTimeoutMs, LIST_PAGE_TIMEOUT_MS),
      ));
      revision ??= r.revision;
      pages.push(r.page);
      if (!r.more || !r.lastKey) return { revision, pages };
      from = Buffer.concat([r.lastKey, Buffer.from([0])]);
    }
  };
  const listEntries = async (what: string, filter: { min_mod_revision?: number }) => {
    const { revision, pages } = await listPages(what, filter);
    return { revision, entries: pages.flatMap((p) => p.entries()) };
  };

  return {
    async getNetworkConfig() {
      const r = await wrap('get config', client.get(`${prefix}/config`).exec());
      return r.kvs[0]?.value.toString();
    },
    // in pages of LIST_PAGE keys, all at the revision of the first page: no response (or
    // decode) grows with the cluster; a compaction between pages fails the call (retried)
    listSubnets() {
      return listEntries('list subnets', {});
    },
    // the same pages, left as bytes: an acquisition reads key names and searches values there
    listSubnetPages() {
      return listPages('list subnets', {});
    },
    // the same with etcd's min_mod_revision filter: only what changed since (etcd still scans the
    // range, in Go; what crosses the wire and gets decoded here is the change)
    listSubnetsSince(revision) {
      return listEntries('list subnets since', { min_mod_revision: revision + 1 });
    },
    createSubnet(name, value, ttlSeconds, unchangedSince, guardAll) {
      if (unchangedSince === undefined) return wrap('create subnet', putIf(name, value, ttlSeconds, 'Version', 0));
      return wrap('create subnet', createGuarded(name, value, ttlSeconds, unchangedSince, guardAll ?? false));
    },
    async deleteSubnet(name, expectModRevision) {
      const key = subnets + name;
      const r = await wrap('delete subnet', client.if(key, 'Mod', '==', expectModRevision).then(client.delete().key(key)).commit());
      return r.succeeded;
    },
    async updateSubnet(name, value, ttlSeconds, expect) {
      const r = await wrap('renew subnet', putIf(name, value, ttlSeconds, 'Mod', expect.modRevision));
      if (r.ok && expect.leaseId !== '0') void revoke(expect.leaseId);
      return r;
    },
    watchSubnets(fromRevision, sink) {
      return startWatch(client, subnets, fromRevision, sink);
    },
    async close() {
      client.close();
    },
  };
}

/** the end of etcd's range for every key starting with `prefix` (its last byte + 1) */
function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1]!++;
  return b;
}

function startWatch(client: Etcd3, subnets: string, fromRevision: number, sink: WatchSink) {
  let watcher: Watcher | undefined;
  let canceled = false;
  let up = false;
  const toEvent = (type: 'put' | 'delete', kv: IKeyValue): WatchEvent =>
    type === 'put'
      ? { type, name: kv.key.toString().slice(subnets.length), value: kv.value.toString(), modRevision: Number(kv.mod_revision), leaseId: kv.lease }
      : { type, name: kv.key.toString().slice(subnets.length), modRevision: Number(kv.mod_revision) };
  const w = client.watch().prefix(subnets).startRevision(String(fromRevision)).watcher();
  watcher = w;
  // Resume exactly after what we were given. (The client moves its own resume point to the
  // revision of the create response, which would skip history not yet delivered if the stream
  // broke right after a (re)connect.)
  let next = fromRevision;
  // (typed as IWatchRequest, but the client passes the create request it is about to send)
  (w as unknown as EventEmitter).on('connecting', (req: { start_revision?: string | number }) => {
    req.start_revision = String(next);
  });
  w.on('connected', () => {
    if (!up) sink.connection((up = true));
  });
  w.on('disconnected', (err) => {
    if (up) sink.connection((up = false), err);
  });
  w.on('data', (res) => {
    if (canceled) return;
    const evs = res.events.map((e) => toEvent(e.type === 'Put' ? 'put' : 'delete', e.kv));
    // Catch-up after a reconnect can come in several responses that all carry the *current*
    // revision in their header: resume after the last event seen. A response without events
    // (progress notification) is only sent to a watch that is up to date.
    next = Math.max(next, evs.length ? evs[evs.length - 1]!.modRevision + 1 : Number(res.header.revision) + 1);
    // the client rewrites kv.key to strip its own namespace; ours is empty, so keys are full
    if (evs.length) sink.events(evs, Number(res.header.revision));
  });
  w.on('error', (err) => {
    if (canceled) return;
    canceled = true;
    watcher = undefined;
    // etcd 3.4 cancels a watch behind the compaction horizon without a reason text
    sink.resync(`watch canceled by etcd (${err.message.replace(/^Watcher canceled: ?/, '') || 'history compacted'})`);
  });
  return {
    async cancel() {
      canceled = true;
      await watcher?.cancel().catch(() => undefined);
    },
  };
}
