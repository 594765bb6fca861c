/**
 * Analytic cost of a forward pass, counted over the one model definition (src/core/model/zoo.ts): FlopCounter is
 * one more Ops implementation — the layout recorder plus a MAC tally — so the count can never drift from
 * the graph that onnxruntime runs.
 *
 * Counted per example (batch excluded):
 *   - macs:  multiply-accumulates of conv2d (outC·inC·kH·kW·oH·oW) and linear (in·out), the usual "FLOPs = 2·MACs"
 *            convention; GFLOP/s figures in the bench use 2·macs.
 *   - other: element-wise operations of the rest (bias adds, GroupNorm ≈ 5/element, activations, pooling
 *            window reads, residual adds, the loss is ignored) — reported separately, never added to FLOP/s.
 */
import { defineModel } from '../src/core/model/index.ts';
import { LayoutRecorder, type ShapeOnly } from '../src/core/model/layout.ts';
import type { ConvOptions } from '../src/core/model/ops.ts';
import { sizeOf } from '../src/core/model/shapes.ts';
import type { Activation, ModelConfig, ParamSpec } from '../src/core/model/types.ts';

export interface ForwardCost {
  /** Multiply-accumulates per example (conv + linear). */
  macs: number;
  /** Other element-wise operations per example (not counted in FLOP/s). */
  other: number;
  /** Parameters n. */
  params: number;
  /** MACs per layer, in forward order (name of the weight → MACs), for the report. */
  layers: { name: string; macs: number }[];
}

export class FlopCounter extends LayoutRecorder {
  macs = 0;
  other = 0;
  readonly layers: { name: string; macs: number }[] = [];

  override conv2d(x: ShapeOnly, w: ParamSpec, b: ParamSpec | null, opts: ConvOptions): ShapeOnly {
    const y = super.conv2d(x, w, b, opts);
    const [outC, inC, kh, kw] = w.shape as [number, number, number, number];
    const [, oh, ow] = y.shape as [number, number, number];
    const macs = outC * inC * kh * kw * oh * ow;
    this.macs += macs;
    this.layers.push({ name: w.name, macs });
    if (b) this.other += sizeOf(y.shape);
    return y;
  }
  override linear(x: ShapeOnly, w: ParamSpec, b: ParamSpec | null): ShapeOnly {
    const y = super.linear(x, w, b);
    const macs = w.shape[0]! * w.shape[1]!;
    this.macs += macs;
    this.layers.push({ name: w.name, macs });
    if (b) this.other += sizeOf(y.shape);
    return y;
  }
  override groupNorm(x: ShapeOnly, groups: number): ShapeOnly {
    this.other += 5 * sizeOf(x.shape); // mean, centre, square, sum, scale
    return super.groupNorm(x, groups);
  }
  override act(x: ShapeOnly, kind: Activation): ShapeOnly {
    this.other += (kind === 'relu' ? 1 : 4) * sizeOf(x.shape);
    return super.act(x, kind);
  }
  override maxPool(x: ShapeOnly, k: number, stride: number): ShapeOnly {
    const y = super.maxPool(x, k, stride);
    this.other += k * k * sizeOf(y.shape);
    return y;
  }
  override globalAvgPool(x: ShapeOnly): ShapeOnly {
    this.other += sizeOf(x.shape);
    return super.globalAvgPool(x);
  }
  override add(a: ShapeOnly, b: ShapeOnly): ShapeOnly {
    this.other += sizeOf(a.shape);
    return super.add(a, b);
  }
}

/** Forward cost of `config` per example, from its definition in the zoo. */
export function forwardCost(config: ModelConfig): ForwardCost {
  const counter = new FlopCounter();
  defineModel(config)(counter, { shape: [...config.inputShape] });
  return { macs: counter.macs, other: counter.other, params: counter.layout().size, layers: [...counter.layers] };
}

/**
 * Hand-derived MAC counts of two zoo models, a guard on the counter itself (run.ts checks them on start).
 * LeNet 1×32×32: conv1 16·1·25·32·32 + conv2 64·16·25·16·16 + fc 64·10.
 */
export function selfCheck(): void {
  const base = { activation: 'hardswish', hidden: [128], depth: 10, width: 2, classes: 10 } as const;
  const lenet = forwardCost({ ...base, hidden: [], model: 'lenet', norm: 'none', inputShape: [1, 32, 32] });
  const lenetMacs = 16 * 1 * 25 * 32 * 32 + 64 * 16 * 25 * 16 * 16 + 64 * 10;
  if (lenet.macs !== lenetMacs || lenet.params !== 26_730) {
    throw new Error(`FlopCounter self-check: LeNet ${lenet.macs} MACs / ${lenet.params} params, expected ${lenetMacs} / 26730`);
  }
  const mlp = forwardCost({ ...base, hidden: [128], model: 'mlp', norm: 'none', inputShape: [1, 32, 32] });
  if (mlp.macs !== 1024 * 128 + 128 * 10 || mlp.params !== 1024 * 128 + 128 + 128 * 10 + 10) {
    throw new Error(`FlopCounter self-check: MLP ${mlp.macs} MACs / ${mlp.params} params`);
  }
}
