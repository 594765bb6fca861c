// Ops implementation #3: a straightforward pure-TypeScript forward pass, the test oracle for the ONNX graph
// (and for tiny-model gradient checks). Activations are stored as float32 like any engine; sums, means and
// variances accumulate in float64. Clarity over speed.

import { paramView } from './layout.ts';
import type { ConvOptions, ModelDef, Ops } from './ops.ts';
import { GN_EPS } from './ops.ts';
import * as S from './shapes.ts';
import type { Activation, InitSpec, ParamLayout, ParamSpec } from './types.ts';

/** A batched tensor: `data` is [batch, ...shape] row-major; `shape` is per-example. */
export interface RefTensor {
  data: Float32Array;
  shape: readonly number[];
}

// PyTorch's SELU constants (ONNX's defaults are the same values rounded to float32).
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

/** erf(x) from the everywhere-positive series 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)); ≈1e-15 accurate. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x); // 1 − erf(6) ≈ 2e-17
  let term = a;
  let sum = a;
  for (let n = 0; term > 1e-17 * sum; n++) {
    term *= (2 * a * a) / (2 * n + 3);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

export function activation(kind: Activation): (v: number) => number {
  switch (kind) {
    case 'relu':
      return (v) => (v > 0 ? v : 0);
    case 'hardswish':
      return (v) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6;
    case 'selu':
      return (v) => SELU_SCALE * (v > 0 ? v : SELU_ALPHA * Math.expm1(v));
    case 'gelu':
      return (v) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    default:
      throw new Error(`unknown activation ${JSON.stringify(kind)}`);
  }
}

export class ReferenceOps implements Ops<RefTensor, RefTensor> {
  private readonly byName: Map<string, ParamSpec>;

  constructor(
    private readonly layout: ParamLayout,
    private readonly weights: Float32Array,
    readonly batch: number,
  ) {
    if (weights.length !== layout.size) {
      throw new Error(`weights have ${weights.length} values, the layout has ${layout.size} parameters`);
    }
    this.byName = new Map(layout.params.map((p) => [p.name, p]));
  }

  shape(x: RefTensor): readonly number[] {
    return x.shape;
  }

  param(name: string, shape: readonly number[], _init: InitSpec): RefTensor {
    const spec = this.byName.get(name);
    if (!spec || !S.sameShape(spec.shape, shape)) {
      throw new Error(`parameter "${name}" [${shape}] is not in the layout (or has another shape)`);
    }
    return { data: paramView(this.weights, spec), shape };
  }

  private alloc(shape: readonly number[]): RefTensor {
    return { data: new Float32Array(this.batch * S.sizeOf(shape)), shape };
  }

  conv2d(x: RefTensor, w: RefTensor, b: RefTensor | null, opts: ConvOptions): RefTensor {
    const shape = S.conv2dShape(x.shape, w.shape, b?.shape ?? null, opts);
    const { stride, pad } = opts;
    const [C, H, W] = x.shape as [number, number, number];
    const [OC, , KH, KW] = w.shape as [number, number, number, number];
    const [, OH, OW] = shape as [number, number, number];
    const out = this.alloc(shape);
    const acc = new Float64Array(OH * OW);
    for (let n = 0; n < this.batch; n++) {
      const xn = n * C * H * W;
      for (let oc = 0; oc < OC; oc++) {
        acc.fill(b ? b.data[oc]! : 0);
        for (let c = 0; c < C; c++) {
          const xc = xn + c * H * W;
          for (let kh = 0; kh < KH; kh++) {
            for (let kw = 0; kw < KW; kw++) {
              const wv = w.data[((oc * C + c) * KH + kh) * KW + kw]!;
              for (let oh = 0; oh < OH; oh++) {
                const ih = oh * stride - pad + kh;
                if (ih < 0 || ih >= H) continue;
                const row = xc + ih * W;
                for (let ow = 0; ow < OW; ow++) {
                  const iw = ow * stride - pad + kw;
                  if (iw >= 0 && iw < W) acc[oh * OW + ow]! += wv * x.data[row + iw]!;
                }
              }
            }
          }
        }
        out.data.set(acc, (n * OC + oc) * OH * OW);
      }
    }
    return out;
  }

  linear(x: RefTensor, w: RefTensor, b: RefTensor | null): RefTensor {
    const shape = S.linearShape(x.shape, w.shape, b?.shape ?? null);
    const [O, I] = w.shape as [number, number];
    const out = this.alloc(shape);
    for (let n = 0; n < this.batch; n++) {
      for (let o = 0; o < O; o++) {
        let s = b ? b.data[o]! : 0;
        for (let i = 0; i < I; i++) s += x.data[n * I + i]! * w.data[o * I + i]!;
        out.data[n * O + o] = s;
      }
    }
    return out;
  }

  groupNorm(x: RefTensor, groups: number): RefTensor {
    const shape = S.groupNormShape(x.shape, groups);
    const out = this.alloc(shape);
    const per = S.sizeOf(shape) / groups; // elements in one (example, group)
    for (let start = 0; start < x.data.length; start += per) {
      let mean = 0;
      for (let i = 0; i < per; i++) mean += x.data[start + i]!;
      mean /= per;
      let v = 0;
      for (let i = 0; i < per; i++) v += (x.data[start + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / per + GN_EPS);
      for (let i = 0; i < per; i++) out.data[start + i] = (x.data[start + i]! - mean) * inv;
    }
    return out;
  }

  act(x: RefTensor, kind: Activation): RefTensor {
    const f = activation(kind);
    const out = this.alloc(x.shape);
    for (let i = 0; i < x.data.length; i++) out.data[i] = f(x.data[i]!);
    return out;
  }

  maxPool(x: RefTensor, k: number, stride: number): RefTensor {
    const shape = S.maxPoolShape(x.shape, k, stride);
    const [, H, W] = x.shape as [number, number, number];
    const [, OH, OW] = shape as [number, number, number];
    const out = this.alloc(shape);
    const planes = (this.batch * S.sizeOf(x.shape)) / (H * W);
    for (let p = 0; p < planes; p++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let m = -Infinity;
          for (let i = 0; i < k; i++) {
            for (let j = 0; j < k; j++) m = Math.max(m, x.data[p * H * W + (oh * stride + i) * W + ow * stride + j]!);
          }
          out.data[(p * OH + oh) * OW + ow] = m;
        }
      }
    }
    return out;
  }

  globalAvgPool(x: RefTensor): RefTensor {
    const shape = S.globalAvgPoolShape(x.shape);
    const hw = x.shape[1]! * x.shape[2]!;
    const out = this.alloc(shape);
    for (let p = 0; p < out.data.length; p++) {
      let s = 0;
      for (let i = 0; i < hw; i++) s += x.data[p * hw + i]!;
      out.data[p] = s / hw;
    }
    return out;
  }

  flatten(x: RefTensor): RefTensor {
    return { data: x.data, shape: S.flattenShape(x.shape) };
  }

  add(a: RefTensor, b: RefTensor): RefTensor {
    const out = this.alloc(S.addShape(a.shape, b.shape));
    for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i]! + b.data[i]!;
    return out;
  }
}

/** Logits [batch × classes] of `def` under `weights` for inputs x ([batch, ...inputShape]). */
export function referenceForward(
  def: ModelDef,
  layout: ParamLayout,
  inputShape: readonly number[],
  weights: Float32Array,
  x: Float32Array,
  batch: number,
): Float32Array {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
  if (x.length !== batch * S.sizeOf(inputShape)) {
    throw new Error(`x has ${x.length} values, expected ${batch} × [${inputShape}]`);
  }
  const ops = new ReferenceOps(layout, weights, batch);
  return def(ops, { data: x, shape: [...inputShape] }).data;
}

/** Mean cross-entropy (float64, log-sum-exp) of logits [batch × classes] against integer labels. */
export function referenceCrossEntropy(
  logits: Float32Array,
  labels: ArrayLike<number>,
  batch: number,
  classes: number,
): number {
  let total = 0;
  for (let n = 0; n < batch; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    const label = labels[n]!;
    if (!(label >= 0 && label < classes)) throw new Error(`label ${label} of example ${n} is out of range`);
    total += max + Math.log(z) - row[label]!;
  }
  return total / batch;
}
