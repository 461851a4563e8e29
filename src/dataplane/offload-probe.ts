/**
 * Which offloads this kernel accepts, found the only sure way: a one-queue data plane on a TUN
 * made for the purpose (and its UDP socket on 127.0.0.1, any port), asked for everything,
 * stopped at once — closing the TUN removes the device. Needs root (CAP_NET_ADMIN).
 */
import { startDataPlane, type OffloadState } from './dataplane.js';

/** The kernel's offloads by name, in the order of native/src/offload.h (userspace GRO is ours, not listed). */
export function kernelOffloadNames(s: OffloadState): string[] {
  const names: [boolean, string][] = [
    [s.vnetHeader, 'vnet-hdr'], [s.csum, 'csum'], [s.tso, 'tso'], [s.uso, 'uso'], [s.gso, 'udp-gso'], [s.gro, 'udp-gro'],
  ];
  return names.filter(([on]) => on).map(([, n]) => n);
}

export function probeOffloads(): OffloadState {
  const dp = startDataPlane({ tunName: `tprobe${process.pid % 1_000_000}`, bindAddress: '127.0.0.1', port: 0, mtu: 1400, queues: 1 });
  try {
    return dp.offload;
  } finally {
    dp.stop();
  }
}
