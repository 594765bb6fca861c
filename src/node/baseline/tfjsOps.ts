// Ops implementation #4: TensorFlow.js tensors, so the one model definition in zoo.ts also yields a
// differentiable model for the backprop baseline (parameters are the same named slices of the same flat
// layout, so gradients flatten back into layout order).
//
// Internally activations are channels-last (NHWC: the layout every tfjs backend implements for conv and
// pooling); `shape()` still reports the per-example PyTorch shape [C, H, W] so the model definition and shape
// inference see exactly what the other implementations see. `flatten` goes back to channel-major order
// before reshaping, so a flattened feature vector is ordered as in PyTorch / ONNX.
//
// tfjs has no GroupNorm or Hardswish op: both are composed from primitives (checked against the reference
// forward in test/baseline.test.ts).
import type * as TF from '@tensorflow/tfjs-core';
import type { ConvOptions, Ops } from '../../core/model/ops.ts';
import { GN_EPS } from '../../core/model/ops.ts';
import * as S from '../../core/model/shapes.ts';
import type { Activation, InitSpec } from '../../core/model/types.ts';
import type { Tf } from './tfjs.ts';

/** A batched activation: `t` is [N, H, W, C] for image-like values, [N, F] for flat ones. */
export interface TfValue {
  t: TF.Tensor;
  /** Per-example shape as the model definition sees it: [C, H, W] or [F]. */
  shape: readonly number[];
}

export class TfjsOps implements Ops<TfValue, TF.Tensor> {
  constructor(
    private readonly tf: Tf,
    /** Parameter tensors by name, each in its layout shape (e.g. conv weights [outC, inC, kH, kW]). */
    private readonly params: ReadonlyMap<string, TF.Tensor>,
  ) {}

  shape(x: TfValue): readonly number[] {
    return x.shape;
  }

  param(name: string, shape: readonly number[], _init: InitSpec): TF.Tensor {
    const p = this.params.get(name);
    if (!p || !S.sameShape(p.shape, shape)) {
      throw new Error(`parameter "${name}" [${shape}] is not in the layout (or has another shape)`);
    }
    return p;
  }

  conv2d(x: TfValue, w: TF.Tensor, b: TF.Tensor | null, opts: ConvOptions): TfValue {
    const { tf } = this;
    const shape = S.conv2dShape(x.shape, w.shape, b?.shape ?? null, opts);
    // [outC, inC, kH, kW] → tfjs filter layout [kH, kW, inC, outC].
    const filter = tf.transpose(w, [2, 3, 1, 0]) as TF.Tensor4D;
    let y: TF.Tensor = tf.conv2d(x.t as TF.Tensor4D, filter, opts.stride, opts.pad);
    if (b) y = tf.add(y, b);
    return { t: y, shape };
  }

  linear(x: TfValue, w: TF.Tensor, b: TF.Tensor | null): TfValue {
    const { tf } = this;
    const shape = S.linearShape(x.shape, w.shape, b?.shape ?? null);
    let y: TF.Tensor = tf.matMul(x.t as TF.Tensor2D, w as TF.Tensor2D, false, true);
    if (b) y = tf.add(y, b);
    return { t: y, shape };
  }

  groupNorm(x: TfValue, groups: number): TfValue {
    const { tf } = this;
    const shape = S.groupNormShape(x.shape, groups);
    if (shape.length !== 3) throw new Error(`groupNorm (tfjs): expects [C, H, W], got [${shape}]`);
    const [c, h, w] = shape as [number, number, number];
    const n = x.t.shape[0]!;
    // [N, H, W, C] → [N, H, W, G, C/G]; statistics over (H, W, C/G) of each (example, group), biased variance.
    const grouped = tf.reshape(x.t, [n, h, w, groups, c / groups]);
    const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
    const normed = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, GN_EPS)));
    return { t: tf.reshape(normed, [n, h, w, c]), shape };
  }

  act(x: TfValue, kind: Activation): TfValue {
    const { tf } = this;
    let y: TF.Tensor;
    switch (kind) {
      case 'relu':
        y = tf.relu(x.t);
        break;
      case 'hardswish':
        // x · relu6(x + 3) / 6 (PyTorch's Hardswish).
        y = tf.mul(x.t, tf.div(tf.relu6(tf.add(x.t, 3)), 6));
        break;
      case 'selu':
        // tfjs uses PyTorch's constants (α = 1.6732632…, λ = 1.0507009…).
        y = tf.selu(x.t);
        break;
      case 'gelu':
        // Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch's default, ONNX Gelu approximate='none').
        y = tf.mul(tf.mul(x.t, 0.5), tf.add(tf.erf(tf.mul(x.t, Math.SQRT1_2)), 1));
        break;
      default:
        throw new Error(`unknown activation ${JSON.stringify(kind)}`);
    }
    return { t: y, shape: x.shape };
  }

  maxPool(x: TfValue, k: number, stride: number): TfValue {
    const shape = S.maxPoolShape(x.shape, k, stride);
    return { t: this.tf.maxPool(x.t as TF.Tensor4D, [k, k], [stride, stride], 'valid'), shape };
  }

  globalAvgPool(x: TfValue): TfValue {
    const shape = S.globalAvgPoolShape(x.shape);
    return { t: this.tf.mean(x.t, [1, 2], true), shape };
  }

  flatten(x: TfValue): TfValue {
    const { tf } = this;
    const shape = S.flattenShape(x.shape);
    if (x.shape.length === 1) return x;
    const n = x.t.shape[0]!;
    const spatial = x.shape.length === 3 ? x.shape[1]! * x.shape[2]! : 1;
    // Channel-major order as in PyTorch: NHWC → NCHW before the reshape (a no-op when H = W = 1).
    const t = spatial === 1 ? x.t : tf.transpose(x.t, [0, 3, 1, 2]);
    return { t: tf.reshape(t, [n, shape[0]!]), shape };
  }

  add(a: TfValue, b: TfValue): TfValue {
    const shape = S.addShape(a.shape, b.shape);
    return { t: this.tf.add(a.t, b.t), shape };
  }
}
