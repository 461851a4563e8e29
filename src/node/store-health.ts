/**
 * The state of the store that holds the leases, in /healthz and `tulle status`, under the
 * store's own name (docs/control-plane.md):
 *
 *   etcd mode            "etcd":    {"etcd": "connected", "since": …, "lastError": …}
 *   --kube-subnet-mgr    "kubeApi": {"kubeApi": "connected", "since": …, "lastError": …}
 *
 * The states are the lease manager's: connecting, connected, disconnected.
 */
import type { EtcdState } from '../lease/lease-manager.js';
import type { StoreKey } from '../registry/registry.js';

export type StoreHealth<K extends StoreKey> = { [k in K]: EtcdState } & { since: number; lastError: string | undefined };

export interface StoreHealthFields {
  etcd?: StoreHealth<'etcd'>;
  kubeApi?: StoreHealth<'kubeApi'>;
}

/** The state under its store's key (exactly one of the two). */
export function storeHealth(key: StoreKey, s: { etcd: EtcdState; since: number; lastError: string | undefined }): StoreHealthFields {
  return key === 'kubeApi' ? { kubeApi: { kubeApi: s.etcd, since: s.since, lastError: s.lastError } } : { etcd: { etcd: s.etcd, since: s.since, lastError: s.lastError } };
}

/** The store's state and its name, whichever key it is under. */
export function storeStateOf(n: StoreHealthFields): { key: StoreKey; state: EtcdState; since: number; lastError: string | undefined } | undefined {
  if (n.kubeApi) return { key: 'kubeApi', state: n.kubeApi.kubeApi, since: n.kubeApi.since, lastError: n.kubeApi.lastError };
  if (n.etcd) return { key: 'etcd', state: n.etcd.etcd, since: n.etcd.since, lastError: n.etcd.lastError };
  return undefined;
}
