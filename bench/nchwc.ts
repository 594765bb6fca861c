// Experiment (not the engine): onnxruntime's fast NCHWc convolution kernels need constant weights, which
// BAFFLE cannot give (new weights every pass). Trick measured here:
//   1. build the model with its weights baked in as initializers whose values are their own flat indices
//      (i + 1, exact in float32 up to 2^24), and let onnxruntime optimise it ('all': NchwcTransformer) and
//      save the optimised graph;
//   2. in that graph every weight tensor onnxruntime derived (reordered to its blocked OIHWBiBo layout, or
//      kept as is) now holds indices: that is the gather map from the flat layout to the engine's layout;
//   3. turn those tensors back into graph inputs, load the optimised graph without further optimisation,
//      and per pass: perturbInto (unchanged, same bits) → gather into the blocked tensors → run.
// The losses agree with the project's session to float rounding (reported), the scalars a_k too.
// The optimised graph is specific to the CPU (NCHWc block size: 16 with AVX-512, 8 with AVX2) and uses
// com.microsoft.nchwc contrib ops: a per-machine artefact made at session creation, onnxruntime-node only.
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OrtSession } from '../src/engine/ort.ts';
import { buildModel } from '../src/model/index.ts';
import type { BuiltModel } from '../src/model/types.ts';
import { perturbInto } from '../src/rng/directions.ts';
import { processCpuNs } from './clock.ts';
import { median, syntheticBatch, type ZooEntry } from './lib.ts';
import { PROJECT_OPTIONS, withInitializers } from './ort.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

interface GatherTensor {
  name: string;
  dims: number[];
  /** map[i] = flat parameter index feeding element i of this tensor, or -1 for zero padding. */
  map: Int32Array;
  buffer: Float32Array;
}

export interface NchwcSession {
  session: ort.InferenceSession;
  tensors: GatherTensor[];
  /** Feeds for the batch; the weight tensors are views on `tensors[].buffer`. */
  feeds: Record<string, ort.Tensor>;
  /** Gathers flat weights into the engine-layout inputs. */
  gather(weights: Float32Array): void;
  loss(weights: Float32Array): Promise<number>;
}

/** The NCHWc-optimised graph of `model` with its weights as (engine-layout) graph inputs, on `batch`. */
export async function createNchwcSession(model: BuiltModel, batch: { x: Float32Array; y: Uint8Array; count: number }): Promise<NchwcSession> {
  const n = model.layout.size;
  if (n >= 2 ** 24) throw new Error('index encoding needs n < 2^24');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baffle-nchwc-'));
  const file = path.join(dir, 'opt.onnx');
  try {
    const indices = new Float32Array(n);
    for (let i = 0; i < n; i++) indices[i] = i + 1;
    const s0 = await ort.InferenceSession.create(withInitializers(model, indices), {
      ...PROJECT_OPTIONS,
      optimizedModelFilePath: file,
      logSeverityLevel: 3,
    });
    await s0.release();
    const proto = onnx.ModelProto.decode(readFileSync(file));
    const graph = proto.graph!;
    // Constants of our own graph (GroupNorm scales, shapes) are not parameters even when they look like indices.
    const own = new Set((onnx.ModelProto.decode(model.onnx).graph?.initializer ?? []).map((i) => i.name));
    const tensors: GatherTensor[] = [];
    const kept: onnxProto.onnx.ITensorProto[] = [];
    const seen = new Uint8Array(n);
    for (const init of graph.initializer ?? []) {
      if (init.dataType !== FLOAT || own.has(init.name ?? '')) {
        kept.push(init);
        continue;
      }
      const raw = init.rawData?.length
        ? new Float32Array(new Uint8Array(init.rawData).buffer)
        : Float32Array.from(init.floatData ?? []);
      const map = Int32Array.from(raw, (v) => v - 1);
      if (!map.every((j, i) => j >= -1 && j < n && j === raw[i]! - 1)) {
        throw new Error(`optimised tensor ${init.name} is not a pure gather of the weights (onnxruntime folded arithmetic into it)`);
      }
      for (const j of map) if (j >= 0) seen[j] = 1;
      const dims = (init.dims ?? []).map(Number);
      tensors.push({ name: init.name!, dims, map, buffer: new Float32Array(map.length) });
    }
    if (seen.some((v) => v === 0)) throw new Error('some weights did not reach the optimised graph');
    graph.initializer = kept;
    for (const t of tensors) {
      graph.input!.push({ name: t.name, type: { tensorType: { elemType: FLOAT, shape: { dim: t.dims.map((d) => ({ dimValue: d })) } } } });
    }
    const session = await ort.InferenceSession.create(onnx.ModelProto.encode(proto).finish(), {
      ...PROJECT_OPTIONS,
      graphOptimizationLevel: 'disabled',
    });
    const [c, h, w] = model.config.inputShape;
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', batch.x.subarray(0, batch.count * c * h * w), [batch.count, c, h, w]),
      y: new ort.Tensor('int64', BigInt64Array.from(Array.from(batch.y.subarray(0, batch.count), (v) => BigInt(v))), [batch.count]),
    };
    for (const t of tensors) feeds[t.name] = new ort.Tensor('float32', t.buffer, t.dims);
    const gather = (weights: Float32Array) => {
      for (const t of tensors) {
        const { map, buffer } = t;
        for (let i = 0; i < map.length; i++) {
          const j = map[i]!;
          buffer[i] = j >= 0 ? weights[j]! : 0;
        }
      }
    };
    return {
      session,
      tensors,
      feeds,
      gather,
      loss: async (weights) => {
        gather(weights);
        const out = await session.run(feeds, ['loss']);
        return (out.loss!.data as Float32Array)[0]!;
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface NchwcResult {
  model: string;
  label: string;
  /** Weight tensors fed in engine layout. */
  tensors: number;
  /** Largest |ΔL| / |L| against the project's session over a few perturbed passes. */
  maxRelLossDiff: number;
  /** Largest |Δa_k| / |a_k| of the forward-difference scalars (σ = 1e-4). */
  maxRelScalarDiff: number;
  /** On-CPU ms per client pass (perturbInto + forward), project vs NCHWc-with-inputs (incl. the gather). */
  projectMs: number;
  nchwcMs: number;
  gatherMs: number;
  speedup: number;
}

export async function benchNchwc(entry: ZooEntry, opts: { rounds?: number; passes?: number } = {}): Promise<NchwcResult> {
  const model = buildModel(entry.config);
  const batch = syntheticBatch(entry.config.inputShape, 32, entry.config.classes);
  const fast = await createNchwcSession(model, batch);
  const ref = await OrtSession.create(model);
  ref.setBatch(batch);
  const w = model.initWeights(1);
  const scratch = new Float32Array(w.length);
  const sigma = 1e-4;
  try {
    let maxRelLossDiff = 0;
    let maxRelScalarDiff = 0;
    const base0 = await ref.loss(w);
    const base1 = await fast.loss(w);
    for (let k = 0; k < 5; k++) {
      perturbInto(scratch, w, sigma, 0xc0de, k);
      const l0 = await ref.loss(scratch);
      const l1 = await fast.loss(scratch);
      maxRelLossDiff = Math.max(maxRelLossDiff, Math.abs(l1 - l0) / Math.abs(l0));
      const a0 = (l0 - base0) / sigma;
      const a1 = (l1 - base1) / sigma;
      maxRelScalarDiff = Math.max(maxRelScalarDiff, Math.abs(a1 - a0) / Math.max(1e-12, Math.abs(a0)));
    }
    const passes = opts.passes ?? 12;
    const A: number[] = [];
    const B: number[] = [];
    const G: number[] = [];
    let k = 100;
    for (let r = 0; r < (opts.rounds ?? 9); r++) {
      let c0 = processCpuNs();
      for (let i = 0; i < passes; i++) {
        perturbInto(scratch, w, sigma, 0xc0de, k++);
        await ref.loss(scratch);
      }
      A.push((processCpuNs() - c0) / passes / 1e6);
      c0 = processCpuNs();
      for (let i = 0; i < passes; i++) {
        perturbInto(scratch, w, sigma, 0xc0de, k++);
        await fast.loss(scratch);
      }
      B.push((processCpuNs() - c0) / passes / 1e6);
      c0 = processCpuNs();
      for (let i = 0; i < passes; i++) fast.gather(scratch);
      G.push((processCpuNs() - c0) / passes / 1e6);
    }
    const projectMs = median(A);
    const nchwcMs = median(B);
    return {
      model: entry.id,
      label: entry.label,
      tensors: fast.tensors.length,
      maxRelLossDiff,
      maxRelScalarDiff,
      projectMs,
      nchwcMs,
      gatherMs: median(G),
      speedup: projectMs / nchwcMs,
    };
  } finally {
    await fast.session.release();
    await ref.dispose();
  }
}
