import type { ModelDef } from './ops.ts';

// Shared model types. One model description yields the parameter layout, the ONNX graph and the
// pure-TS reference forward (see docs/architecture.md).

export type Activation = 'hardswish' | 'relu' | 'selu' | 'gelu';
export type Norm = 'groupnorm' | 'none';
export type ModelName = 'mlp' | 'lenet' | 'wrn';

/** What the user asks for; `norm: 'batchnorm'` is refused by buildModel with an explanation. */
export interface ModelConfig {
  model: ModelName;
  activation: Activation;
  norm: Norm | 'batchnorm';
  /** MLP hidden layer sizes, e.g. [128]. */
  hidden: number[];
  /** WRN depth (d, with (d-4) % 6 === 0) and widen factor (w). */
  depth: number;
  width: number;
  /** Input image shape [channels, height, width] and number of classes (from the dataset). */
  inputShape: [number, number, number];
  classes: number;
}

/** How a parameter is initialised (PyTorch-style defaults). */
export type InitSpec =
  | { kind: 'uniform'; bound: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

export interface ParamSpec {
  /** Stable, unique name, also the ONNX graph input name, e.g. "conv1.weight". */
  name: string;
  shape: number[];
  /** Offset (in elements) of this parameter in the flat weight vector. */
  offset: number;
  size: number;
  init: InitSpec;
}

export interface ParamLayout {
  params: ParamSpec[];
  /** Total number of parameters n. */
  size: number;
}

export interface BuiltModel {
  config: ModelConfig;
  layout: ParamLayout;
  /** The definition itself (for the ONNX emitter, the tfjs baseline and the FLOP counter). */
  def: ModelDef;
  /** Elements of the largest tensor of a forward pass (input and every op's output), per example. */
  largestActivation: number;
  /** Pure-TS reference forward: logits [B * classes] for a batch of B inputs (x is [B*C*H*W]). */
  referenceLogits(weights: Float32Array, x: Float32Array, batch: number): Float32Array;
  /** Fresh weights initialised from `seed` exactly as the reference code's distributions say. */
  initWeights(seed: number): Float32Array;
}
