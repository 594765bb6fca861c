// CPU clocks that are robust to other jobs on a shared machine (wall clock is not).
//  - threadClock(): /proc/thread-self/schedstat (Linux): nanoseconds this thread spent on a CPU and waiting in
//    the run queue. With onnxruntime single-threaded, a forward pass runs on the calling JS thread, so on-CPU
//    time is the work itself, and run-queue time says how much the machine held us back. The kernel updates
//    these counters at ticks and context switches only (steps of ~1–4 ms): use for intervals of 100 ms+.
//  - processCpuNs(): getrusage via process.cpuUsage(), microsecond resolution but all threads of the process:
//    use on the main thread when no worker is busy.
import { readFileSync } from 'node:fs';

/** On-CPU nanoseconds of the whole process (all threads), microsecond resolution. */
export function processCpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export interface ThreadClock {
  /** On-CPU nanoseconds. */
  cpuNs: number;
  /** Nanoseconds runnable but waiting for a CPU. */
  waitNs: number;
}

let available: boolean | null = null;

export function threadClock(): ThreadClock {
  if (available !== false) {
    try {
      const [cpu, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
      available = true;
      return { cpuNs: Number(cpu), waitNs: Number(wait) };
    } catch {
      available = false;
    }
  }
  // Fallback: process CPU time (all threads), no wait figure.
  const u = process.cpuUsage();
  return { cpuNs: (u.user + u.system) * 1000, waitNs: 0 };
}

export function clockDiff(a: ThreadClock, b: ThreadClock): ThreadClock {
  return { cpuNs: b.cpuNs - a.cpuNs, waitNs: b.waitNs - a.waitNs };
}
