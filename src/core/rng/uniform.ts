/**
 * UniformRng: a small seeded generator for the server / simulation side (parameter init, data partitioning,
 * client sampling, Dirichlet splits). xoshiro128** (Blackman & Vigna) with the 128-bit state
 * seedState(seed, 0, 0, UNIFORM_DOMAIN = 0xBAFF1E02) (hash.ts), so UniformRng(s) never shares a stream with the
 * directions. Everything is pure 32-bit integer / IEEE float64 arithmetic; `normal()` and `gamma()` use the
 * deterministic dexp/dlog of detmath.ts and Math.sqrt (correctly rounded by IEEE-754), so the whole class
 * gives the same numbers on every JS engine.
 *
 * Sampling definitions (each consumes the stated number of 32-bit outputs u0, u1, ... in order):
 *  - nextUint32(): one output.
 *  - nextFloat(): 53-bit, ((u0 >>> 5) * 2^26 + (u1 >>> 6)) * 2^-53, in [0, 1). Two outputs.
 *  - nextFloat32(): 24-bit, (u0 >>> 8) * 2^-24, in [0, 1). One output.
 *  - nextInt(n), integer 1 <= n <= 2^32: unbiased rejection: draw u until u < 2^32 - (2^32 mod n), return u mod n.
 *    For 2^32 < n <= 2^53: the same with 53-bit values (nextFloat() * 2^53).
 *  - shuffle(a): Fisher–Yates, for i = len-1 down to 1: swap a[i], a[nextInt(i + 1)].
 *  - normal(): N(0,1) by the same 128-layer Ziggurat as the directions (tables of zigtables.ts), using one
 *    stream sequentially: try r; fast accept if m < K[layer]; else tail / wedge with the following outputs;
 *    on rejection a new try. Returns the float64 value (not rounded to float32).
 *  - gamma(shape): Marsaglia & Tsang (2000); for shape < 1, gamma(shape + 1) * U^(1/shape), U = 1 - nextFloat().
 *  - dirichlet(alpha): independent gamma(alpha_i), normalised by their sum.
 */
import { dexp, dlog } from './detmath.ts';
import { checkU32, seedState, UNIFORM_DOMAIN } from './hash.ts';
import { ZIG_F, ZIG_K, ZIG_R, ZIG_W } from './zigtables.ts';

const TWO_M32 = 2.3283064365386963e-10; // 2^-32
const TWO_M24 = 5.960464477539063e-8; // 2^-24
const TWO_M53 = 1.1102230246251565e-16; // 2^-53
const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
const KT = ZIG_K;
const WT = ZIG_W;
const FT = ZIG_F;
const R = ZIG_R;

/** Generator state for checkpointing: the four xoshiro128** words as uint32. */
export type UniformRngState = [number, number, number, number];

interface Indexable<T> {
  length: number;
  [i: number]: T;
}

export class UniformRng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** seed: uint32 (e.g. from mixSeed(runSeed, purpose, ...)). */
  constructor(seed: number) {
    checkU32(seed, 'seed');
    const st = new Int32Array(4);
    seedState(seed, 0, 0, UNIFORM_DOMAIN, st);
    this.s0 = st[0]!;
    this.s1 = st[1]!;
    this.s2 = st[2]!;
    this.s3 = st[3]!;
  }

  /** A generator positioned at a saved state. */
  static fromState(state: readonly number[]): UniformRng {
    const g = new UniformRng(0);
    g.setState(state);
    return g;
  }

  getState(): UniformRngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new RangeError('UniformRng state must have 4 words');
    for (let i = 0; i < 4; i++) checkU32(state[i]!, `state[${i}]`);
    if ((state[0]! | state[1]! | state[2]! | state[3]!) === 0) throw new RangeError('all-zero xoshiro state');
    this.s0 = state[0]! | 0;
    this.s1 = state[1]! | 0;
    this.s2 = state[2]! | 0;
    this.s3 = state[3]! | 0;
  }

  clone(): UniformRng {
    return UniformRng.fromState(this.getState());
  }

  /** Next 32-bit output as int32 (internal). */
  private next(): number {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    let r = Math.imul(s1, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return r;
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    return this.next() >>> 0;
  }

  /** Uniform float64 in [0, 1) with 53 random bits (two outputs). */
  nextFloat(): number {
    const a = this.next() >>> 5;
    const b = this.next() >>> 6;
    return (a * 67108864 + b) * TWO_M53;
  }

  /** Uniform in [0, 1) with 24 random bits (one output); exactly representable as float32. */
  nextFloat32(): number {
    return (this.next() >>> 8) * TWO_M24;
  }

  /** Unbiased uniform integer in [0, n), n an integer in [1, 2^53]. */
  nextInt(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= TWO_53)) {
      throw new RangeError(`nextInt: n must be an integer in [1, 2^53], got ${String(n)}`);
    }
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n);
      let u = this.next() >>> 0;
      while (u >= limit) u = this.next() >>> 0;
      return u % n;
    }
    const limit = TWO_53 - (TWO_53 % n);
    let u = this.nextFloat() * TWO_53;
    while (u >= limit) u = this.nextFloat() * TWO_53;
    return u % n;
  }

  /** In-place Fisher–Yates shuffle; returns the same array. */
  shuffle<A extends Indexable<unknown>>(a: A): A {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** Standard normal N(0, 1) (Ziggurat, deterministic across engines). */
  normal(): number {
    for (;;) {
      const r = this.next();
      const layer = r & 127;
      const j = r >> 7;
      const x = (j + 0.5) * WT[layer]!;
      if ((j ^ (j >> 31)) < KT[layer]!) return x;
      if (layer === 0) {
        let a: number;
        let c: number;
        do {
          a = -dlog(((this.next() >>> 0) + 0.5) * TWO_M32) / R;
          c = -dlog(((this.next() >>> 0) + 0.5) * TWO_M32);
        } while (c + c < a * a);
        return j < 0 ? -(R + a) : R + a;
      }
      const f0 = FT[layer]!;
      const y = f0 + ((this.next() >>> 0) + 0.5) * TWO_M32 * (FT[layer + 1]! - f0);
      if (y < dexp(-0.5 * x * x)) return x;
    }
  }

  /** Gamma(shape, 1), shape > 0 (Marsaglia & Tsang 2000). */
  gamma(shape: number): number {
    if (!(shape > 0 && shape < Infinity)) throw new RangeError(`gamma: shape must be > 0, got ${String(shape)}`);
    if (shape < 1) {
      const g = this.gamma(shape + 1);
      const u = 1 - this.nextFloat(); // (0, 1]
      return g * dexp(dlog(u) / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.nextFloat(); // (0, 1]
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return d * v;
      if (dlog(u) < 0.5 * x2 + d * (1 - v + dlog(v))) return d * v;
    }
  }

  /** Dirichlet(alpha) sample (all alpha_i > 0); entries sum to 1 up to rounding. */
  dirichlet(alpha: readonly number[]): number[] {
    const out = alpha.map((a) => this.gamma(a));
    let s = 0;
    for (const v of out) s += v;
    if (!(s > 0)) {
      // every gamma underflowed (tiny alphas): put all mass on one uniformly chosen entry
      const i = this.nextInt(out.length);
      return out.map((_, k) => (k === i ? 1 : 0));
    }
    return out.map((v) => v / s);
  }
}
