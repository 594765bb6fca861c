// Section 'nchwc': the engine's two graphs side by side (src/node/engine/ort.ts, src/node/engine/optimized.ts).
//  - plain: the project's graph, weights fed as inputs → onnxruntime keeps im2col Conv + separate activations;
//  - optimised, without the GroupNorm fold: onnxruntime's NCHWc graph with the weights fed back in as
//    engine-layout inputs (gathered per pass), reorders around every GroupNorm;
//  - optimised without explicit padding: 5×5 convolutions pad inside the kernel (the engine before that pass);
//  - optimised, one run per batch: the batch not split into L2-sized slices (the engine before that change);
//  - optimised (the engine's default): GroupNorm + activation in the blocked layout, wide-kernel inputs padded,
//    large batches run in slices.
// One client pass = perturbInto + session.loss at batch 32, on one core (process on-CPU time, main thread),
// interleaved round-robin; plus the agreement of losses and forward-difference scalars with the plain graph.
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { OrtSession } from '../src/node/engine/ort.ts';
import { optimizeWithWeightInputs } from '../src/node/engine/optimized.ts';
import { buildModel } from '../src/core/model/index.ts';
import { perturbInto } from '../src/core/rng/directions.ts';
import { processCpuNs } from './clock.ts';
import { median, syntheticBatch, type ZooEntry } from './lib.ts';

export interface NchwcResult {
  model: string;
  label: string;
  /** Engine-layout weight tensors gathered per pass, and their elements. */
  tensors: number;
  gathered: number;
  /** GroupNorm chains folded into the blocked layout; the CPU's NCHWc block size. */
  folded: number;
  /** Convolutions run unpadded on an explicitly padded input. */
  /** Absent in records from before the explicit padding. */
  padded?: number;
  /** Contrib ops of the optimised graph, e.g. "com.microsoft.nchwc:Conv×10". */
  ops: string;
  /** Largest |ΔL| / |L| against the plain graph over a few perturbed passes. */
  maxRelLossDiff: number;
  /** Largest |Δa_k| / |a_k| of the forward-difference scalars (σ = 1e-4). */
  maxRelScalarDiff: number;
  /** On-CPU ms per client pass (perturbInto + forward): plain, optimised without the fold, without explicit padding, optimised. */
  plainMs: number;
  noFoldMs: number;
  /** Absent in records from before the explicit padding. */
  noPadMs?: number;
  /** The whole batch in one run (absent in older records), and the runs the default takes. */
  wholeMs?: number;
  runs?: number;
  optimizedMs: number;
  /** Of optimizedMs: the gather. */
  gatherMs: number;
  /** plainMs / optimizedMs. */
  speedup: number;
  /** Session creation ms (one-off): plain, optimised. */
  createPlainMs: number;
  createOptimizedMs: number;
}

export async function benchNchwc(entry: ZooEntry, opts: { rounds?: number; passes?: number } = {}): Promise<NchwcResult> {
  const built = buildModel(entry.config);
  const model = zooArtifact(built, { weights: built.initWeights(1), trainable: ['all'] });
  const batch = syntheticBatch(entry.config.inputShape, 32, entry.config.classes);
  let t = performance.now();
  const plain = await OrtSession.create(model, { graph: 'plain' });
  const createPlainMs = performance.now() - t;
  t = performance.now();
  const fast = await OrtSession.create(model, { graph: 'optimized', timing: true });
  const createOptimizedMs = performance.now() - t;
  const noFold = await OrtSession.create(model, {
    graph: 'optimized',
    optimizer: (m, o) => optimizeWithWeightInputs(m, o, { foldReorders: false }),
  });
  const noPad = await OrtSession.create(model, {
    graph: 'optimized',
    optimizer: (m, o) => optimizeWithWeightInputs(m, o, { padExplicitly: false }),
  });
  const whole = await OrtSession.create(model, { graph: 'optimized', examplesPerRun: batch.count });
  const g = await optimizeWithWeightInputs(model, { intraOpNumThreads: 1 });
  for (const s of [plain, fast, noFold, noPad, whole]) s.setBatch(batch);
  const w = built.initWeights(1);
  const scratch = new Float32Array(w.length);
  const sigma = 1e-4;
  try {
    let maxRelLossDiff = 0;
    let maxRelScalarDiff = 0;
    const base0 = await plain.loss(w);
    const base1 = await fast.loss(w);
    for (let k = 0; k < 5; k++) {
      perturbInto(scratch, w, sigma, 0xc0de, k);
      const l0 = await plain.loss(scratch);
      const l1 = await fast.loss(scratch);
      maxRelLossDiff = Math.max(maxRelLossDiff, Math.abs(l1 - l0) / Math.abs(l0));
      const a0 = (l0 - base0) / sigma;
      const a1 = (l1 - base1) / sigma;
      maxRelScalarDiff = Math.max(maxRelScalarDiff, Math.abs(a1 - a0) / Math.max(1e-12, Math.abs(a0)));
    }
    const passes = opts.passes ?? 12;
    const times = { plain: [] as number[], noFold: [] as number[], noPad: [] as number[], whole: [] as number[], fast: [] as number[], gather: [] as number[] };
    let k = 100;
    for (let r = 0; r < (opts.rounds ?? 9); r++) {
      for (const [key, s] of [['plain', plain], ['noFold', noFold], ['noPad', noPad], ['whole', whole], ['fast', fast]] as const) {
        const g0 = fast.timing.gatherMs;
        const c0 = processCpuNs();
        for (let i = 0; i < passes; i++) {
          perturbInto(scratch, w, sigma, 0xc0de, k++);
          await s.loss(scratch);
        }
        times[key].push((processCpuNs() - c0) / passes / 1e6);
        if (key === 'fast') times.gather.push((fast.timing.gatherMs - g0) / passes);
      }
    }
    const plainMs = median(times.plain);
    const optimizedMs = median(times.fast);
    return {
      model: entry.id,
      label: entry.label,
      tensors: g.feeds.filter((f) => f.kind === 'gather').length,
      gathered: fast.gatheredPerPass,
      folded: g.foldedReorders,
      padded: g.paddedExplicitly,
      ops: Object.entries(fast.contribOps)
        .map(([op, n]) => `${op.replace('com.microsoft.nchwc:', 'nchwc:')}×${n}`)
        .join(', '),
      maxRelLossDiff,
      maxRelScalarDiff,
      plainMs,
      noFoldMs: median(times.noFold),
      noPadMs: median(times.noPad),
      wholeMs: median(times.whole),
      runs: fast.runsPerBatch,
      optimizedMs,
      gatherMs: median(times.gather),
      speedup: plainMs / optimizedMs,
      createPlainMs,
      createOptimizedMs,
    };
  } finally {
    await plain.dispose();
    await fast.dispose();
    await noFold.dispose();
    await noPad.dispose();
    await whole.dispose();
  }
}
