// onnxruntime-node engine of the member-batched low-rank client step (src/core/zo/lowrankBatch.ts): one
// InferenceSession over a graph built here for an MLP-shaped model, every member of a share in one run.
//
// Graph (M members, B examples, rank r; all tensors float32):
//   inputs  x [B, p₀], onehot [B, C], and per layer l: w_l [m, p] (the weights, fed every step),
//           bias_l [M, 1, m] (fround(b + s·σ·ζ_k) per member), at_l [M, r, m] (s·σ·c_r·A_kᵀ), bf_l [M, p, r] (B_k).
//   layer 0 (input shared by all members):
//           g = Gemm(x, w₀, transB)             [B, m]       the unperturbed product, once
//           u = MatMul(x, bf₀)                   [M, B, r]    x broadcast over the members
//   layer l > 0:
//           g = MatMul(h, w_lᵀ)                  [M, B, m]    one shared-weight product over M·B rows
//           u = MatMul(h, bf_l)                  [M, B, r]    batched
//   then    h = act(g + MatMul(u, at_l) + bias_l)            (no activation after the last layer)
//   output  nll [M] = ReduceSum(LogSoftmax(h) · onehot, axes [1, 2]); the member's mean loss is −nll / B.
// Single-threaded (intra-op 1) like OrtSession: parallelism comes from worker_threads.
// Every op works member by member (or shares the same rows), so a member's loss does not depend on which other
// members share its run: any split of the directions into shares gives the one-run bits (test/lowrank.test.ts).
// (Computing layer 0's B_kᵀx for all members as one [B, p] × [p, M·r] GEMM broke that: MLAS's column blocking
// moved single losses by one ulp with M — and it was no faster.)
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { OnnxGraphBuilder, OPSET, IR_VERSION } from '../../core/model/onnxGraph.ts';
import type { Batch } from '../../core/engine/types.ts';
import type { LowRankPlan } from '../../core/rng/lowrank.ts';
import type { EstimateTask, PartialLosses, PassRange } from '../../core/zo/task.ts';
import { memberFactors, mlpShape, partialFromMembers, shareMembers, type MemberFactors, type MlpShape } from '../../core/zo/lowrankBatch.ts';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

function valueInfo(name: string, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: DT.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

/** The member-batched ONNX graph of `shape` at rank r (see the header). */
export function memberBatchedOnnx(shape: MlpShape, rank: number): Uint8Array {
  const g = new OnnxGraphBuilder();
  const inputs: onnxProto.onnx.IValueInfoProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const int64 = (name: string, values: number[]) => {
    initializers.push({ name, dataType: DT.INT64, dims: [values.length], rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
    return name;
  };
  inputs.push(valueInfo('x', ['B', shape.inputSize]));
  inputs.push(valueInfo('onehot', ['B', shape.classes]));
  let h = 'x';
  shape.layers.forEach((l, li) => {
    const w = `w${li}`;
    const bias = `bias${li}`;
    const at = `at${li}`;
    const bf = `bf${li}`;
    inputs.push(valueInfo(w, [l.m, l.p]));
    inputs.push(valueInfo(bias, ['M', 1, l.m]));
    inputs.push(valueInfo(at, ['M', rank, l.m]));
    let prod: string;
    let u: string;
    if (li === 0) {
      inputs.push(valueInfo(bf, ['M', l.p, rank]));
      prod = g.node('Gemm', [h, w], { transB: 1 });
      u = g.node('MatMul', [h, bf]);
    } else {
      inputs.push(valueInfo(bf, ['M', l.p, rank]));
      const wt = g.node('Transpose', [w], { perm: [1, 0] });
      prod = g.node('MatMul', [h, wt]);
      u = g.node('MatMul', [h, bf]);
    }
    const corr = g.node('MatMul', [u, at]);
    const sum = g.node('Add', [g.node('Add', [corr, prod]), bias]);
    h = li < shape.layers.length - 1 ? g.act({ name: sum, shape: [l.m] }, shape.activation).name : sum;
  });
  const ls = g.node('LogSoftmax', [h], { axis: -1 });
  const picked = g.node('Mul', [ls, 'onehot']);
  g.node('ReduceSum', [picked, int64('axes_12', [1, 2])], { keepdims: 0 }, 'nll');
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'baffle',
    producerVersion: '0.1.0',
    graph: { name: 'baffle-lowrank-batched', node: g.nodes, input: inputs, initializer: initializers, output: [valueInfo('nll', ['M'])] },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The member-batched client step on onnxruntime: setBatch(batch) as a ForwardSession, then runPasses(weights,
 * task, range) → the same PartialLosses as task.ts's runPasses (to float32 tolerance), in one engine run.
 */
export class LowRankBatchSession {
  private x: ort.Tensor | null = null;
  private onehot: ort.Tensor | null = null;
  private count = 0;
  private factors: MemberFactors | undefined;
  /** Wall ms of the last runPasses: drawing the factors and filling the member tensors, and session.run(). */
  readonly timing = { factorMs: 0, runMs: 0 };

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly shape: MlpShape,
    readonly plan: LowRankPlan,
  ) {}

  static async create(shape: MlpShape, plan: LowRankPlan, options: { threads?: number } = {}): Promise<LowRankBatchSession> {
    if (plan.params !== shape.params) throw new RangeError(`LowRankBatchSession: plan for ${plan.params} parameters, model ${shape.params}`);
    const session = await ort.InferenceSession.create(memberBatchedOnnx(shape, plan.rank), {
      intraOpNumThreads: options.threads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new LowRankBatchSession(session, shape, plan);
  }

  setBatch(batch: Batch): void {
    const n = this.shape.inputSize;
    if (batch.x.length !== batch.count * n) throw new RangeError(`setBatch: x has ${batch.x.length} values for ${batch.count} examples of ${n}`);
    const C = this.shape.classes;
    const oh = new Float32Array(batch.count * C);
    for (let e = 0; e < batch.count; e++) oh[e * C + batch.y[e]!] = 1;
    this.x = new ort.Tensor('float32', batch.x, [batch.count, n]);
    this.onehot = new ort.Tensor('float32', oh, [batch.count, C]);
    this.count = batch.count;
  }

  /** Mean losses of the share's members (shareMembers order) under `weights`. */
  async memberLosses(weights: Float32Array, task: Pick<EstimateTask, 'seed' | 'sigma' | 'scheme'>, range: PassRange): Promise<Float64Array> {
    if (!this.x || !this.onehot) throw new Error('LowRankBatchSession: setBatch() must be called first');
    const t0 = performance.now();
    const members = shareMembers(task, range);
    const M = members.length;
    const r = this.plan.rank;
    const f = (this.factors = memberFactors(this.shape, this.plan, weights, task, members, this.factors));
    const feeds: Record<string, ort.Tensor> = { x: this.x, onehot: this.onehot };
    this.shape.layers.forEach((l, li) => {
      const t = f.layers[li]!;
      feeds[`w${li}`] = new ort.Tensor('float32', weights.subarray(l.wOffset, l.wOffset + l.m * l.p), [l.m, l.p]);
      feeds[`bias${li}`] = new ort.Tensor('float32', t.bias, [M, 1, l.m]);
      feeds[`at${li}`] = new ort.Tensor('float32', t.at, [M, r, l.m]);
      feeds[`bf${li}`] = new ort.Tensor('float32', t.bf, [M, l.p, r]);
    });
    const t1 = performance.now();
    const out = await this.session.run(feeds);
    const t2 = performance.now();
    this.timing.factorMs = t1 - t0;
    this.timing.runMs = t2 - t1;
    const nll = out.nll!.data as Float32Array;
    const losses = new Float64Array(M);
    for (let j = 0; j < M; j++) losses[j] = -nll[j]! / this.count;
    return losses;
  }

  /** The share's losses, as task.ts's runPasses returns them. */
  async runPasses(weights: Float32Array, task: Pick<EstimateTask, 'seed' | 'sigma' | 'scheme'>, range: PassRange): Promise<PartialLosses> {
    return partialFromMembers(task, range, await this.memberLosses(weights, task, range));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The member-batched engine for a model, or null when it does not apply — Gaussian directions, or a model the
 * fast path does not cover (see mlpShape; the reason goes to `why`). Callers keep task.ts's per-pass path then.
 */
export async function memberBatchedEngine(
  config: Parameters<typeof mlpShape>[0],
  layout: Parameters<typeof mlpShape>[1],
  plan: LowRankPlan | null | undefined,
  why: { reason?: string } = {},
): Promise<LowRankBatchSession | null> {
  if (!plan) {
    why.reason = 'Gaussian directions (the fast path needs perturbation = lowrank)';
    return null;
  }
  const shape = mlpShape(config, layout, why);
  return shape ? LowRankBatchSession.create(shape, plan) : null;
}
