// Exponential moving average of the weights, reproducing torch_ema.ExponentialMovingAverage with
// use_num_updates=True (as the official BAFFLE code uses it):
//
//   on each update():   t += 1
//                       decay_t = min(decay, (1 + t) / (10 + t))
//                       shadow  = shadow - (1 - decay_t) · (shadow - params)
//                               (= decay_t·shadow + (1 - decay_t)·params)
//
// Note that torch_ema increments the counter *before* computing the decay, so the first update uses
// t = 1 (decay 2/11 ≈ 0.182), the second t = 2 (3/12 = 0.25), … With decay 0.995 the warm-up cap
// stops binding at t ≥ 1790. The shadow starts as a copy of the weights given to the constructor.

export type EmaState = Record<string, Float32Array | number>;

/**
 * The decay used by the update that brings the update count to `t` (t = 1 for the first update):
 * min(decay, (1 + t) / (10 + t)).
 */
export function emaDecayAt(t: number, decay: number): number {
  return Math.min(decay, (1 + t) / (10 + t));
}

export class Ema {
  readonly decay: number;
  private readonly shadow: Float32Array;
  private t = 0;

  /** @param initial the weights to start from (copied); @param decay in [0, 1], BAFFLE uses 0.995 */
  constructor(initial: Float32Array, decay: number) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`Ema: decay must be in [0, 1], got ${decay}`);
    this.decay = decay;
    this.shadow = initial.slice();
  }

  /** Number of updates applied so far. */
  get updates(): number {
    return this.t;
  }

  /** The decay the next update() will use. */
  nextDecay(): number {
    return emaDecayAt(this.t + 1, this.decay);
  }

  /** Fold the current weights into the average. Returns the decay used. No allocation. */
  update(params: Float32Array): number {
    if (params.length !== this.shadow.length) {
      throw new RangeError(`Ema.update: expected ${this.shadow.length} weights, got ${params.length}`);
    }
    this.t++;
    const d = emaDecayAt(this.t, this.decay);
    const w = 1 - d;
    const s = this.shadow;
    for (let i = 0; i < s.length; i++) {
      const si = s[i]!;
      s[i] = si - w * (si - params[i]!);
    }
    return d;
  }

  /** The averaged weights (a live view; copy it if you will keep it across updates). */
  weights(): Float32Array {
    return this.shadow;
  }

  /** Copy the averaged weights into `out`. */
  copyTo(out: Float32Array): void {
    if (out.length !== this.shadow.length) {
      throw new RangeError(`Ema.copyTo: expected ${this.shadow.length} weights, got ${out.length}`);
    }
    out.set(this.shadow);
  }

  state(): EmaState {
    return { updates: this.t, decay: this.decay, shadow: this.shadow.slice() };
  }

  /** Restore a state from state(). The decay stays the one given to the constructor. */
  loadState(s: EmaState): void {
    const u = s['updates'];
    const sh = s['shadow'];
    if (typeof u !== 'number' || !Number.isInteger(u) || u < 0) {
      throw new TypeError(`Ema.loadState: "updates" must be a non-negative integer, got ${String(u)}`);
    }
    if (!(sh instanceof Float32Array) || sh.length !== this.shadow.length) {
      throw new RangeError(`Ema.loadState: "shadow" must be a Float32Array of length ${this.shadow.length}`);
    }
    this.shadow.set(sh);
    this.t = u;
  }
}
