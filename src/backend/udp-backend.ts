/**
 * Plain mode, flannel's `udp` backend: the raw IP packet is the UDP payload, one port for the
 * whole network (Backend.Port, default 8285), no BackendData in leases. Overhead: IPv4 + UDP.
 */
import { startDataPlane } from '../dataplane/dataplane.js';
import type { Backend } from './backend.js';

export const UDP_OVERHEAD_BYTES = 28; // 20 IPv4 + 8 UDP

export function udpBackend(port: number, start = startDataPlane): Backend {
  return {
    type: 'udp',
    mtuFor: (underlayMtu) => underlayMtu - UDP_OVERHEAD_BYTES,
    leaseData: () => undefined,
    peerOf(lease) {
      if (lease.attrs.BackendType !== 'udp') return { ok: false, reason: `backend type "${lease.attrs.BackendType}" is not this network's "udp"` };
      return { ok: true, endpoint: { address: lease.attrs.PublicIP, port } };
    },
    startDataPlane: (o) => start({ ...o, port }),
  };
}
