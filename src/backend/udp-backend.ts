/**
 * Plain mode, flannel's `udp` backend: the raw IP packet is the UDP payload, one port for the
 * whole network (Backend.Port, default 8285), no BackendData in leases. Overhead: outer IP + UDP.
 *
 * flanneld's udp backend is IPv4 only. tulle adds: an IPv6 overlay rides the same tunnel (the
 * inner packet's version nibble tells), and an IPv6-only network (EnableIPv4 false) runs over
 * the IPv6 underlay (PublicIPv6). A dual-stack network runs over the IPv4 underlay, so both
 * ends agree on each other's outer address (the inbound check: the outer source must be the
 * peer's address in that family).
 */
import { startDataPlane } from '../dataplane/dataplane.js';
import { IPV4_ONLY, underlayAddress, type Backend, type Stack } from './backend.js';

export const UDP_OVERHEAD_BYTES = 28; // 20 IPv4 + 8 UDP
export const UDP_OVERHEAD_BYTES_IPV6 = 48; // 40 IPv6 + 8 UDP

export function udpBackend(port: number, start = startDataPlane, stack: Stack = IPV4_ONLY): Backend {
  const family = stack.ipv4 ? 4 : 6;
  const overhead = family === 4 ? UDP_OVERHEAD_BYTES : UDP_OVERHEAD_BYTES_IPV6;
  return {
    type: 'udp',
    ipv6Underlay: family === 6,
    mtuFor: (underlayMtu) => underlayMtu - overhead,
    leaseData: () => ({}),
    peerOf(lease) {
      if (lease.attrs.BackendType !== 'udp') return { ok: false, reason: `backend type "${lease.attrs.BackendType}" is not this network's "udp"` };
      const address = underlayAddress(lease.attrs, family);
      if (address === undefined) {
        return { ok: false, reason: family === 4 ? 'no PublicIP in the lease' : 'no PublicIPv6 in the lease (an IPv6-only network runs over the IPv6 underlay)' };
      }
      return { ok: true, endpoint: { address, port } };
    },
    startDataPlane: (o) => start({ ...o, port, ...(family === 6 ? { bindAddress: '::' } : {}) }),
  };
}
