// onnxruntime-node behind ForwardSession: one single-threaded InferenceSession, weights fed as graph inputs.
//
// Two graphs (option `graph`, or the environment variable BAFFLE_ORT_GRAPH):
//  - 'optimized' (the default where it works): onnxruntime's fully optimised graph — blocked NCHWc
//    convolutions with fused activations — with the weights fed back in as engine-layout inputs
//    (optimized.ts). Each pass gathers the flat weights into those tensors (a plain range is a view).
//  - 'plain': the model artifact's training graph as it is, weights fed as views on the caller's buffer.
// 'auto' tries 'optimized' and falls back to 'plain' (reason in `fallbackReason`) when onnxruntime's rewrite
// is not a pure relayout of the weights or the probe logits disagree; 'optimized' throws instead.
// Both graphs give the same losses up to float32 rounding (the kernels differ); within one graph the results
// are deterministic, so a simulation is reproducible whatever the worker count.
// A batch whose activations outgrow the core's L2 runs in slices (examplesPerRun); the loss is the slices'
// means weighted by their examples, the logits their concatenation.
// The hot path allocates nothing of its own: feeds are built once per weight buffer (views) or filled in
// place (gathered tensors).
import * as ort from 'onnxruntime-node';
import { exampleSize, type ClientModel, type GraphIo, type ParamEntry } from '../../core/model/artifact.ts';
import type { Batch, ForwardSession } from '../../core/engine/types.ts';
import { gatherInto, optimizeWithWeightInputs, OptimizeError, type OptimizedGraph, type WeightFeed } from './optimized.ts';

export type OrtGraph = 'auto' | 'optimized' | 'plain';

export interface OrtOptions {
  /** Intra-op threads (1: parallelism comes from worker_threads, one session per core). */
  threads?: number;
  /** Which graph to run (default: BAFFLE_ORT_GRAPH, else 'auto'). */
  graph?: OrtGraph;
  /** Accumulate the time spent gathering weights and in run() (see `timing`); for benchmarks. */
  timing?: boolean;
  /** Builds the optimised graph (default optimizeWithWeightInputs; replaced in tests of the fallback). */
  optimizer?: typeof optimizeWithWeightInputs;
  /** Examples per session.run(): a batch is run in slices of at most this many (default: examplesPerRun(model)). */
  examplesPerRun?: number;
}

/**
 * Runs split a batch whose largest activation exceeds SPLIT_ABOVE bytes into slices whose largest activation
 * fits RUN_BUDGET bytes, so that a pass's element-wise chains (GroupNorm, activations) and the next
 * convolution find their tensor in the core's L2 cache (1 MiB here). Measured on WRN-10-2 + GN, batch 32
 * (4 MiB largest activation): 4 runs of 8 take 13.8 ms against 14.2 ms for one run of 32 (on-CPU, session
 * run alone); LeNet (2 MiB) gained nothing from 2 × 16 and stays whole.
 */
const SPLIT_ABOVE = 2 * 2 ** 20;
const RUN_BUDGET = 2 ** 20;

/** How many examples of `batch` one run takes for `model` (the whole batch unless its activations are large). */
export function examplesPerRun(model: Pick<ClientModel, 'largestActivation'>, batch: number): number {
  const bytesPerExample = 4 * model.largestActivation;
  if (bytesPerExample * batch <= SPLIT_ABOVE) return batch;
  return Math.max(1, Math.floor(RUN_BUDGET / bytesPerExample));
}

const GRAPHS: readonly OrtGraph[] = ['auto', 'optimized', 'plain'];

/** The graph asked for by options or the environment. */
export function requestedGraph(options: OrtOptions = {}): OrtGraph {
  const g = options.graph ?? (process.env.BAFFLE_ORT_GRAPH as OrtGraph | undefined) ?? 'auto';
  if (!GRAPHS.includes(g)) throw new Error(`onnxruntime graph must be one of ${GRAPHS.join(', ')}, got ${JSON.stringify(g)}`);
  return g;
}

/** Largest |a − b| relative to max(1, max |a|) at which the optimised graph is accepted. */
export const PROBE_TOLERANCE = 1e-3;

/** One slice of the current batch, fed to one session.run(). */
interface BatchSlice {
  x: ort.Tensor;
  y: ort.Tensor;
  count: number;
}

interface GatherSlot {
  buffer: Float32Array;
  src: Int32Array;
  dst: Int32Array | null;
  runs: Int32Array | null;
}

export class OrtSession implements ForwardSession {
  private slices: BatchSlice[] = [];
  private batchCount = 0;
  /** Weight feeds per weight buffer (views stay valid while the buffer lives). */
  private feedCache = new WeakMap<Float32Array, Record<string, ort.Tensor>>();
  /** Engine-layout tensors filled from the weights on every pass (optimised graph only). */
  private readonly gathers: GatherSlot[];
  private readonly gatherTensors: Record<string, ort.Tensor>;
  private timed = false;
  private perRun: ((batch: number) => number) | null = null;
  /** With `timing`: wall ms spent gathering weights into the engine layout, and in session.run(), and passes. */
  readonly timing = { gatherMs: 0, runMs: 0, passes: 0 };

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly layout: readonly ParamEntry[],
    private readonly params: number,
    private readonly io: GraphIo,
    private readonly inputDims: readonly number[],
    private readonly weightFeeds: WeightFeed[] | null,
    /** The graph this session runs. */
    readonly graph: 'optimized' | 'plain',
    /** Why the optimised graph was not used ('auto' only), or null. */
    readonly fallbackReason: string | null,
    /** Custom-domain ops of the optimised graph (e.g. {'com.microsoft.nchwc:Conv': 2}). */
    readonly contribOps: Record<string, number>,
  ) {
    this.gathers = [];
    this.gatherTensors = {};
    for (const f of weightFeeds ?? []) {
      if (f.kind !== 'gather') continue;
      const buffer = new Float32Array(f.length);
      this.gathers.push({ buffer, src: f.src, dst: f.dst, runs: f.runs });
      this.gatherTensors[f.name] = new ort.Tensor('float32', buffer, f.dims);
    }
  }

  static async create(model: ClientModel, options: OrtOptions = {}): Promise<OrtSession> {
    const fixed = options.examplesPerRun;
    if (fixed !== undefined && !(Number.isInteger(fixed) && fixed >= 1)) {
      throw new Error(`examplesPerRun must be a positive integer, got ${JSON.stringify(fixed)}`);
    }
    const session = await OrtSession.open(model, options);
    session.timed = options.timing ?? false;
    session.perRun = (batch) => fixed ?? examplesPerRun(model, batch);
    return session;
  }

  private static async open(model: ClientModel, options: OrtOptions): Promise<OrtSession> {
    const threads = options.threads ?? 1;
    const base: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    };
    const plainOptions: ort.InferenceSession.SessionOptions = { ...base, graphOptimizationLevel: 'all' };
    const wanted = requestedGraph(options);
    const plain = await ort.InferenceSession.create(model.onnx, plainOptions);
    const plainSession = (reason: string | null) => new OrtSession(plain, model.layout, model.params, model.io, model.inputDims, null, 'plain', reason, {});
    if (wanted === 'plain') return plainSession(null);

    let optimized: OptimizedGraph;
    let session: ort.InferenceSession;
    try {
      optimized = await (options.optimizer ?? optimizeWithWeightInputs)(model, base);
      // logSeverityLevel 3: the rewritten graph may leave constants unused, which onnxruntime reports as warnings.
      session = await ort.InferenceSession.create(optimized.bytes, { ...base, graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
    } catch (e) {
      const reason = e instanceof OptimizeError ? e.message : `onnxruntime: ${(e as Error).message}`;
      if (wanted === 'optimized') {
        await plain.release();
        throw new Error(`optimised onnxruntime graph unavailable: ${reason}`);
      }
      return plainSession(reason);
    }
    const fast = new OrtSession(session, model.layout, model.params, model.io, model.inputDims, optimized.feeds, 'optimized', null, optimized.contribOps);
    const mismatch = await probe(model, fast, plainSession(null));
    if (mismatch === null) {
      await plain.release();
      return fast;
    }
    await session.release();
    if (wanted === 'optimized') {
      await plain.release();
      throw new Error(`optimised onnxruntime graph unavailable: ${mismatch}`);
    }
    return plainSession(mismatch);
  }

  setBatch(batch: Batch): void {
    const size = this.inputDims.reduce((p, d) => p * d, 1);
    const expected = batch.count * size;
    if (batch.x.length < expected) {
      throw new Error(`batch holds ${batch.x.length} values, ${batch.count} examples of ${this.inputDims.join('×')} need ${expected}`);
    }
    const labels = new BigInt64Array(batch.count);
    for (let i = 0; i < batch.count; i++) labels[i] = BigInt(batch.y[i]);
    const per = this.perRun?.(batch.count) ?? batch.count;
    this.slices = [];
    for (let start = 0; start < batch.count; start += per) {
      const count = Math.min(per, batch.count - start);
      this.slices.push({
        x: new ort.Tensor('float32', batch.x.subarray(start * size, (start + count) * size), [count, ...this.inputDims]),
        y: new ort.Tensor('int64', labels.subarray(start, start + count), [count]),
        count,
      });
    }
    this.batchCount = batch.count;
  }

  /** session.run() calls per pass over the current batch. */
  get runsPerBatch(): number {
    return this.slices.length;
  }

  /** The weight feeds for `weights` (gathered into the engine layout first, for the optimised graph). */
  private feedsWith(weights: Float32Array): Record<string, ort.Tensor> {
    if (this.slices.length === 0) throw new Error('OrtSession: setBatch() must be called before a forward pass');
    if (weights.length !== this.params) {
      throw new Error(`weights have ${weights.length} values, the model has ${this.params} trainable parameters`);
    }
    if (this.timed) {
      const t0 = performance.now();
      for (const g of this.gathers) gatherInto(g.buffer, weights, g.src, g.dst, g.runs);
      this.timing.gatherMs += performance.now() - t0;
    } else {
      for (const g of this.gathers) gatherInto(g.buffer, weights, g.src, g.dst, g.runs);
    }
    let feeds = this.feedCache.get(weights);
    if (!feeds) {
      feeds = { ...this.gatherTensors };
      if (this.weightFeeds) {
        for (const f of this.weightFeeds) {
          if (f.kind === 'view') feeds[f.name] = new ort.Tensor('float32', weights.subarray(f.offset, f.offset + f.size), f.dims);
        }
      } else {
        for (const p of this.layout) {
          feeds[p.name] = new ort.Tensor('float32', weights.subarray(p.offset, p.offset + p.size), p.shape);
        }
      }
      this.feedCache.set(weights, feeds);
    }
    return feeds;
  }

  async loss(weights: Float32Array): Promise<number> {
    const feeds = this.feedsWith(weights);
    const t0 = this.timed ? performance.now() : 0;
    // The batch mean from the slices' means, each weighted by its examples. With one slice this is the run's
    // own float32 loss exactly: loss · count is exact in float64, and so is dividing it back.
    let sum = 0;
    const { input, labels, loss: lossName } = this.io;
    for (const s of this.slices) {
      feeds[input] = s.x;
      feeds[labels] = s.y;
      sum += ((await this.session.run(feeds, [lossName]))[lossName]!.data as Float32Array)[0]! * s.count;
    }
    const loss = sum / this.batchCount;
    if (this.timed) {
      this.timing.runMs += performance.now() - t0;
      this.timing.passes++;
    }
    return loss;
  }

  async logits(weights: Float32Array): Promise<Float32Array> {
    const feeds = this.feedsWith(weights);
    const parts: Float32Array[] = [];
    const { input, labels, logits } = this.io;
    for (const s of this.slices) {
      feeds[input] = s.x;
      feeds[labels] = s.y;
      parts.push((await this.session.run(feeds, [logits]))[logits]!.data as Float32Array);
    }
    if (parts.length === 1) return parts[0]!;
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Elements gathered into engine-layout tensors per pass (0 for the plain graph). */
  get gatheredPerPass(): number {
    return this.gathers.reduce((s, g) => s + g.src.length, 0);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Weights for the probe: each parameter uniform in ±1/√fan-in (fan-in = size / first dimension), as the usual
 * initialisers draw them, from a fixed seed; every weight distinct, so a gather that swaps two cannot go unnoticed.
 */
function probeWeights(model: ClientModel): Float32Array {
  const w = new Float32Array(model.params);
  let s = 0x9b0be;
  for (const p of model.layout) {
    const bound = 1 / Math.sqrt(Math.max(1, p.size / (p.shape[0] ?? 1)));
    for (let i = p.offset; i < p.offset + p.size; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      w[i] = ((s >>> 8) / 8388608 - 1) * bound;
    }
  }
  return w;
}

/**
 * Compares the optimised session with the plain one on a deterministic probe (2 examples, two weight vectors).
 * Returns null when they agree, else the reason.
 */
async function probe(model: ClientModel, fast: OrtSession, plain: OrtSession): Promise<string | null> {
  const count = 2;
  const x = new Float32Array(count * exampleSize(model));
  let s = 0x2545f491;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s >>> 8) / 16777216;
  }
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) y[i] = i % model.classes;
  const batch = { x, y, count };
  fast.setBatch(batch);
  plain.setBatch(batch);
  const weights = probeWeights(model);
  const varied = weights.slice();
  for (let i = 0; i < varied.length; i++) varied[i] = varied[i]! * (1 + ((i % 7) - 3) * 0.01) + ((i % 13) - 6) * 1e-3;
  for (const wv of [weights, varied]) {
    const a = await plain.logits(wv);
    const b = await fast.logits(wv);
    if (a.length !== b.length) return `probe: logits have ${b.length} values, expected ${a.length}`;
    let scale = 1;
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(a[i]!));
      diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    }
    if (!(diff <= PROBE_TOLERANCE * scale)) return `probe: optimised logits differ from the plain graph's by ${diff.toExponential(2)}`;
  }
  return null;
}
