/**
 * WebAssembly (SIMD128) kernels of the seeded Gaussian directions (src/core/rng/SPEC.md §4–5), hand-assembled at
 * first use with wasmEmit.ts (no toolchain, no build step; a plain WebAssembly.Module that browsers run too).
 * directions.ts drives them; its JS kernels stay the reference and the fallback. Bit-identical to them
 * (test/rng.test.ts): every value is computed with the same IEEE-754 binary64 operations in the same order
 * (WebAssembly float arithmetic is deterministic and never fuses), and rounded to float32 the same way.
 *
 * Fast path, vectorised across blocks: a block's primary xoshiro128** stream is sequential, but blocks are
 * independent, so the four i32x4 lanes run the primary streams of four consecutive blocks in lock step (step
 * t = sample t of each block; seeding vectorised too). Per step, for the four lanes at once:
 *   - xoshiro128** step (i32x4 mul / shifts / xor); r is also stored in RB for the slow path;
 *   - table offsets (r & 127) * 16 in scalar registers (reloaded from RB), then the gather of each lane's
 *     entry (W[layer]/2 as f64, 2K[layer] - 1 as i32) with load*_lane;
 *   - q = (r >> 6) | 1 = 2j + 1; x = f64(q) · (W/2), the same float64 as (j + 0.5) · W (halving W and doubling
 *     j + 0.5 are exact and commute with rounding); f64x2 for lanes (0,1) and (2,3); z = f32.demote (round to
 *     nearest even = Math.fround);
 *   - the fast test m < K[layer] as |q| <= 2K - 1 (|q| = 2m + 1): i32x4 abs, compare, bitmask; steps with a
 *     miss are appended to LIST without a branch (store always, advance the end by 4 or 0);
 *   - the fused op in float64 (perturb: fround(w + sigma·z), accumulate: g + coef·z) and per-lane stores
 *     (store32_lane / store64_lane at constant offsets of one block).
 * Slow path (~2.8 % of samples, but branchy and ~40 % of the JS kernels' time), after each group of four
 * blocks, in two passes:
 *   A. LIST -> per-block entries (t, r, e = dexp(-x²/2)) in increasing t, with no data-dependent branch (so
 *      the long dexp chains of consecutive misses overlap);
 *   B. block by block, secondary stream state in locals, slowSample of directions.ts step by step: wedge test
 *      y < e with y = F[l] + ((u + 0.5)·2^-32)·(F[l+1] − F[l]); on rejection a new draw (fast test, else wedge
 *      again or tail); tail: a = −dlog(u1)/R, c = −dlog(u2) until c + c >= a·a, ±(R + a). The common case
 *      (first wedge test, else one new draw that hits) is evaluated branch-free with selects.
 *   dexp / dlog are exact ports of detmath.ts restricted to the arguments that occur here (dexp on [−7, 0],
 *   dlog on normal (0, 1)): same constants, same operations, same order; 2^n from its bit pattern.
 * Each kernel call handles nb <= WASM_NB consecutive blocks of one direction on copies in wasm memory (IN = w or
 * g, OUT = result; directions.ts copies in and out), in groups of four blocks. Lanes past the last requested
 * block and steps past the requested length compute garbage in scratch space that is never copied out.
 */
import { DIRECTION_DOMAIN, SLOW_DOMAIN } from './hash.ts';
import { ZIG_F, ZIG_K, ZIG_R, ZIG_W } from './zigtables.ts';
import { emitModule, F32, F64, Fn, I32, I64, Op, Simd, V128 } from './wasmEmit.ts';

/** Max blocks per kernel call (multiple of 4; the memory layout below assumes <= 16). */
export const WASM_NB = 16;
/** Steps per loop iteration (unrolling measured no faster on V8: the loop is bound by instruction count). */
const UNROLL = 1;
/** A kernel's step count for the last group must be a multiple of this. */
export const WASM_STEP_QUANTUM = UNROLL;

const BLOCK = 1024;
// Memory layout (bytes).
const TAB = 0; // 128 entries x 16 bytes: W[l]/2 (f64) at +0, 2*K[l] - 1 (i32) at +8
const MCNT = 2112; // int32[WASM_NB]: number of miss entries of each block
const SST = 2304; // int32[4][WASM_NB]: secondary stream state word w of block blk at (w * WASM_NB + blk)
const FTAB = 2560; // float64[129]: F
const LIST = 4096; // int32[1024]: steps of the current group with a miss: 16 t | (4-bit lane mask)
const RB = 8192; // int32[1024][4]: primary draws r of each step of the current group
const MISS = RB + 16384; // per block: up to 1024 miss entries (t: i32, r: i32, e: f64), 16 bytes each
const IN = MISS + WASM_NB * 16384; // per block 8192 bytes (room for float64)
const OUT = IN + WASM_NB * 8192;
const BYTES = OUT + WASM_NB * 8192;
const PAGES = Math.ceil(BYTES / 65536);

// detmath.ts dexp constants (the same float64 values).
const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.44269504088896338700e0;
const EXP_TAYLOR = [
  1 / 6227020800,
  1 / 479001600,
  1 / 39916800,
  1 / 3628800,
  1 / 362880,
  1 / 40320,
  1 / 5040,
  1 / 720,
  1 / 120,
  1 / 24,
  1 / 6,
  1 / 2,
  1,
]; // E13, E12, ..., E2, 1

const enum Kind {
  Fill = 0,
  Perturb = 1,
  Acc64 = 2,
  Acc32 = 3,
}

/**
 * Emit detmath.dexp(X) for X (local xl, float64) in [-708, 0] (no special cases needed there; the kernels
 * use X = -x²/2 with |x| < 4): the same operations in the same order, so the same bits. Leaves the result on
 * the stack. Uses locals n, rf, pp (float64).
 */
function emitDexp(f: Fn, xl: number, n: number, rf: number, pp: number): void {
  // n = floor(X * INV_LN2 + 0.5)
  f.get(xl).f64(INV_LN2).op(Op.f64_mul).f64(0.5).op(Op.f64_add).op(Op.f64_floor).set(n);
  // r = (X - n * LN2_HI) - n * LN2_LO
  f.get(xl).get(n).f64(LN2_HI).op(Op.f64_mul).op(Op.f64_sub).get(n).f64(LN2_LO).op(Op.f64_mul).op(Op.f64_sub).set(rf);
  // p = E13; p = p * r + E12; ...; p = p * r + 1
  f.f64(EXP_TAYLOR[0]!);
  for (let i = 1; i < EXP_TAYLOR.length; i++) f.get(rf).op(Op.f64_mul).f64(EXP_TAYLOR[i]!).op(Op.f64_add);
  f.set(pp);
  // er = 1 + r * p; result = er * 2^n (2^n built from its bits: exact, as POW2[n])
  f.f64(1).get(rf).get(pp).op(Op.f64_mul).op(Op.f64_add);
  f.get(n).op(Op.i32_trunc_f64_s).i32(1023).op(Op.i32_add).op(Op.i64_extend_i32_u).i64(52n).op(Op.i64_shl);
  f.op(Op.f64_reinterpret_i64).op(Op.f64_mul);
}

// detmath.ts dlog constants: atanh-series coefficients 2/(2j+1), j = 11 down to 1
const LOG_SERIES = [2 / 23, 2 / 21, 2 / 19, 2 / 17, 2 / 15, 2 / 13, 2 / 11, 2 / 9, 2 / 7, 2 / 5, 2 / 3];
const SQRT2 = 1.4142135623730951;
const TWO_M32 = 2.3283064365386963e-10; // 2^-32

/** Scratch locals of emitDlog. */
interface DlogLocals {
  bits: number; // i64
  e: number; // i32
  c: number; // i32
  m: number; // f64 ...
  fv: number;
  sv: number;
  zv: number;
  rv: number;
  hf: number;
}

function dlogLocals(f: Fn): DlogLocals {
  return {
    bits: f.local(I64),
    e: f.local(I32),
    c: f.local(I32),
    m: f.local(F64),
    fv: f.local(F64),
    sv: f.local(F64),
    zv: f.local(F64),
    rv: f.local(F64),
    hf: f.local(F64),
  };
}

/**
 * Emit detmath.dlog(x) for x (local xl, float64) normal, finite and > 0 (the kernels use x = (u + 0.5) * 2^-32
 * in (0, 1)): the same operations in the same order, so the same bits. Leaves the result on the stack.
 */
function emitDlog(f: Fn, xl: number, L: DlogLocals): void {
  // e = (hi >>> 20) - 1023; m = x with its exponent set to 0 (in [1, 2))
  f.get(xl).op(Op.i64_reinterpret_f64).tee(L.bits).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64);
  f.i32(20).op(Op.i32_shr_u).i32(1023).op(Op.i32_sub).set(L.e);
  f.get(L.bits).i64(0x000fffffffffffffn).op(Op.i64_and).i64(0x3ff0000000000000n).op(Op.i64_or);
  f.op(Op.f64_reinterpret_i64).set(L.m);
  // if (m > SQRT2) { m *= 0.5; e += 1 }
  f.get(L.m).f64(SQRT2).op(Op.f64_gt).set(L.c);
  f.get(L.m).f64(0.5).op(Op.f64_mul).get(L.m).get(L.c).op(Op.select).set(L.m);
  f.get(L.e).get(L.c).op(Op.i32_add).set(L.e);
  // f = m - 1; s = f / (2 + f); z = s * s; R = z * (L3 + z * (L5 + ...)) by Horner as in detmath
  f.get(L.m).f64(1).op(Op.f64_sub).set(L.fv);
  f.get(L.fv).f64(2).get(L.fv).op(Op.f64_add).op(Op.f64_div).set(L.sv);
  f.get(L.sv).get(L.sv).op(Op.f64_mul).set(L.zv);
  f.f64(LOG_SERIES[0]!);
  for (let i = 1; i < LOG_SERIES.length; i++) f.get(L.zv).op(Op.f64_mul).f64(LOG_SERIES[i]!).op(Op.f64_add);
  f.get(L.zv).op(Op.f64_mul).set(L.rv);
  // hfsq = 0.5 * f * f; lnm = f - (hfsq - s * (hfsq + R)); e * LN2_HI + (e * LN2_LO + lnm)
  f.f64(0.5).get(L.fv).op(Op.f64_mul).get(L.fv).op(Op.f64_mul).set(L.hf);
  f.get(L.e).op(Op.f64_convert_i32_s).f64(LN2_HI).op(Op.f64_mul);
  f.get(L.e).op(Op.f64_convert_i32_s).f64(LN2_LO).op(Op.f64_mul);
  f.get(L.fv).get(L.hf).get(L.sv).get(L.hf).get(L.rv).op(Op.f64_add).op(Op.f64_mul).op(Op.f64_sub).op(Op.f64_sub);
  f.op(Op.f64_add).op(Op.f64_add);
}

/** Exported for tests: (x) -> dlog(x), the port used by the kernels' tail sampler. */
function dlogFn(): Fn {
  const f = new Fn([F64], [F64]);
  emitDlog(f, 0, dlogLocals(f));
  return f;
}

/** Exported for tests: (X) -> dexp(X), the port used by the kernels' miss scan. */
function dexpFn(): Fn {
  const f = new Fn([F64], [F64]);
  const n = f.local(F64);
  const rf = f.local(F64);
  const pp = f.local(F64);
  emitDexp(f, 0, n, rf, pp);
  return f;
}

function kernel(kind: Kind): Fn {
  // (seed, k, b0, nb, steps of the last group, scale) -> ()
  const f = new Fn([I32, I32, I32, I32, I32, F64], []);
  const SEED = 0;
  const KK = 1;
  const B0 = 2;
  const NB = 3;
  const STEPS = 4;
  const SCALE = 5;
  const es = kind === Kind.Acc64 ? 8 : 4; // element size of IN and OUT
  const sh = es === 8 ? 3 : 2;
  const hasIn = kind !== Kind.Fill;

  const g = f.local(I32); // first block (within the chunk) of the current group: 0, 4, 8, ...
  const p = f.local(I32); // OUT address of step t, lane 0
  const pin = f.local(I32); // IN address of step t, lane 0
  const pend = f.local(I32);
  const t16 = f.local(I32); // 16 t
  const n4 = f.local(I32); // 4 * number of LIST entries
  const mask = f.local(I32);
  const m = f.local(I32);
  const bl = f.local(I32);
  const cnt = f.local(I32);
  const nsteps = f.local(I32);
  const a = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const ent = f.local(I32);
  const e = f.local(I32);
  const tm = f.local(I32);
  const rr = f.local(I32);
  const ss = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const ou = f.local(I32);
  const lay = f.local(I32);
  const oa = f.local(I32);
  const zf = f.local(F32);
  const ee = f.local(F64);
  const xl = f.local(F64);
  const aa = f.local(F64);
  const x2 = f.local(F64);
  const acc = f.local(I32);
  const sv = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const DL = dlogLocals(f);
  const n = f.local(F64);
  const rf = f.local(F64);
  const pp = f.local(F64);
  const s = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const r = f.local(V128);
  const tt = f.local(V128);
  const q = f.local(V128);
  const zlo = f.local(V128);
  const zhi = f.local(V128);
  const h = f.local(V128);
  const c5 = f.local(V128);
  const c9 = f.local(V128);
  const c1 = f.local(V128);
  const sc = f.local(V128);

  const splat = (v: number): Fn => f.i32(v).simd(Simd.i32x4_splat);
  splat(5).set(c5);
  splat(9).set(c9);
  splat(1).set(c1);
  f.get(SCALE).simd(Simd.f64x2_splat).set(sc);

  // fmix32 of the vector on the stack, result in local h
  const fmix = (): void => {
    f.tee(h).get(h).i32(16).simd(Simd.i32x4_shr_u).simd(Simd.v128_xor);
    splat(0x85ebca6b).simd(Simd.i32x4_mul).tee(h);
    f.get(h).i32(13).simd(Simd.i32x4_shr_u).simd(Simd.v128_xor);
    splat(0xc2b2ae35).simd(Simd.i32x4_mul).tee(h);
    f.get(h).i32(16).simd(Simd.i32x4_shr_u).simd(Simd.v128_xor).set(h);
  };
  const rotl = (x: number, k: number): void => {
    f.get(x).i32(k).simd(Simd.i32x4_shl).get(x).i32(32 - k).simd(Simd.i32x4_shr_u).simd(Simd.v128_or);
  };
  // s = seedState(seed, k, b0 + g + lane, domain) for the four lanes (hash.ts)
  const seedStates = (domain: number): void => {
    f.get(SEED).simd(Simd.i32x4_splat).set(s[0]!);
    f.get(KK).simd(Simd.i32x4_splat).set(s[1]!);
    f.get(B0).get(g).op(Op.i32_add).simd(Simd.i32x4_splat).v128i32(0, 1, 2, 3).simd(Simd.i32x4_add).set(s[2]!);
    splat(domain).set(s[3]!);
    let cj = 0;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4; i++) {
        cj = (cj + 0x9e3779b9) | 0;
        f.get(s[i]!).get(s[(i + 3) % 4]!).simd(Simd.i32x4_add);
        splat(cj).simd(Simd.i32x4_add);
        fmix();
        f.get(h).set(s[i]!);
      }
    }
    // all-zero state -> (1, 0, 0, 0): s0 -= (s0|s1|s2|s3 == 0) (the mask is -1 there, and s0 is 0)
    f.get(s[0]!);
    f.get(s[0]!).get(s[1]!).simd(Simd.v128_or).get(s[2]!).simd(Simd.v128_or).get(s[3]!).simd(Simd.v128_or);
    f.v128i32(0, 0, 0, 0).simd(Simd.i32x4_eq).simd(Simd.i32x4_sub).set(s[0]!);
  };

  f.i32(0).set(g);
  f.loop(); // groups
  {
    // ---- secondary states of the group's blocks -> SST; then the primary states in s
    seedStates(SLOW_DOMAIN);
    for (let i = 0; i < 4; i++) {
      f.get(g).i32(2).op(Op.i32_shl).get(s[i]!).simdMem(Simd.v128_store, 4, SST + i * 4 * WASM_NB);
    }
    seedStates(DIRECTION_DOMAIN);

    // ---- addresses; steps = 1024, or the `steps` argument for the last group
    f.i32(BLOCK).get(STEPS).get(g).i32(4).op(Op.i32_add).get(NB).op(Op.i32_lt_s).op(Op.select).set(nsteps);
    f.get(g).i32(10 + sh).op(Op.i32_shl).i32(OUT).op(Op.i32_add).tee(p);
    f.get(nsteps).i32(sh).op(Op.i32_shl).op(Op.i32_add).set(pend);
    f.get(g).i32(10 + sh).op(Op.i32_shl).i32(IN).op(Op.i32_add).set(pin);
    f.i32(0).set(t16);
    f.i32(0).set(n4);
    f.get(g).i32(2).op(Op.i32_shl).v128i32(0, 0, 0, 0).simdMem(Simd.v128_store, 4, MCNT);

    f.loop(); // steps
    for (let u = 0; u < UNROLL; u++) {
      const oOut = u * es;
      // r = rotl(s1 * 5, 7) * 9
      f.get(s[1]!).get(c5).simd(Simd.i32x4_mul).set(h);
      rotl(h, 7);
      f.get(c9).simd(Simd.i32x4_mul).set(r);
      // t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)
      f.get(s[1]!).i32(9).simd(Simd.i32x4_shl).set(tt);
      f.get(s[2]!).get(s[0]!).simd(Simd.v128_xor).set(s[2]!);
      f.get(s[3]!).get(s[1]!).simd(Simd.v128_xor).set(s[3]!);
      f.get(s[1]!).get(s[2]!).simd(Simd.v128_xor).set(s[1]!);
      f.get(s[0]!).get(s[3]!).simd(Simd.v128_xor).set(s[0]!);
      f.get(s[2]!).get(tt).simd(Simd.v128_xor).set(s[2]!);
      rotl(s[3]!, 11);
      f.set(s[3]!);
      // keep r for the slow path
      f.get(t16).get(r).simdMem(Simd.v128_store, 4, RB + 16 * u);
      // table offsets (r & 127) * 16, in scalar registers (reloaded from RB: frees the SIMD pipes)
      for (let L = 0; L < 4; L++) {
        f.get(t16).mem(Op.i32_load, 2, RB + 16 * u + 4 * L).i32(4).op(Op.i32_shl).i32(0x7f0).op(Op.i32_and).set(a[L]!);
      }
      // q = (r >> 6) | 1 = 2j + 1
      f.get(r).i32(6).simd(Simd.i32x4_shr_s).get(c1).simd(Simd.v128_or).set(q);
      // miss bits: |q| > 2K[layer] - 1; steps with a miss are appended to LIST (branch-free)
      f.get(q).simd(Simd.i32x4_abs);
      f.get(a[3]!).get(a[2]!).get(a[1]!).get(a[0]!);
      f.simdMem(Simd.v128_load32_zero, 2, TAB + 8);
      f.simdLaneMem(Simd.v128_load32_lane, 2, TAB + 8, 1);
      f.simdLaneMem(Simd.v128_load32_lane, 2, TAB + 8, 2);
      f.simdLaneMem(Simd.v128_load32_lane, 2, TAB + 8, 3);
      f.simd(Simd.i32x4_gt_s).simd(Simd.i32x4_bitmask).set(mask);
      f.get(n4).get(t16);
      if (u > 0) f.i32(16 * u).op(Op.i32_add);
      f.get(mask).op(Op.i32_or).mem(Op.i32_store, 2, LIST);
      f.get(n4).i32(4).i32(0).get(mask).op(Op.select).op(Op.i32_add).set(n4);
      // x = q * (W/2) for lanes 0,1 and 2,3; z = f32(x)
      f.get(q).simd(Simd.f64x2_convert_low_i32x4_s);
      f.get(a[1]!).get(a[0]!).simdMem(Simd.v128_load64_zero, 3, TAB).simdLaneMem(Simd.v128_load64_lane, 3, TAB, 1);
      f.simd(Simd.f64x2_mul).simd(Simd.f32x4_demote_f64x2_zero).set(zlo);
      f.get(q).get(q).shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);
      f.simd(Simd.f64x2_convert_low_i32x4_s);
      f.get(a[3]!).get(a[2]!).simdMem(Simd.v128_load64_zero, 3, TAB).simdLaneMem(Simd.v128_load64_lane, 3, TAB, 1);
      f.simd(Simd.f64x2_mul).simd(Simd.f32x4_demote_f64x2_zero).set(zhi);

      const blk = BLOCK * es; // bytes between lanes
      if (kind === Kind.Fill) {
        for (let L = 0; L < 4; L++) {
          f.get(p).get(L < 2 ? zlo : zhi).simdLaneMem(Simd.v128_store32_lane, 2, oOut + L * blk, L & 1);
        }
      } else {
        // IN pair (as f64) + scale * f64(z pair), rounded to f32 unless Acc64; per-lane stores
        for (let pair = 0; pair < 2; pair++) {
          const z = pair === 0 ? zlo : zhi;
          const L0 = 2 * pair;
          if (kind === Kind.Acc64) {
            f.get(pin).get(pin).simdMem(Simd.v128_load64_zero, 3, oOut + L0 * blk);
            f.simdLaneMem(Simd.v128_load64_lane, 3, oOut + (L0 + 1) * blk, 1);
          } else {
            f.get(pin).get(pin).simdMem(Simd.v128_load32_zero, 2, oOut + L0 * blk);
            f.simdLaneMem(Simd.v128_load32_lane, 2, oOut + (L0 + 1) * blk, 1);
            f.simd(Simd.f64x2_promote_low_f32x4);
          }
          f.get(sc).get(z).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_mul).simd(Simd.f64x2_add);
          if (kind === Kind.Acc64) {
            f.set(h);
            f.get(p).get(h).simdLaneMem(Simd.v128_store64_lane, 3, oOut + L0 * blk, 0);
            f.get(p).get(h).simdLaneMem(Simd.v128_store64_lane, 3, oOut + (L0 + 1) * blk, 1);
          } else {
            f.simd(Simd.f32x4_demote_f64x2_zero).set(h);
            f.get(p).get(h).simdLaneMem(Simd.v128_store32_lane, 2, oOut + L0 * blk, 0);
            f.get(p).get(h).simdLaneMem(Simd.v128_store32_lane, 2, oOut + (L0 + 1) * blk, 1);
          }
        }
      }
    }
    f.get(t16).i32(16 * UNROLL).op(Op.i32_add).set(t16);
    if (hasIn) f.get(pin).i32(es * UNROLL).op(Op.i32_add).set(pin);
    f.get(p).i32(es * UNROLL).op(Op.i32_add).tee(p).get(pend).op(Op.i32_lt_u).brIf(0);
    f.end(); // steps

    // ---- slow path of the group's misses (slowSample of directions.ts, ported exactly), in two passes.
    // xoshiro128** step of the scalar state ss -> output in ou
    const step = (): void => {
      f.get(ss[1]!).i32(5).op(Op.i32_mul).i32(7).op(Op.i32_rotl).i32(9).op(Op.i32_mul).set(ou);
      f.get(ss[1]!).i32(9).op(Op.i32_shl).set(oa); // t
      f.get(ss[2]!).get(ss[0]!).op(Op.i32_xor).set(ss[2]!);
      f.get(ss[3]!).get(ss[1]!).op(Op.i32_xor).set(ss[3]!);
      f.get(ss[1]!).get(ss[2]!).op(Op.i32_xor).set(ss[1]!);
      f.get(ss[0]!).get(ss[3]!).op(Op.i32_xor).set(ss[0]!);
      f.get(ss[2]!).get(oa).op(Op.i32_xor).set(ss[2]!);
      f.get(ss[3]!).i32(11).op(Op.i32_rotl).set(ss[3]!);
    };
    // xl = f64((r >> 6) | 1) * (W[layer] / 2) (= (j + 0.5) * W[layer]) for r in rr, layer in lay
    const xOf = (): void => {
      f.get(rr).i32(6).op(Op.i32_shr_s).i32(1).op(Op.i32_or).op(Op.f64_convert_i32_s);
      f.get(lay).i32(4).op(Op.i32_shl).mem(Op.f64_load, 3, TAB).op(Op.f64_mul).set(xl);
    };
    // ee = dexp(-0.5 * x * x)
    const wedgeE = (): void => {
      f.f64(-0.5).get(xl).op(Op.f64_mul).get(xl).op(Op.f64_mul).set(ee);
      emitDexp(f, ee, n, rf, pp);
      f.set(ee);
    };

    // Pass A (no data-dependent branches, so the long dexp chains overlap): LIST -> per block entries
    // (t, r, e = dexp(-x*x/2)) in increasing t, e only used for layers >= 1.
    f.i32(0).set(e);
    f.block();
    f.get(n4).op(Op.i32_eqz).brIf(0);
    f.loop(); // LIST entries
    f.get(e).mem(Op.i32_load, 2, LIST).tee(m).i32(4).op(Op.i32_shr_u).set(tm);
    f.get(m).i32(15).op(Op.i32_and).set(m);
    f.loop(); // lanes of the entry
    // bl = 4 * (g + lane); rr = RB[t][lane]; ent = MISS + (g + lane) * 16384 + 16 * MCNT[g + lane]
    f.get(m).op(Op.i32_ctz).get(g).op(Op.i32_add).i32(2).op(Op.i32_shl).set(bl);
    f.get(tm).i32(4).op(Op.i32_shl).get(bl).op(Op.i32_add).get(g).i32(2).op(Op.i32_shl).op(Op.i32_sub);
    f.mem(Op.i32_load, 2, RB).set(rr);
    f.get(bl).mem(Op.i32_load, 2, MCNT).set(cnt);
    f.get(bl).i32(12).op(Op.i32_shl).get(cnt).i32(4).op(Op.i32_shl).op(Op.i32_add).tee(ent).get(tm);
    f.mem(Op.i32_store, 2, MISS);
    f.get(ent).get(rr).mem(Op.i32_store, 2, MISS + 4);
    f.get(rr).i32(127).op(Op.i32_and).set(lay);
    xOf();
    wedgeE();
    f.get(ent).get(ee).mem(Op.f64_store, 3, MISS + 8);
    f.get(bl).get(cnt).i32(1).op(Op.i32_add).mem(Op.i32_store, 2, MCNT);
    f.get(m).get(m).i32(1).op(Op.i32_sub).op(Op.i32_and).tee(m).brIf(0);
    f.end(); // lanes
    f.get(e).i32(4).op(Op.i32_add).tee(e).get(n4).op(Op.i32_lt_u).brIf(0);
    f.end(); // entries
    f.end(); // block

    // Pass B, block by block with its secondary stream state in locals, entries in increasing t: slowSample.
    f.get(g).i32(2).op(Op.i32_shl).set(bl);
    f.loop(); // lanes
    f.block(); // $exit
    f.get(bl).mem(Op.i32_load, 2, MCNT).tee(cnt).op(Op.i32_eqz).brIf(0);
    for (let w = 0; w < 4; w++) f.get(bl).mem(Op.i32_load, 2, SST + w * 4 * WASM_NB).set(ss[w]!);
    f.get(bl).i32(12).op(Op.i32_shl).i32(MISS).op(Op.i32_add).tee(ent);
    f.get(cnt).i32(4).op(Op.i32_shl).op(Op.i32_add).set(cnt); // end address
    f.loop(); // $entries
    f.get(ent).mem(Op.i32_load, 2, 0).set(tm);
    f.block(); // $accept (the sample is xl)
    f.block(); // $tail
    f.get(ent).mem(Op.i32_load, 2, 4).tee(rr).i32(127).op(Op.i32_and).tee(lay).op(Op.i32_eqz).brIf(0);
    f.get(ent).mem(Op.f64_load, 3, 8).set(ee);
    xOf();
    // Common case without unpredictable branches: the wedge test with u1 (state s1), and the next draw r2
    // (state s2) with its fast test; the sample is x if y < e (state s1), else x2 if r2 hits (state s2).
    step();
    for (let w = 0; w < 4; w++) f.get(ss[w]!).set(sv[w]!);
    f.get(lay).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, FTAB); // f0 (stays on the stack)
    f.get(ou).op(Op.f64_convert_i32_u).f64(0.5).op(Op.f64_add).f64(TWO_M32).op(Op.f64_mul);
    f.get(lay).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, FTAB + 8);
    f.get(lay).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, FTAB).op(Op.f64_sub).op(Op.f64_mul).op(Op.f64_add);
    f.get(ee).op(Op.f64_lt).set(acc);
    step();
    f.get(ou).i32(6).op(Op.i32_shr_s).i32(1).op(Op.i32_or).op(Op.f64_convert_i32_s);
    f.get(ou).i32(127).op(Op.i32_and).i32(4).op(Op.i32_shl).tee(oa).mem(Op.f64_load, 3, TAB).op(Op.f64_mul).set(x2);
    f.get(ou).i32(7).op(Op.i32_shr_s).get(ou).i32(31).op(Op.i32_shr_s).op(Op.i32_xor).i32(1).op(Op.i32_shl);
    f.i32(1).op(Op.i32_or).get(oa).mem(Op.i32_load, 2, TAB + 8).op(Op.i32_le_s).get(acc).op(Op.i32_or).if();
    for (let w = 0; w < 4; w++) f.get(sv[w]!).get(ss[w]!).get(acc).op(Op.select).set(ss[w]!);
    f.get(xl).op(Op.i64_reinterpret_f64).get(x2).op(Op.i64_reinterpret_f64).get(acc).op(Op.select);
    f.op(Op.f64_reinterpret_i64).set(xl);
    f.br(2); // -> $accept (if, $tail, $accept)
    f.end();
    // rare: rejected and r2 missed too: tail, or the wedge test again with r2
    f.get(ou).tee(rr).i32(127).op(Op.i32_and).tee(lay).op(Op.i32_eqz).brIf(0); // -> $tail
    f.get(x2).set(xl);
    wedgeE();
    f.loop(); // $wedge
    {
      // y = F[l] + ((u + 0.5) * 2^-32) * (F[l+1] - F[l]); accept x if y < dexp(-x*x/2)
      step();
      f.get(lay).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, FTAB); // f0 (stays on the stack)
      f.get(ou).op(Op.f64_convert_i32_u).f64(0.5).op(Op.f64_add).f64(TWO_M32).op(Op.f64_mul);
      f.get(lay).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, FTAB + 8);
      f.get(lay).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, FTAB).op(Op.f64_sub).op(Op.f64_mul).op(Op.f64_add);
      f.get(ee).op(Op.f64_lt).brIf(2); // -> $accept ($wedge, $tail, $accept)
      // rejected: a complete new draw r; accept its x if 2m + 1 <= 2K - 1 (m = j ^ (j >> 31), j = r >> 7)
      step();
      f.get(ou).tee(rr).i32(127).op(Op.i32_and).set(lay);
      xOf();
      f.get(rr).i32(7).op(Op.i32_shr_s).get(rr).i32(31).op(Op.i32_shr_s).op(Op.i32_xor).i32(1).op(Op.i32_shl);
      f.i32(1).op(Op.i32_or).get(lay).i32(4).op(Op.i32_shl).mem(Op.i32_load, 2, TAB + 8).op(Op.i32_le_s).brIf(2);
      // missed again: tail, or wedge test again
      f.get(lay).op(Op.i32_eqz).brIf(1); // -> $tail
      wedgeE();
      f.br(0);
    }
    f.end(); // $wedge
    f.end(); // $tail
    // tail beyond R: a = -dlog(u1) / R, c = -dlog(u2) until c + c >= a * a; the sample is +-(R + a) (sign of r)
    f.loop();
    step();
    f.get(ou).op(Op.f64_convert_i32_u).f64(0.5).op(Op.f64_add).f64(TWO_M32).op(Op.f64_mul).set(ee);
    emitDlog(f, ee, DL);
    f.op(Op.f64_neg).f64(ZIG_R).op(Op.f64_div).set(aa);
    step();
    f.get(ou).op(Op.f64_convert_i32_u).f64(0.5).op(Op.f64_add).f64(TWO_M32).op(Op.f64_mul).set(ee);
    emitDlog(f, ee, DL);
    f.op(Op.f64_neg).tee(ee).get(ee).op(Op.f64_add).get(aa).get(aa).op(Op.f64_mul).op(Op.f64_lt).brIf(0);
    f.end();
    f.f64(ZIG_R).get(aa).op(Op.f64_add).tee(xl).op(Op.f64_neg).get(xl).get(rr).i32(0).op(Op.i32_lt_s);
    f.op(Op.select).set(xl);
    f.end(); // $accept
    // write the sample: OUT[(g + lane) * 1024 + t] = z or IN + scale * z
    f.get(xl).op(Op.f32_demote_f64).set(zf);
    f.get(bl).i32(8).op(Op.i32_shl).get(tm).op(Op.i32_add).i32(sh).op(Op.i32_shl).tee(oa);
    if (kind === Kind.Fill) {
      f.get(zf).mem(Op.f32_store, 2, OUT);
    } else if (kind === Kind.Acc64) {
      f.get(oa).mem(Op.f64_load, 3, IN).get(SCALE).get(zf).op(Op.f64_promote_f32).op(Op.f64_mul).op(Op.f64_add);
      f.mem(Op.f64_store, 3, OUT);
    } else {
      f.get(oa).mem(Op.f32_load, 2, IN).op(Op.f64_promote_f32);
      f.get(SCALE).get(zf).op(Op.f64_promote_f32).op(Op.f64_mul).op(Op.f64_add).op(Op.f32_demote_f64);
      f.mem(Op.f32_store, 2, OUT);
    }
    f.get(ent).i32(16).op(Op.i32_add).tee(ent).get(cnt).op(Op.i32_lt_u).brIf(0);
    f.end(); // $entries
    f.end(); // $exit
    f.get(bl).i32(4).op(Op.i32_add).tee(bl).get(g).i32(2).op(Op.i32_shl).i32(16).op(Op.i32_add).op(Op.i32_lt_u);
    f.brIf(0);
    f.end(); // lanes

    f.get(g).i32(4).op(Op.i32_add).tee(g).get(NB).op(Op.i32_lt_s).brIf(0);
  }
  f.end(); // groups
  return f;
}

/** The module bytes (deterministic; built at import time, ~few KB). */
export function buildDirectionWasm(): Uint8Array<ArrayBuffer> {
  return emitModule(
    [
      { name: 'fill', fn: kernel(Kind.Fill) },
      { name: 'perturb', fn: kernel(Kind.Perturb) },
      { name: 'acc64', fn: kernel(Kind.Acc64) },
      { name: 'acc32', fn: kernel(Kind.Acc32) },
      { name: 'dexp', fn: dexpFn() },
      { name: 'dlog', fn: dlogFn() },
    ],
    PAGES,
  );
}

type KernelFn = (seed: number, k: number, b0: number, nb: number, steps: number, scale: number) => void;

/** An instantiated kernel module and views of its memory (element indices of the regions). */
export interface DirectionWasm {
  fill: KernelFn;
  perturb: KernelFn;
  acc64: KernelFn;
  acc32: KernelFn;
  /** The kernels' port of detmath.dexp (for tests). */
  dexp: (x: number) => number;
  /** The kernels' port of detmath.dlog (for tests; valid for normal x > 0). */
  dlog: (x: number) => number;
  f32: Float32Array;
  f64: Float64Array;
  i32: Int32Array;
  /** IN / OUT regions as Float32Array / Float64Array element indices; MISS / MCNT as Int32Array indices. */
  in32: number;
  in64: number;
  out32: number;
  out64: number;
}

/**
 * Compile and instantiate the kernels synchronously, or null when WebAssembly (with SIMD128) is unavailable
 * or fails for any reason (the caller then keeps the JS kernels).
 */
export function loadDirectionWasm(): DirectionWasm | null {
  try {
    const WA = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly;
    if (WA === undefined) return null;
    const bytes = buildDirectionWasm();
    if (!WA.validate(bytes)) return null;
    const inst = new WA.Instance(new WA.Module(bytes), {});
    const ex = inst.exports as unknown as {
      memory: WebAssembly.Memory;
      fill: KernelFn;
      perturb: KernelFn;
      acc64: KernelFn;
      acc32: KernelFn;
      dexp: (x: number) => number;
      dlog: (x: number) => number;
    };
    const buf = ex.memory.buffer; // fixed size (min = max), so the views stay valid
    const f64 = new Float64Array(buf);
    const i32 = new Int32Array(buf);
    for (let l = 0; l < 128; l++) {
      f64[(TAB >> 3) + 2 * l] = ZIG_W[l]! * 0.5; // exact
      i32[(TAB >> 2) + 4 * l + 2] = 2 * ZIG_K[l]! - 1;
    }
    for (let l = 0; l <= 128; l++) f64[(FTAB >> 3) + l] = ZIG_F[l]!;
    return {
      fill: ex.fill,
      perturb: ex.perturb,
      acc64: ex.acc64,
      acc32: ex.acc32,
      dexp: ex.dexp,
      dlog: ex.dlog,
      f32: new Float32Array(buf),
      f64,
      i32,
      in32: IN >> 2,
      in64: IN >> 3,
      out32: OUT >> 2,
      out64: OUT >> 3,
    };
  } catch {
    return null;
  }
}
