// onnxruntime-node measurements on the main thread, one single-threaded session at a time:
//  - peak: a large MatMul (the core's practical fp32 peak through this engine), the denominator of every
//    "fraction of peak" in the report;
//  - options: forward-only time per pass of the zoo models under session-option variants, and with the
//    weights baked in as initializers instead of fed as graph inputs (what BAFFLE cannot do per pass, but it
//    prices the cost of feeding weights).
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import type { ModelArtifact } from '../src/core/model/artifact.ts';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { buildModel } from '../src/core/model/index.ts';
import type { BuiltModel } from '../src/core/model/types.ts';
import { processCpuNs } from './clock.ts';
import { median, now, syntheticBatch, ZOO, type ZooEntry } from './lib.ts';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

/** The project's session options (src/node/engine/ort.ts). */
export const PROJECT_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

export function matmulModel(m: number, k: number, n: number): Uint8Array {
  const vi = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: DT.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 'baffle-bench',
    graph: {
      name: 'matmul',
      node: [{ opType: 'MatMul', name: 'mm', input: ['a', 'b'], output: ['c'] }],
      input: [vi('a', [m, k]), vi('b', [k, n])],
      output: [vi('c', [m, n])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface PeakResult {
  m: number;
  k: number;
  n: number;
  /** Median GFLOP/s over the repetitions (2·m·k·n per run). */
  gflops: number;
  /** Best repetition. */
  bestGflops: number;
  msPerRun: number;
  /** GFLOP/s on the thread's on-CPU time (median over repetitions; robust to other jobs). */
  cpuGflops: number;
  /**
   * Best repetition on on-CPU time: the core's peak. Used as the denominator of every "% of core peak" (the
   * median is dragged down when another job shares the core's caches or its SMT sibling).
   */
  bestCpuGflops?: number;
}

/**
 * Wall and process on-CPU ms per call of `run`: after `warmup` calls, `reps` timed batches, each of as many
 * calls as fill about `targetMs`.
 */
async function timeRuns(run: () => Promise<unknown>, warmup: number, targetMs: number, reps: number): Promise<{ ms: number[]; cpu: number[] }> {
  for (let i = 0; i < warmup; i++) await run();
  const t0 = now();
  await run();
  const per = Math.max(0.01, now() - t0);
  const runs = Math.max(1, Math.round(targetMs / per));
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = processCpuNs();
    const s = now();
    for (let i = 0; i < runs; i++) await run();
    ms.push((now() - s) / runs);
    cpu.push((processCpuNs() - c0) / 1e6 / runs);
  }
  return { ms, cpu };
}

/** Single-threaded MatMul m×k×n through onnxruntime-node: median and best GFLOP/s over `reps` timed batches of runs. */
export async function benchPeak(size = 1024, reps = 15, targetMs = 150): Promise<PeakResult> {
  const [m, k, n] = [size, size, size];
  const session = await ort.InferenceSession.create(matmulModel(m, k, n), PROJECT_OPTIONS);
  const a = syntheticBatch([m, k], 1, 2, 1).x;
  const b = syntheticBatch([k, n], 1, 2, 2).x;
  const feeds = { a: new ort.Tensor('float32', a, [m, k]), b: new ort.Tensor('float32', b, [k, n]) };
  const { ms, cpu } = await timeRuns(() => session.run(feeds), 5, targetMs, reps);
  await session.release();
  const flop = 2 * m * k * n;
  const med = median(ms);
  return {
    m,
    k,
    n,
    msPerRun: med,
    gflops: flop / med / 1e6,
    bestGflops: flop / Math.min(...ms) / 1e6,
    cpuGflops: flop / median(cpu) / 1e6,
    bestCpuGflops: flop / Math.min(...cpu) / 1e6,
  };
}

/** The model's ONNX with every parameter moved from the graph inputs to constant initializers holding `weights`. */
export function withInitializers(model: ModelArtifact, weights: Float32Array): Uint8Array {
  const proto = onnx.ModelProto.decode(model.onnx);
  const graph = proto.graph!;
  const params = new Map(model.layout.map((p) => [p.name, p]));
  graph.input = (graph.input ?? []).filter((i) => !params.has(i.name ?? ''));
  graph.initializer = graph.initializer ?? [];
  for (const p of model.layout) {
    const data = weights.slice(p.offset, p.offset + p.size);
    graph.initializer.push(
      onnx.TensorProto.create({ name: p.name, dataType: DT.FLOAT, dims: p.shape, rawData: new Uint8Array(data.buffer) }),
    );
  }
  return onnx.ModelProto.encode(proto).finish();
}

export interface Variant {
  id: string;
  label: string;
  options: ort.InferenceSession.SessionOptions;
  /** Weights as constant initializers (not graph inputs). */
  initializers?: boolean;
}

export const VARIANTS: readonly Variant[] = [
  { id: 'project', label: "project (opt 'all', 1 thread)", options: PROJECT_OPTIONS },
  { id: 'opt-disabled', label: "graphOptimizationLevel 'disabled'", options: { ...PROJECT_OPTIONS, graphOptimizationLevel: 'disabled' } },
  { id: 'opt-basic', label: "graphOptimizationLevel 'basic'", options: { ...PROJECT_OPTIONS, graphOptimizationLevel: 'basic' } },
  { id: 'opt-extended', label: "graphOptimizationLevel 'extended'", options: { ...PROJECT_OPTIONS, graphOptimizationLevel: 'extended' } },
  { id: 'no-mempattern', label: 'enableMemPattern false', options: { ...PROJECT_OPTIONS, enableMemPattern: false } },
  { id: 'no-arena', label: 'enableCpuMemArena false', options: { ...PROJECT_OPTIONS, enableCpuMemArena: false } },
  { id: 'free-dim', label: 'freeDimensionOverrides {B: 32}', options: { ...PROJECT_OPTIONS, freeDimensionOverrides: { B: 32 } } },
  { id: 'threads-2', label: 'intraOpNumThreads 2', options: { ...PROJECT_OPTIONS, intraOpNumThreads: 2 } },
  { id: 'initializers', label: 'weights as initializers (static)', options: PROJECT_OPTIONS, initializers: true },
  {
    id: 'initializers-free-dim',
    label: 'initializers + freeDimensionOverrides',
    options: { ...PROJECT_OPTIONS, freeDimensionOverrides: { B: 32 } },
    initializers: true,
  },
];

export interface VariantResult {
  model: string;
  variant: string;
  /** Median wall ms per forward pass (loss only, same weights every pass). */
  ms: number;
  /** Relative to the project's options for this model (wall): > 1 is faster. */
  speedup: number;
  /** Median process on-CPU ms per pass (contention-robust; counts both threads with intra-op threads 2). */
  cpuMs: number;
  /** Speed-up on on-CPU time (null where the variant uses more than one thread). */
  cpuSpeedup: number | null;
}

async function timeVariant(
  model: BuiltModel,
  weights: Float32Array,
  v: Variant,
  batch: number,
  targetMs: number,
  reps: number,
): Promise<{ wall: number; cpu: number }> {
  const artifact = zooArtifact(model, { weights, trainable: ['all'] });
  const bytes = v.initializers ? withInitializers(artifact, weights) : artifact.onnx;
  const session = await ort.InferenceSession.create(bytes, v.options);
  const b = syntheticBatch(model.config.inputShape, batch, model.config.classes);
  const labels = BigInt64Array.from(Array.from(b.y, (y) => BigInt(y)));
  const { io } = artifact;
  const feeds: Record<string, ort.Tensor> = {
    [io.input]: new ort.Tensor('float32', b.x, [batch, ...model.config.inputShape]),
    [io.labels]: new ort.Tensor('int64', labels, [batch]),
  };
  if (!v.initializers) {
    for (const p of artifact.layout) {
      feeds[p.name] = new ort.Tensor('float32', weights.subarray(p.offset, p.offset + p.size), p.shape);
    }
  }
  const { ms, cpu } = await timeRuns(() => session.run(feeds, [io.loss]), 3, targetMs, reps);
  await session.release();
  return { wall: median(ms), cpu: median(cpu) };
}

/**
 * Forward-only ms per pass of each model under each variant. Variants are interleaved round-robin over
 * `rounds` so slow drifts of a shared machine hit all of them alike; the median over rounds is reported.
 */
export async function benchOrtOptions(
  models: readonly ZooEntry[] = ZOO,
  variants: readonly Variant[] = VARIANTS,
  opts: { batch?: number; targetMs?: number; reps?: number; rounds?: number } = {},
): Promise<VariantResult[]> {
  const batch = opts.batch ?? 32;
  const out: VariantResult[] = [];
  for (const entry of models) {
    const model = buildModel(entry.config);
    const weights = model.initWeights(1);
    const wall = new Map<string, number[]>(variants.map((v) => [v.id, []]));
    const cpu = new Map<string, number[]>(variants.map((v) => [v.id, []]));
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      for (const v of variants) {
        const t = await timeVariant(model, weights, v, batch, opts.targetMs ?? 60, opts.reps ?? 3);
        wall.get(v.id)!.push(t.wall);
        cpu.get(v.id)!.push(t.cpu);
      }
    }
    const base = median(wall.get(variants[0]!.id)!);
    const baseCpu = median(cpu.get(variants[0]!.id)!);
    for (const v of variants) {
      const ms = median(wall.get(v.id)!);
      const cpuMs = median(cpu.get(v.id)!);
      const single = (v.options.intraOpNumThreads ?? 1) === 1;
      out.push({ model: entry.id, variant: v.id, ms, speedup: base / ms, cpuMs, cpuSpeedup: single ? baseCpu / cpuMs : null });
    }
  }
  return out;
}

/** Fixed cost of one session.run() through the Node binding: an Identity on one float, µs per call (median). */
export async function benchRunOverhead(reps = 9, runs = 2000): Promise<number> {
  const vi = (name: string) => ({
    name,
    type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
  });
  const bytes = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 10,
      opsetImport: [{ domain: '', version: 21 }],
      producerName: 'baffle-bench',
      graph: { name: 'id', node: [{ opType: 'Identity', name: 'id', input: ['a'], output: ['b'] }], input: [vi('a')], output: [vi('b')] },
    }),
  ).finish();
  const session = await ort.InferenceSession.create(bytes, PROJECT_OPTIONS);
  const feeds = { a: new ort.Tensor('float32', new Float32Array(1), [1]) };
  for (let i = 0; i < 200; i++) await session.run(feeds);
  const us: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    for (let i = 0; i < runs; i++) await session.run(feeds);
    us.push(((now() - t0) / runs) * 1000);
  }
  await session.release();
  return median(us);
}
