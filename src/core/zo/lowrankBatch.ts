// The member-batched client step for low-rank directions (issue 13 item 1, the "fast path"). Instead of one
// engine pass per direction with W + σ·A Bᵀ/√r materialised, every member of a share — the unperturbed model
// (member 0, when the share holds L(W)), W + σz_k and, for central differences, W − σz_k — runs in ONE engine
// run with the members on the batch axis. Per linear layer y = W x + b, member j with direction k and sign s:
//
//     y_j = W x_j + (s·σ·c_r) · A_k (B_kᵀ x_j) + fround(b + s·σ·ζ_k)        (c_r = 1/√r)
//
// The first layer's input is the same minibatch for every member, so W x is computed once and broadcast; deeper
// layers do one shared-weight product over [M·B, p] plus batched rank-r corrections [M, B, p] × [M, p, r] →
// [M, B, r] × [M, r, m]. A_k, B_k and ζ_k are the factor stream of SPEC.md §8 (fillFactors), the perturbed
// biases are exactly the per-pass path's fround(b + sign·σ·ζ). The weight matrices' products are not: float32
// W x + σ A(Bᵀx) rounds differently from (W + σz) x, so the losses agree with the per-pass path to float32
// tolerance, not bit for bit (test/lowrank.test.ts).
//
// Covered models: MLP-shaped layouts — the zoo's `mlp` (flatten → [Gemm → activation]* → Gemm, any hidden
// widths, any zoo activation) with every parameter trainable, i.e. a layout of consecutive (fc.weight [m, p],
// fc.bias [m]) pairs chained p_{l+1} = m_l. Anything else (LeNet, WRN, imported graphs, partial `trainable`)
// returns null from mlpShape() and keeps the per-pass path of task.ts.
//
// This file is the engine-independent half: the shape check, the per-member factor tensors, a float64 reference
// of the batched math (tests), and the losses → PartialLosses bookkeeping. The onnxruntime session that runs it
// is src/node/engine/lowrankBatch.ts.
import { fillFactors, lowRankScale, type LowRankPlan } from '../rng/lowrank.ts';
import type { Activation } from '../model/types.ts';
import type { EstimateTask, PartialLosses, PassRange } from './task.ts';

/** One linear layer of an MLP-shaped layout. */
export interface MlpLayer {
  /** Output and input widths (W is [m, p], row-major, at wOffset; b is [m] at bOffset). */
  m: number;
  p: number;
  wOffset: number;
  bOffset: number;
  /** Index of the weight and bias tensors in the plan (their factor positions). */
  wTensor: number;
  bTensor: number;
}

export interface MlpShape {
  layers: MlpLayer[];
  activation: Activation;
  /** Elements per example of the (flattened) input, and classes. */
  inputSize: number;
  classes: number;
  params: number;
}

/**
 * The MLP shape of a model, or null (with the reason in `why`) when the member-batched path does not cover it.
 * `model` is anything with the zoo config and the trainable layout (a BuiltModel; for a ClientModel pass its
 * config and layout) — the layout must be the whole model's, in the zoo's order.
 */
export function mlpShape(
  config: { model: string; activation: Activation; inputShape: readonly number[]; classes: number; norm?: string } | null | undefined,
  layout: readonly { name: string; shape: readonly number[]; offset: number; size: number }[],
  why: { reason?: string } = {},
): MlpShape | null {
  const no = (reason: string): null => {
    why.reason = reason;
    return null;
  };
  if (!config || config.model !== 'mlp') return no(`not a zoo mlp (model ${JSON.stringify(config?.model ?? null)})`);
  if (config.norm !== undefined && config.norm !== 'none') return no('the mlp has normalisation layers');
  const inputSize = config.inputShape.reduce((a, d) => a * d, 1);
  if (layout.length < 2 || layout.length % 2 !== 0) return no('the layout is not (weight, bias) pairs');
  const layers: MlpLayer[] = [];
  let p = inputSize;
  let offset = 0;
  for (let i = 0; i < layout.length; i += 2) {
    const w = layout[i]!;
    const b = layout[i + 1]!;
    if (!w.name.endsWith('.weight') || !b.name.endsWith('.bias') || w.name.slice(0, -7) !== b.name.slice(0, -5)) {
      return no(`layout entries ${w.name}, ${b.name} are not a linear layer's weight and bias`);
    }
    if (w.shape.length !== 2 || w.shape[1] !== p || b.shape.length !== 1 || b.shape[0] !== w.shape[0]) {
      return no(`layer ${w.name} has shape [${w.shape.join(', ')}], expected [m, ${p}] with bias [m]`);
    }
    if (w.offset !== offset || b.offset !== offset + w.size) return no('the layout is not consecutive');
    const m = w.shape[0]!;
    if (m < 2 || p < 2) return no(`layer ${w.name} is not a matrix under SPEC.md §8 (m, p ≥ 2)`);
    layers.push({ m, p, wOffset: w.offset, bOffset: b.offset, wTensor: i, bTensor: i + 1 });
    offset += w.size + b.size;
    p = m;
  }
  if (p !== config.classes) return no(`the last layer has ${p} outputs, the model ${config.classes} classes`);
  return { layers, activation: config.activation, inputSize, classes: config.classes, params: offset };
}

/** The members of one share, in the order of the engine's output: [base?] [+k for k in range] [−k (central)]. */
export interface Member {
  /** Direction index, or −1 for the unperturbed member. */
  k: number;
  /** +1 / −1 (0 for the unperturbed member). */
  sign: number;
}

export function shareMembers(task: Pick<EstimateTask, 'scheme'>, range: PassRange): Member[] {
  const out: Member[] = [];
  if (range.base) out.push({ k: -1, sign: 0 });
  for (let k = range.kStart; k < range.kEnd; k++) out.push({ k, sign: 1 });
  if (task.scheme === 'central') for (let k = range.kStart; k < range.kEnd; k++) out.push({ k, sign: -1 });
  return out;
}

/** Per-layer member tensors: Bf [M, p, r] (B_k), At [M, r, m] (s·σ·c_r·A_kᵀ), bias [M, m] (fround(b + s·σ·ζ_k)). */
export interface MemberFactors {
  members: number;
  rank: number;
  layers: { bf: Float32Array; at: Float32Array; bias: Float32Array }[];
}

let FSTREAM = new Float32Array(0);

/**
 * Fills (or allocates, when `into` is absent or sized for another member count) the member tensors of a share
 * from the factor streams of SPEC.md §8: one fillFactors per direction, shared by its + and − members.
 */
export function memberFactors(
  shape: MlpShape,
  plan: LowRankPlan,
  weights: Float32Array,
  task: Pick<EstimateTask, 'seed' | 'sigma' | 'scheme'>,
  members: readonly Member[],
  into?: MemberFactors,
): MemberFactors {
  if (plan.params !== shape.params || weights.length !== shape.params) {
    throw new RangeError(`memberFactors: plan ${plan.params}, shape ${shape.params}, weights ${weights.length} parameters`);
  }
  const r = plan.rank;
  const M = members.length;
  const out: MemberFactors =
    into && into.members === M && into.rank === r
      ? into
      : {
          members: M,
          rank: r,
          layers: shape.layers.map((l) => ({ bf: new Float32Array(M * l.p * r), at: new Float32Array(M * r * l.m), bias: new Float32Array(M * l.m) })),
        };
  if (FSTREAM.length < plan.factors) FSTREAM = new Float32Array(plan.factors);
  const f = FSTREAM;
  const c = lowRankScale(r);
  let drawn = -2;
  for (let j = 0; j < M; j++) {
    const { k, sign } = members[j]!;
    if (k >= 0 && k !== drawn) {
      fillFactors(plan, task.seed, k, f);
      drawn = k;
    }
    const s = sign * task.sigma;
    for (let li = 0; li < shape.layers.length; li++) {
      const l = shape.layers[li]!;
      const dst = out.layers[li]!;
      const bOff = j * l.m;
      if (k < 0) {
        dst.bf.fill(0, j * l.p * r, (j + 1) * l.p * r);
        dst.at.fill(0, j * r * l.m, (j + 1) * r * l.m);
        dst.bias.set(weights.subarray(l.bOffset, l.bOffset + l.m), bOff);
        continue;
      }
      const wt = plan.tensors[l.wTensor]!;
      const bt = plan.tensors[l.bTensor]!;
      // B_k: row-major [p, r] in the stream, exactly the [p, r] slice of Bf.
      const bStart = wt.factor + l.m * r;
      dst.bf.set(f.subarray(bStart, bStart + l.p * r), j * l.p * r);
      // A_kᵀ scaled: At[j, q, i] = (s·c_r)·A[i, q].
      const sc = s * c;
      const atBase = j * r * l.m;
      for (let i = 0; i < l.m; i++) for (let q = 0; q < r; q++) dst.at[atBase + q * l.m + i] = sc * f[wt.factor + i * r + q]!;
      // Bias: the per-pass path's fround(b + s·ζ).
      for (let i = 0; i < l.m; i++) dst.bias[bOff + i] = weights[l.bOffset + i]! + s * f[bt.factor + i]!;
    }
  }
  return out;
}

/** The share's PartialLosses from the engine's per-member mean losses (in shareMembers order). */
export function partialFromMembers(task: Pick<EstimateTask, 'scheme'>, range: PassRange, losses: ArrayLike<number>): PartialLosses {
  const n = range.kEnd - range.kStart;
  const o = range.base ? 1 : 0;
  const expected = o + n * (task.scheme === 'central' ? 2 : 1);
  if (losses.length !== expected) throw new Error(`member-batched step: ${losses.length} losses for ${expected} members`);
  const plus = new Float32Array(n);
  for (let i = 0; i < n; i++) plus[i] = losses[o + i]!;
  let minus: Float32Array | null = null;
  if (task.scheme === 'central') {
    minus = new Float32Array(n);
    for (let i = 0; i < n; i++) minus[i] = losses[o + n + i]!;
  }
  return { kStart: range.kStart, plus, minus, base: range.base ? Math.fround(losses[0]!) : null };
}

function activate(v: number, a: Activation): number {
  switch (a) {
    case 'relu':
      return v > 0 ? v : 0;
    case 'hardswish':
      return (v * Math.min(Math.max(v + 3, 0), 6)) / 6;
    case 'selu': {
      const alpha = 1.6732632423543772;
      const gamma = 1.0507009873554805;
      return gamma * (v > 0 ? v : alpha * (Math.exp(v) - 1));
    }
    case 'gelu':
      return 0.5 * v * (1 + erf(v / Math.SQRT2));
  }
}

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for a reference; use the series / continued fraction split.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 60; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  let cf = 0;
  for (let n = 60; n >= 1; n--) cf = n / 2 / (t + cf);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + cf));
}

/**
 * The batched math in float64, member by member (slow; tests and a check of the engine graph): the mean
 * cross-entropy of each member over the batch x [count, inputSize], labels y.
 */
export function referenceMemberLosses(shape: MlpShape, weights: Float32Array, f: MemberFactors, x: Float32Array, y: Uint8Array, count: number): Float64Array {
  const r = f.rank;
  const out = new Float64Array(f.members);
  for (let j = 0; j < f.members; j++) {
    let total = 0;
    for (let e = 0; e < count; e++) {
      let h: Float64Array = Float64Array.from(x.subarray(e * shape.inputSize, (e + 1) * shape.inputSize));
      shape.layers.forEach((l, li) => {
        const t = f.layers[li]!;
        const u = new Float64Array(r);
        for (let q = 0; q < r; q++) {
          let s = 0;
          for (let i = 0; i < l.p; i++) s += h[i]! * t.bf[j * l.p * r + i * r + q]!;
          u[q] = s;
        }
        const next = new Float64Array(l.m);
        for (let o = 0; o < l.m; o++) {
          let s = t.bias[j * l.m + o]!;
          for (let i = 0; i < l.p; i++) s += weights[l.wOffset + o * l.p + i]! * h[i]!;
          for (let q = 0; q < r; q++) s += t.at[j * r * l.m + q * l.m + o]! * u[q]!;
          next[o] = li < shape.layers.length - 1 ? activate(s, shape.activation) : s;
        }
        h = next;
      });
      let mx = -Infinity;
      for (const v of h) mx = Math.max(mx, v);
      let z = 0;
      for (const v of h) z += Math.exp(v - mx);
      total += mx + Math.log(z) - h[y[e]!]!;
    }
    out[j] = total / count;
  }
  return out;
}
