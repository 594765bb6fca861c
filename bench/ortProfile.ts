// onnxruntime's own per-node profile of a single-threaded session: the kernel time of every node run.
import * as ort from 'onnxruntime-node';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface KernelEvent {
  /** The node's name in the graph. */
  node: string;
  op: string;
  /** Kernel time, µs. */
  us: number;
}

/**
 * Creates a profiling session for `model` (one thread, `graphOptimizationLevel` as given), lets `body` run it,
 * and returns the kernel events in run order.
 */
export async function profileKernels(
  model: Uint8Array,
  graphOptimizationLevel: 'disabled' | 'all',
  body: (session: ort.InferenceSession) => Promise<void>,
): Promise<KernelEvent[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baffle-profile-'));
  try {
    const session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel,
      logSeverityLevel: 3,
      enableProfiling: true,
      profileFilePrefix: path.join(dir, 'profile'),
    });
    await body(session);
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
    return events
      .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'))
      .map((e) => ({ node: e.name.slice(0, -'_kernel_time'.length), op: e.args?.op_name ?? '?', us: e.dur }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
