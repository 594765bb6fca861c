// The one interface every model definition in zoo.ts is written against. Each architecture is a single
// function generic over Ops; implementations of Ops turn that one definition into
//   - the parameter layout (layout.ts: a recorder that only infers shapes),
//   - the ONNX graph (onnxGraph.ts: emits nodes, parameters become graph inputs),
//   - the pure-TS reference forward (reference.ts: the test oracle),
//   - (later) an autograd baseline (tfjs).
//
// Conventions (PyTorch's):
//   - activations are batched NCHW (or [N, F] after flatten); `shape()` reports the per-example part
//     (batch excluded), e.g. [C, H, W] or [F];
//   - conv weights are [outC, inC, kH, kW], linear weights [out, in] (y = x·Wᵀ + b);
//   - parameters are declared in forward order with `param()`; declaration order is the layout order.

import type { Activation, InitSpec } from './types.ts';

export interface ConvOptions {
  stride: number;
  /** Symmetric zero padding on every spatial side. */
  pad: number;
}

/**
 * `T` is an activation handle, `P` a parameter handle (the same type where an implementation does not
 * distinguish them, e.g. a tensor library).
 */
export interface Ops<T, P = T> {
  /** Per-example shape of an activation (batch dimension excluded). */
  shape(x: T): readonly number[];
  /** Declares the next parameter. Names are unique and stable: they name ONNX graph inputs. */
  param(name: string, shape: readonly number[], init: InitSpec): P;
  /** 2-D convolution; kernel size is taken from w ([outC, inC, kH, kW]); b is [outC] or null. */
  conv2d(x: T, w: P, b: P | null, opts: ConvOptions): T;
  /** Fully connected layer on [N, in]: x·wᵀ + b, w is [out, in], b is [out] or null. */
  linear(x: T, w: P, b: P | null): T;
  /** GroupNorm without affine parameters (eps 1e-5, biased variance), `groups` must divide C. */
  groupNorm(x: T, groups: number): T;
  act(x: T, kind: Activation): T;
  /** Max pooling, square window k, no padding, floor mode. */
  maxPool(x: T, k: number, stride: number): T;
  /** Mean over H and W: [C, H, W] → [C, 1, 1]. */
  globalAvgPool(x: T): T;
  /** [d1, d2, …] → [d1·d2·…]. */
  flatten(x: T): T;
  /** Element-wise sum of two activations of the same shape. */
  add(a: T, b: T): T;
}

/** A model definition: input activation in, logits ([classes] per example) out. */
export type ModelDef = <T, P>(ops: Ops<T, P>, x: T) => T;

/** GroupNorm epsilon, as PyTorch's nn.GroupNorm default. */
export const GN_EPS = 1e-5;
