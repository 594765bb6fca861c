// The architectures, each written once against Ops (see ops.ts). Everything else — layout, ONNX graph,
// reference forward, initialisation — is derived from these functions.

import type { ModelDef, Ops } from './ops.ts';
import type { Activation, InitSpec, ModelConfig, Norm } from './types.ts';

const ACTIVATIONS: readonly Activation[] = ['hardswish', 'relu', 'selu', 'gelu'];
const NORMS: readonly Norm[] = ['groupnorm', 'none'];

/** Why BAFFLE refuses BatchNorm (spec §4). */
export const BATCHNORM_REFUSAL =
  "norm: 'batchnorm' is not supported in BAFFLE. Every client runs K perturbed forward passes in train " +
  'mode on the same minibatch, which would overwrite BatchNorm running statistics with statistics of ' +
  'perturbed models, and batch statistics are fragile when client data is non-IID. ' +
  "Use norm: 'groupnorm' (groups = max(2, C/16), no affine) or norm: 'none'.";

// ---- initialisers (PyTorch conventions, fan_in = inC·kH·kW for convs, `in` for linear) ----

/** PyTorch's default for nn.Conv2d / nn.Linear weights and biases: kaiming_uniform(a=√5) = U(±1/√fan_in). */
export function torchDefault(fanIn: number): InitSpec {
  return { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) };
}
/** Kaiming-uniform with ReLU gain √2 on fan_in: U(±√(6/fan_in)). */
export function kaimingUniform(fanIn: number): InitSpec {
  return { kind: 'uniform', bound: Math.sqrt(6 / fanIn) };
}
/** Xavier/Glorot-uniform: U(±√(6/(fan_in+fan_out))). */
export function xavierUniform(fanIn: number, fanOut: number): InitSpec {
  return { kind: 'uniform', bound: Math.sqrt(6 / (fanIn + fanOut)) };
}
const ZEROS: InitSpec = { kind: 'zeros' };

/** GroupNorm group count used throughout: max(2, ⌊C/16⌋). */
export function gnGroups(channels: number): number {
  return Math.max(2, Math.floor(channels / 16));
}

function normAct<T, P>(ops: Ops<T, P>, x: T, norm: Norm, act: Activation): T {
  const y = norm === 'groupnorm' ? ops.groupNorm(x, gnGroups(ops.shape(x)[0]!)) : x;
  return ops.act(y, act);
}

// ---- MLP: flatten → [linear → act]* → linear ----

export function mlp(hidden: readonly number[], classes: number, act: Activation): ModelDef {
  return (ops, x) => {
    let h = ops.flatten(x);
    const widths = [...hidden, classes];
    widths.forEach((out, i) => {
      const fanIn = ops.shape(h)[0]!;
      const name = i === hidden.length ? 'fc_out' : `fc${i + 1}`;
      const w = ops.param(`${name}.weight`, [out, fanIn], torchDefault(fanIn));
      const b = ops.param(`${name}.bias`, [out], torchDefault(fanIn));
      h = ops.linear(h, w, b);
      if (i < hidden.length) h = ops.act(h, act);
    });
    return h;
  };
}

// ---- LeNet (BAFFLE's variant) ----

export function lenet(classes: number, norm: Norm, act: Activation): ModelDef {
  return (ops, x) => {
    const conv = (h: typeof x, name: string, out: number) => {
      const inC = ops.shape(h)[0]!;
      const fanIn = inC * 25;
      const w = ops.param(`${name}.weight`, [out, inC, 5, 5], torchDefault(fanIn));
      const b = ops.param(`${name}.bias`, [out], torchDefault(fanIn));
      return ops.conv2d(h, w, b, { stride: 1, pad: 2 });
    };
    let h = conv(x, 'conv1', 16);
    h = normAct(ops, h, norm, act);
    h = ops.maxPool(h, 2, 2);
    h = conv(h, 'conv2', 64);
    h = normAct(ops, h, norm, act);
    h = ops.flatten(ops.globalAvgPool(h));
    const fanIn = ops.shape(h)[0]!;
    const w = ops.param('fc.weight', [classes, fanIn], torchDefault(fanIn));
    const b = ops.param('fc.bias', [classes], torchDefault(fanIn));
    return ops.linear(h, w, b);
  };
}

// ---- WRN-d-w, pre-activation ----

export function wrn(depth: number, width: number, classes: number, norm: Norm, act: Activation): ModelDef {
  const units = (depth - 4) / 6;
  const widths = [16 * width, 32 * width, 64 * width];
  return (ops, x) => {
    const conv3 = (name: string, inC: number, outC: number) =>
      ops.param(name, [outC, inC, 3, 3], kaimingUniform(inC * 9));

    let h = ops.conv2d(x, conv3('stem.weight', ops.shape(x)[0]!, 16), null, { stride: 1, pad: 1 });
    widths.forEach((outC, s) => {
      for (let u = 0; u < units; u++) {
        const prefix = `stage${s + 1}.${u}`;
        const inC = ops.shape(h)[0]!;
        const stride = u === 0 && s > 0 ? 2 : 1;
        const projected = inC !== outC || stride !== 1;
        const w1 = conv3(`${prefix}.conv1.weight`, inC, outC);
        const w2 = conv3(`${prefix}.conv2.weight`, outC, outC);
        const ws = projected ? ops.param(`${prefix}.shortcut.weight`, [outC, inC, 1, 1], kaimingUniform(inC)) : null;

        const pre = normAct(ops, h, norm, act);
        let r = ops.conv2d(pre, w1, null, { stride, pad: 1 });
        r = normAct(ops, r, norm, act);
        r = ops.conv2d(r, w2, null, { stride: 1, pad: 1 });
        // Standard WRN: the projection shortcut sees the pre-activated input, the identity the raw one.
        const shortcut = ws ? ops.conv2d(pre, ws, null, { stride, pad: 0 }) : h;
        h = ops.add(r, shortcut);
      }
    });
    h = normAct(ops, h, norm, act);
    h = ops.flatten(ops.globalAvgPool(h));
    const fanIn = ops.shape(h)[0]!;
    const w = ops.param('fc.weight', [classes, fanIn], xavierUniform(fanIn, classes));
    const b = ops.param('fc.bias', [classes], ZEROS);
    return ops.linear(h, w, b);
  };
}

// ---- config → definition ----

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Validates `config` (throwing errors that name the offending key) and returns its model definition. */
export function defineModel(config: ModelConfig): ModelDef {
  const { model, activation, norm, inputShape, classes } = config;
  if ((norm as string) === 'batchnorm') throw new Error(BATCHNORM_REFUSAL);
  if (!NORMS.includes(norm as Norm)) {
    throw new Error(`model config key 'norm': unknown value ${JSON.stringify(norm)} (use 'groupnorm' or 'none')`);
  }
  if (!ACTIVATIONS.includes(activation)) {
    throw new Error(
      `model config key 'activation': unknown value ${JSON.stringify(activation)} (use one of ${ACTIVATIONS.join(', ')})`,
    );
  }
  if (!Array.isArray(inputShape) || inputShape.length !== 3 || !inputShape.every(isPosInt)) {
    throw new Error(`model config key 'inputShape': expected [channels, height, width] of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  if (!isPosInt(classes) || classes < 2) {
    throw new Error(`model config key 'classes': expected an integer ≥ 2, got ${JSON.stringify(classes)}`);
  }
  const n = norm as Norm;
  switch (model) {
    case 'mlp': {
      const { hidden } = config;
      if (!Array.isArray(hidden) || !hidden.every(isPosInt)) {
        throw new Error(`model config key 'hidden': expected a list of positive integers, got ${JSON.stringify(hidden)}`);
      }
      if (n !== 'none') {
        throw new Error(
          "model config key 'norm': the mlp has no normalisation layers; set norm: 'none' " +
            `(got ${JSON.stringify(norm)})`,
        );
      }
      return mlp(hidden, classes, activation);
    }
    case 'lenet': {
      if (inputShape[1] < 2 || inputShape[2] < 2) {
        throw new Error(`model config key 'inputShape': lenet needs images of at least 2×2, got ${JSON.stringify(inputShape)}`);
      }
      return lenet(classes, n, activation);
    }
    case 'wrn': {
      const { depth, width } = config;
      if (!isPosInt(depth) || depth < 10 || (depth - 4) % 6 !== 0) {
        throw new Error(
          `model config key 'depth': WRN depth d must satisfy (d − 4) % 6 === 0 with d ≥ 10 (10, 16, 22, 28, …), got ${JSON.stringify(depth)}`,
        );
      }
      if (!isPosInt(width)) {
        throw new Error(`model config key 'width': WRN widen factor must be a positive integer, got ${JSON.stringify(width)}`);
      }
      return wrn(depth, width, classes, n, activation);
    }
    default:
      throw new Error(`model config key 'model': unknown model ${JSON.stringify(model)} (use 'mlp', 'lenet' or 'wrn')`);
  }
}
