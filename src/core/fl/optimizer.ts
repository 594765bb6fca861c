// Optimizers over a flat Float32Array parameter vector, reproducing torch.optim.Adam and
// torch.optim.SGD (single-tensor, non-fused code path, default flags) update formulas.
//
// State is kept in Float32Array (like PyTorch fp32 state); each element's update is computed in
// float64 and rounded once on store, so results agree with PyTorch to float32 rounding.
// `step` allocates nothing.

export type OptimizerState = Record<string, Float32Array | number>;

export interface Optimizer {
  /** Parameter count this optimizer was built for. */
  readonly size: number;
  /** One update of `params` in place with gradient `grad` (not modified) and learning rate `lr`. */
  step(params: Float32Array, grad: Float32Array, lr: number): void;
  /** A copy of the optimizer state (for checkpoints). */
  state(): OptimizerState;
  /** Restore a state produced by `state()` of an optimizer of the same kind and size (copied in). */
  loadState(s: OptimizerState): void;
}

function checkLengths(name: string, n: number, params: Float32Array, grad: Float32Array): void {
  if (params.length !== n || grad.length !== n) {
    throw new RangeError(
      `${name}.step: expected params and grad of length ${n}, got ${params.length} and ${grad.length}`,
    );
  }
}

function checkLr(name: string, lr: number): void {
  if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`${name}.step: lr must be finite and ≥ 0, got ${lr}`);
}

function loadArray(name: string, s: OptimizerState, key: string, into: Float32Array): void {
  const v = s[key];
  if (!(v instanceof Float32Array)) throw new TypeError(`${name}.loadState: missing Float32Array "${key}"`);
  if (v.length !== into.length) {
    throw new RangeError(`${name}.loadState: "${key}" has length ${v.length}, expected ${into.length}`);
  }
  into.set(v);
}

function loadStep(name: string, s: OptimizerState): number {
  const v = s['step'];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new TypeError(`${name}.loadState: "step" must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}

export interface AdamOptions {
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  /** L2 penalty added to the gradient (torch.optim.Adam semantics, not AdamW). Default 0. */
  weightDecay?: number;
}

/**
 * torch.optim.Adam (amsgrad=false, maximize=false). Per step t (1-based):
 *   g   = grad + wd·p
 *   m   = m + (1-β1)(g - m)            (= β1·m + (1-β1)·g, PyTorch's lerp)
 *   v   = β2·v + (1-β2)·g²
 *   bc1 = 1 - β1^t,  bc2 = 1 - β2^t
 *   p  -= (lr / bc1) · m / (sqrt(v)/sqrt(bc2) + eps)
 */
export class Adam implements Optimizer {
  readonly size: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private t = 0;
  private readonly m: Float32Array;
  private readonly v: Float32Array;

  constructor(n: number, opts: AdamOptions = {}) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`Adam: size must be a non-negative integer, got ${n}`);
    this.size = n;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [k, b] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const) {
      if (!(b >= 0 && b < 1)) throw new RangeError(`Adam: ${k} must be in [0, 1), got ${b}`);
    }
    if (!(this.eps >= 0)) throw new RangeError(`Adam: eps must be ≥ 0, got ${this.eps}`);
    if (!(this.weightDecay >= 0)) throw new RangeError(`Adam: weightDecay must be ≥ 0, got ${this.weightDecay}`);
    this.m = new Float32Array(n);
    this.v = new Float32Array(n);
  }

  /** Number of steps taken so far. */
  get steps(): number {
    return this.t;
  }

  step(params: Float32Array, grad: Float32Array, lr: number): void {
    checkLengths('Adam', this.size, params, grad);
    checkLr('Adam', lr);
    const t = ++this.t;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const wd = this.weightDecay;
    const eps = this.eps;
    const bc1 = 1 - Math.pow(b1, t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
    const stepSize = lr / bc1;
    const m = this.m;
    const v = this.v;
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      const g = wd !== 0 ? grad[i]! + wd * p : grad[i]!;
      const mi = m[i]!;
      // Stored state is float32 (as in PyTorch); continue with the rounded values.
      const mNew = (m[i] = Math.fround(mi + (1 - b1) * (g - mi)));
      const vNew = (v[i] = Math.fround(b2 * v[i]! + (1 - b2) * g * g));
      params[i] = p - (stepSize * mNew) / (Math.sqrt(vNew) / bc2Sqrt + eps);
    }
  }

  state(): OptimizerState {
    return { step: this.t, m: this.m.slice(), v: this.v.slice() };
  }

  loadState(s: OptimizerState): void {
    const step = loadStep('Adam', s);
    loadArray('Adam', s, 'm', this.m);
    loadArray('Adam', s, 'v', this.v);
    this.t = step;
  }
}

export interface SgdOptions {
  /** Momentum factor, default 0 (plain SGD). Dampening 0, Nesterov off. */
  momentum?: number;
  /** L2 penalty added to the gradient. Default 0. */
  weightDecay?: number;
}

/**
 * torch.optim.SGD (dampening=0, nesterov=false, maximize=false):
 *   d = grad + wd·p
 *   if momentum ≠ 0: buf = d on the first step, else buf = momentum·buf + d;  d = buf
 *   p -= lr · d
 */
export class SGD implements Optimizer {
  readonly size: number;
  readonly momentum: number;
  readonly weightDecay: number;
  private t = 0;
  private readonly buf: Float32Array;

  constructor(n: number, opts: SgdOptions = {}) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`SGD: size must be a non-negative integer, got ${n}`);
    this.size = n;
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    if (!(this.momentum >= 0)) throw new RangeError(`SGD: momentum must be ≥ 0, got ${this.momentum}`);
    if (!(this.weightDecay >= 0)) throw new RangeError(`SGD: weightDecay must be ≥ 0, got ${this.weightDecay}`);
    this.buf = new Float32Array(this.momentum !== 0 ? n : 0);
  }

  get steps(): number {
    return this.t;
  }

  step(params: Float32Array, grad: Float32Array, lr: number): void {
    checkLengths('SGD', this.size, params, grad);
    checkLr('SGD', lr);
    const first = this.t === 0;
    this.t++;
    const wd = this.weightDecay;
    const mu = this.momentum;
    const buf = this.buf;
    if (mu === 0) {
      for (let i = 0; i < params.length; i++) {
        const p = params[i]!;
        const d = wd !== 0 ? grad[i]! + wd * p : grad[i]!;
        params[i] = p - lr * d;
      }
      return;
    }
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      const d = wd !== 0 ? grad[i]! + wd * p : grad[i]!;
      const b = (buf[i] = Math.fround(first ? d : mu * buf[i]! + d));
      params[i] = p - lr * b;
    }
  }

  state(): OptimizerState {
    const s: OptimizerState = { step: this.t };
    if (this.momentum !== 0) s['momentumBuffer'] = this.buf.slice();
    return s;
  }

  loadState(s: OptimizerState): void {
    const step = loadStep('SGD', s);
    if (this.momentum !== 0 && step > 0) loadArray('SGD', s, 'momentumBuffer', this.buf);
    else this.buf.fill(0);
    this.t = step;
  }
}

export interface OptimizerConfig {
  optimizer: 'adam' | 'sgd';
  /** Adam β1 (default 0.9). */
  beta1?: number;
  /** Adam β2 (default 0.999, PyTorch's; the BAFFLE recipe uses 0.99). */
  beta2?: number;
  /** Adam ε (default 1e-8). */
  eps?: number;
  /** SGD momentum (default 0). */
  momentum?: number;
  /** L2 weight decay added to the gradient, both optimizers (default 0; the BAFFLE recipe uses 5e-4). */
  weightDecay?: number;
}

/** Build the optimizer named by `cfg` for `n` parameters. */
export function makeOptimizer(cfg: OptimizerConfig, n: number): Optimizer {
  switch (cfg.optimizer) {
    case 'adam': {
      const o: AdamOptions = {};
      if (cfg.beta1 !== undefined) o.beta1 = cfg.beta1;
      if (cfg.beta2 !== undefined) o.beta2 = cfg.beta2;
      if (cfg.eps !== undefined) o.eps = cfg.eps;
      if (cfg.weightDecay !== undefined) o.weightDecay = cfg.weightDecay;
      return new Adam(n, o);
    }
    case 'sgd': {
      const o: SgdOptions = {};
      if (cfg.momentum !== undefined) o.momentum = cfg.momentum;
      if (cfg.weightDecay !== undefined) o.weightDecay = cfg.weightDecay;
      return new SGD(n, o);
    }
    default:
      throw new RangeError(
        `makeOptimizer: unknown optimizer ${JSON.stringify((cfg as { optimizer?: unknown }).optimizer)} (expected adam or sgd)`,
      );
  }
}
