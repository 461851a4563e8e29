/**
 * CPU time of the whole machine from /proc/stat: busy = every state but idle and iowait, in
 * seconds summed over all CPUs. Unlike a process's time it covers the kernel's own work
 * (softirq, the VXLAN device, the veth) and iperf3, so it gives a CPU-per-GB figure for every
 * row, kernel VXLAN included. Only meaningful on an otherwise quiet machine.
 */
import { readFileSync } from 'node:fs';

const USER_HZ = 100; // sysconf(_SC_CLK_TCK) on Linux

/** Busy CPU seconds from the aggregate "cpu" line of a /proc/stat text. */
export function busySeconds(stat: string): number {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no aggregate "cpu" line');
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq [steal: the hypervisor's, not ours] (guest is in user)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = f;
  return (user + nice + system + irq + softirq) / USER_HZ;
}

export const machineBusySeconds = () => busySeconds(readFileSync('/proc/stat', 'utf8'));

/** CPU seconds (user + system, all threads) a process has used, from /proc/PID/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may hold spaces and parentheses: count fields after its last ')'
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / USER_HZ; // utime, stime: fields 14 and 15
}
