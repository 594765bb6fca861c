/**
 * Seeded Gaussian directions z_k ~ N(0, I_n), regenerated from (seed, k). src/core/rng/SPEC.md is the normative
 * definition (enough to reimplement it in another language bit for bit); summary:
 *
 *  1. Block b = floor(i / BLOCK), BLOCK = 1024; element i is sample t = i - b*BLOCK of block b.
 *  2. Block b has two xoshiro128** streams: primary P = seedState(seed, k, b, 0xBAFF1E01) and secondary
 *     S = seedState(seed, k, b, 0xBAFF1E03) (hash.ts: a bijective, fully mixing 128-bit hash). Blocks are
 *     independent, so any range [start, end) can be regenerated alone with the same bits as the whole
 *     direction (the server can split one direction across threads).
 *  3. Sample t uses primary output t (exactly one 32-bit draw per sample): r as int32, layer = r & 127,
 *     j = r >> 7 (signed 25-bit), m = j ^ (j >> 31) (24-bit magnitude), x = (j + 0.5) * W[layer] (float64).
 *     If m < K[layer] (~97.2%) the sample is x. Otherwise it is resolved by the 128-layer Ziggurat slow path
 *     using the secondary stream, consumed in increasing t: layer 0 → tail beyond R (Marsaglia 1964, with the
 *     sign of j); layer >= 1 → wedge test y < dexp(-x^2/2) with y = F[layer] + u*(F[layer+1] - F[layer]);
 *     on rejection a complete new Ziggurat draw from the secondary stream. u = (r' + 0.5) * 2^-32.
 *     Tables: literal constants in zigtables.ts. dexp/dlog: deterministic versions (detmath.ts), because
 *     Math.exp/Math.log are not guaranteed identical across JS engines.
 *  4. z_k[i] = that float64 sample rounded to float32 (round-to-nearest-even, as Math.fround).
 *
 * Float semantics of the fused operations (IEEE-754 binary64 arithmetic, one rounding on store), with
 * z = z_k[i] the float32 value (exact in float64):
 *  - perturbInto:         out[i] = Math.fround(w[i] + sigma * z)       (product and sum in float64)
 *  - accumulateDirection: g[i]   = g[i] + coef * z  in float64; stored as is (Float64Array) or rounded with
 *                                  Math.fround (Float32Array)
 * Any conforming JS engine (and any IEEE-754 language without FMA contraction) gets identical bits.
 *
 * Every function takes an optional element range [start, end) (default: the whole array), any alignment;
 * elements outside it are not touched. Implementation: per block, pass 1 is a branch-free loop (state in
 * locals, one draw per sample, fused with the perturb/accumulate operation, misses recorded), pass 2 resolves
 * the few misses. No allocation after module load. Not re-entrant across threads of one isolate (JS has none).
 *
 * Where WebAssembly SIMD is available, ranges over two blocks or more run in the WebAssembly kernels of
 * wasmDirections.ts instead (same bits, ~2-2.5x faster; built at first use, a few KB); a lone block, and
 * everything when the environment has BAFFLE_RNG=js (or after setDirectionBackend('js')), runs in the JS
 * kernels below, which remain the reference.
 */
import { dexp, dlog } from './detmath.ts';
import { checkU32, DIRECTION_DOMAIN, SLOW_DOMAIN, seedState } from './hash.ts';
import { ZIG_F, ZIG_K, ZIG_R, ZIG_W } from './zigtables.ts';
import { type DirectionWasm, loadDirectionWasm, WASM_NB, WASM_STEP_QUANTUM } from './wasmDirections.ts';

export { mixSeed } from './hash.ts';

/** Elements per independently seeded block of a direction. Part of the definition of z_k. */
export const BLOCK = 1024;

const TWO_M32 = 2.3283064365386963e-10; // 2^-32
// Module-local aliases of the imported tables (imported bindings may compile to getters under some loaders).
const KT = ZIG_K;
const WT = ZIG_W;
const FT = ZIG_F;
const R = ZIG_R;
const ST = new Int32Array(4); // primary stream state (seeding scratch)
const SS = new Int32Array(4); // secondary stream state, used by the slow path
const ZBUF = new Float32Array(BLOCK); // one block of z, for unaligned range starts
const MISS_POS = new Int32Array(BLOCK); // pass 1 → pass 2: element index of each miss
const MISS_RAW = new Int32Array(BLOCK); // ... its primary draw
const MISS_OLD = new Float64Array(BLOCK); // ... w[i] (perturb) or g[i] (accumulate) before pass 1

/** Next output of the secondary stream (state in SS), as a uint32. */
function nextSecondary(): number {
  let s0 = SS[0]!;
  let s1 = SS[1]!;
  let s2 = SS[2]!;
  let s3 = SS[3]!;
  let r = Math.imul(s1, 5);
  r = Math.imul((r << 7) | (r >>> 25), 9);
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = (s3 << 11) | (s3 >>> 21);
  SS[0] = s0;
  SS[1] = s1;
  SS[2] = s2;
  SS[3] = s3;
  return r >>> 0;
}

/**
 * Slow path of the Ziggurat for a primary draw r (int32) that missed the fast test (m >= K[layer]): tail
 * (layer 0) or wedge test, with a complete new draw from the secondary stream on rejection. Returns the
 * sample rounded to float32.
 */
function slowSample(r: number): number {
  let layer = r & 127;
  let j = r >> 7;
  let x = (j + 0.5) * WT[layer]!;
  for (;;) {
    if (layer === 0) {
      // tail beyond R: a = -log(u1)/R, c = -log(u2) until 2c >= a^2; sample ±(R + a)
      let a: number;
      let c: number;
      do {
        a = -dlog((nextSecondary() + 0.5) * TWO_M32) / R;
        c = -dlog((nextSecondary() + 0.5) * TWO_M32);
      } while (c + c < a * a);
      return Math.fround(j < 0 ? -(R + a) : R + a);
    }
    // wedge: y uniform in [F[layer], F[layer+1]); accept x if y is under the density
    const f0 = FT[layer]!;
    const y = f0 + (nextSecondary() + 0.5) * TWO_M32 * (FT[layer + 1]! - f0);
    if (y < dexp(-0.5 * x * x)) return Math.fround(x);
    r = nextSecondary() | 0;
    layer = r & 127;
    j = r >> 7;
    x = (j + 0.5) * WT[layer]!;
    if ((j ^ (j >> 31)) < KT[layer]!) return Math.fround(x);
  }
}

// ---- pass 1 kernels -------------------------------------------------------------------------------------
// Each handles one whole block prefix: elements p = base .. base+n-1 = samples t = 0 .. n-1 of block b.
// The xoshiro128** step is written out in every kernel (keeps the state in registers): r = rotl(s1*5, 7)*9;
// t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11).
// Misses are appended to MISS_* without a branch: nm += (m >= K[layer]), i.e. (K - m - 1) >>> 31.
// They return the number of misses; the caller then seeds SS and resolves them in order.

function passFill(dst: Float32Array, base: number, n: number): number {
  let s0 = ST[0]!;
  let s1 = ST[1]!;
  let s2 = ST[2]!;
  let s3 = ST[3]!;
  const K = KT;
  const W = WT;
  const MP = MISS_POS;
  const MR = MISS_RAW;
  let nm = 0;
  const end = base + n;
  for (let p = base; p < end; p++) {
    let r = Math.imul(s1, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    const layer = r & 127;
    const j = r >> 7;
    dst[p] = (j + 0.5) * W[layer]!;
    MP[nm] = p;
    MR[nm] = r;
    nm += (K[layer]! - (j ^ (j >> 31)) - 1) >>> 31;
  }
  return nm;
}

function passPerturb(out: Float32Array, w: Float32Array, sigma: number, base: number, n: number): number {
  let s0 = ST[0]!;
  let s1 = ST[1]!;
  let s2 = ST[2]!;
  let s3 = ST[3]!;
  const K = KT;
  const W = WT;
  const MP = MISS_POS;
  const MR = MISS_RAW;
  const MO = MISS_OLD;
  let nm = 0;
  const end = base + n;
  for (let p = base; p < end; p++) {
    let r = Math.imul(s1, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    const layer = r & 127;
    const j = r >> 7;
    const wp = w[p]!;
    out[p] = wp + sigma * Math.fround((j + 0.5) * W[layer]!);
    MP[nm] = p;
    MR[nm] = r;
    MO[nm] = wp;
    nm += (K[layer]! - (j ^ (j >> 31)) - 1) >>> 31;
  }
  return nm;
}

/** passPerturb for `out` not aliasing `w`: pass 2 re-reads w[p], so no MISS_OLD store (≈7 % faster). */
function passPerturbFresh(out: Float32Array, w: Float32Array, sigma: number, base: number, n: number): number {
  let s0 = ST[0]!;
  let s1 = ST[1]!;
  let s2 = ST[2]!;
  let s3 = ST[3]!;
  const K = KT;
  const W = WT;
  const MP = MISS_POS;
  const MR = MISS_RAW;
  let nm = 0;
  const end = base + n;
  for (let p = base; p < end; p++) {
    let r = Math.imul(s1, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    const layer = r & 127;
    const j = r >> 7;
    out[p] = w[p]! + sigma * Math.fround((j + 0.5) * W[layer]!);
    MP[nm] = p;
    MR[nm] = r;
    nm += (K[layer]! - (j ^ (j >> 31)) - 1) >>> 31;
  }
  return nm;
}

function passAcc64(g: Float64Array, coef: number, base: number, n: number): number {
  let s0 = ST[0]!;
  let s1 = ST[1]!;
  let s2 = ST[2]!;
  let s3 = ST[3]!;
  const K = KT;
  const W = WT;
  const MP = MISS_POS;
  const MR = MISS_RAW;
  const MO = MISS_OLD;
  let nm = 0;
  const end = base + n;
  for (let p = base; p < end; p++) {
    let r = Math.imul(s1, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    const layer = r & 127;
    const j = r >> 7;
    const gp = g[p]!;
    g[p] = gp + coef * Math.fround((j + 0.5) * W[layer]!);
    MP[nm] = p;
    MR[nm] = r;
    MO[nm] = gp;
    nm += (K[layer]! - (j ^ (j >> 31)) - 1) >>> 31;
  }
  return nm;
}

function passAcc32(g: Float32Array, coef: number, base: number, n: number): number {
  let s0 = ST[0]!;
  let s1 = ST[1]!;
  let s2 = ST[2]!;
  let s3 = ST[3]!;
  const K = KT;
  const W = WT;
  const MP = MISS_POS;
  const MR = MISS_RAW;
  const MO = MISS_OLD;
  let nm = 0;
  const end = base + n;
  for (let p = base; p < end; p++) {
    let r = Math.imul(s1, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    const layer = r & 127;
    const j = r >> 7;
    const gp = g[p]!;
    g[p] = gp + coef * Math.fround((j + 0.5) * W[layer]!);
    MP[nm] = p;
    MR[nm] = r;
    MO[nm] = gp;
    nm += (K[layer]! - (j ^ (j >> 31)) - 1) >>> 31;
  }
  return nm;
}

// ---- per-block drivers ------------------------------------------------------------------------------------

/** dst[base + t] = z for samples t = 0..n-1 of block b of direction (seed, k). */
function blockFill(dst: Float32Array, base: number, n: number, seed: number, k: number, b: number): void {
  seedState(seed, k, b, DIRECTION_DOMAIN, ST);
  const nm = passFill(dst, base, n);
  if (nm === 0) return;
  seedState(seed, k, b, SLOW_DOMAIN, SS);
  for (let q = 0; q < nm; q++) dst[MISS_POS[q]!] = slowSample(MISS_RAW[q]!);
}

function checkRange(start: number, end: number, len: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= len)) {
    throw new RangeError(`invalid element range [${String(start)}, ${String(end)}) for length ${len}`);
  }
}

// ---- WebAssembly kernels (wasmDirections.ts) ------------------------------------------------------------------
// Same bits as the JS kernels above (test/rng.test.ts checks it over many ranges). Per call, up to WASM_NB whole
// blocks: w / g are copied into wasm memory, the kernel computes the block prefixes (fast path vectorised across
// four blocks, then the slow path of each block in order), and the requested part is copied back.

export type DirectionBackend = 'js' | 'wasm';

let wasmMod: DirectionWasm | null | undefined; // undefined: not loaded yet
let wasmWanted = defaultWanted();

function defaultWanted(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.BAFFLE_RNG !== 'js';
}

function wasm(): DirectionWasm | null {
  if (!wasmWanted) return null;
  if (wasmMod === undefined) wasmMod = loadDirectionWasm();
  return wasmMod;
}

/**
 * Select the implementation of fillDirection / perturbInto / accumulateDirection: 'wasm' (the default when
 * WebAssembly SIMD is available, unless the environment has BAFFLE_RNG=js) or 'js' (the reference kernels).
 * 'auto' restores the default. Both give identical bits. Throws if 'wasm' is requested but unavailable.
 */
export function setDirectionBackend(backend: DirectionBackend | 'auto'): void {
  if (backend === 'auto') {
    wasmWanted = defaultWanted();
    return;
  }
  wasmWanted = backend === 'wasm';
  if (wasmWanted && wasm() === null) {
    wasmWanted = defaultWanted();
    throw new Error('WebAssembly SIMD kernels are not available in this environment');
  }
}

/** The implementation currently used (for ranges over two blocks or more; a lone block is cheaper in JS). */
export function directionBackend(): DirectionBackend {
  return wasm() === null ? 'js' : 'wasm';
}

const K_FILL = 0;
const K_PERTURB = 1;
const K_ACC64 = 2;
const K_ACC32 = 3;

/**
 * Elements [start, end) of direction (seed, k) through the wasm kernels: kind K_FILL (dst = z), K_PERTURB
 * (dst = fround(src + scale*z)), K_ACC64 / K_ACC32 (dst = dst + scale*z; src unused). The kernels run four
 * blocks at once, so a lone block (a range within one block, or a last group of one block) is left to the JS
 * kernels: returns the start of that rest (= end if none).
 */
function wasmRange(
  M: DirectionWasm,
  kind: number,
  seed: number,
  k: number,
  dst: Float32Array | Float64Array,
  src: Float32Array | null,
  scale: number,
  start: number,
  end: number,
): number {
  const f32 = M.f32;
  const f64 = M.f64;
  let b = Math.floor(start / BLOCK);
  let bEnd = Math.ceil(end / BLOCK);
  if ((bEnd - b) % 4 === 1) bEnd--; // (includes a single block)
  const stop = Math.min(end, bEnd * BLOCK);
  while (b < bEnd) {
    const nb = Math.min(WASM_NB, bEnd - b);
    const base = b * BLOCK;
    const lo = start > base ? start : base;
    const hi = Math.min(stop, base + nb * BLOCK);
    // steps of the last group of four blocks: a whole block, unless that group holds one (partial) block
    const lastGroup = (nb - 1) & ~3;
    let steps = nb - lastGroup === 1 ? hi - (base + lastGroup * BLOCK) : BLOCK;
    steps = Math.ceil(steps / WASM_STEP_QUANTUM) * WASM_STEP_QUANTUM;
    const o = lo - base;
    const n = hi - lo;
    if (kind === K_FILL) {
      M.fill(seed, k, b, nb, steps, 0);
      dst.set(f32.subarray(M.out32 + o, M.out32 + o + n), lo);
    } else if (kind === K_PERTURB) {
      f32.set(src!.subarray(lo, hi), M.in32 + o);
      M.perturb(seed, k, b, nb, steps, scale);
      dst.set(f32.subarray(M.out32 + o, M.out32 + o + n), lo);
    } else if (kind === K_ACC64) {
      f64.set(dst.subarray(lo, hi), M.in64 + o);
      M.acc64(seed, k, b, nb, steps, scale);
      dst.set(f64.subarray(M.out64 + o, M.out64 + o + n), lo);
    } else {
      f32.set(dst.subarray(lo, hi), M.in32 + o);
      M.acc32(seed, k, b, nb, steps, scale);
      dst.set(f32.subarray(M.out32 + o, M.out32 + o + n), lo);
    }
    b += nb;
  }
  return Math.max(start, stop);
}

/** out[i] = z_k[i] for i in [start, end) (default: the whole array). Other elements are left untouched. */
export function fillDirection(seed: number, k: number, out: Float32Array, start = 0, end = out.length): void {
  checkU32(seed, 'seed');
  checkU32(k, 'k');
  checkRange(start, end, out.length);
  if (start === end) return;
  const M = wasm();
  if (M !== null) {
    start = wasmRange(M, K_FILL, seed, k, out, null, 0, start, end);
    if (start === end) return;
  }
  let b = Math.floor(start / BLOCK);
  let base = b * BLOCK;
  if (base < start) {
    const n = Math.min(BLOCK, end - base);
    blockFill(ZBUF, 0, n, seed, k, b); // unaligned start: whole block prefix, use the part >= start
    out.set(ZBUF.subarray(start - base, n), start);
    b++;
    base += BLOCK;
  }
  while (base < end) {
    blockFill(out, base, Math.min(BLOCK, end - base), seed, k, b);
    b++;
    base += BLOCK;
  }
}

/**
 * out[i] = Math.fround(w[i] + sigma * z_k[i]) for i in [start, end) (float64 multiply and add, one rounding to
 * float32 on store). out and w must have the same length; `out` may be `w` itself (in place), other overlapping
 * views of one buffer are not supported.
 */
export function perturbInto(
  out: Float32Array,
  w: Float32Array,
  sigma: number,
  seed: number,
  k: number,
  start = 0,
  end = out.length,
): void {
  checkU32(seed, 'seed');
  checkU32(k, 'k');
  if (w.length !== out.length) throw new RangeError(`perturbInto: out.length ${out.length} != w.length ${w.length}`);
  checkRange(start, end, out.length);
  if (start === end) return;
  const M = wasm();
  if (M !== null) {
    start = wasmRange(M, K_PERTURB, seed, k, out, w, sigma, start, end);
    if (start === end) return;
  }
  let b = Math.floor(start / BLOCK);
  let base = b * BLOCK;
  if (base < start) {
    const n = Math.min(BLOCK, end - base);
    blockFill(ZBUF, 0, n, seed, k, b); // unaligned start: whole block prefix, use the part >= start
    const z = ZBUF;
    for (let i = start; i < base + n; i++) out[i] = w[i]! + sigma * z[i - base]!;
    b++;
    base += BLOCK;
  }
  // Same bits either way; the in-place kernel also saves w[i] of the misses (pass 1 overwrites them).
  const inPlace = out.buffer === w.buffer && out.byteOffset === w.byteOffset;
  while (base < end) {
    const n = Math.min(BLOCK, end - base);
    seedState(seed, k, b, DIRECTION_DOMAIN, ST);
    if (inPlace) {
      const nm = passPerturb(out, w, sigma, base, n);
      if (nm > 0) {
        seedState(seed, k, b, SLOW_DOMAIN, SS);
        for (let q = 0; q < nm; q++) out[MISS_POS[q]!] = MISS_OLD[q]! + sigma * slowSample(MISS_RAW[q]!);
      }
    } else {
      const nm = passPerturbFresh(out, w, sigma, base, n);
      if (nm > 0) {
        seedState(seed, k, b, SLOW_DOMAIN, SS);
        for (let q = 0; q < nm; q++) {
          const p = MISS_POS[q]!;
          out[p] = w[p]! + sigma * slowSample(MISS_RAW[q]!);
        }
      }
    }
    b++;
    base += BLOCK;
  }
}

/**
 * g[i] += coef * z_k[i] for i in [start, end): computed in float64, stored in g's precision. Used by the server
 * to rebuild ĝ = (1/K) Σ_k a_k z_k (e.g. coef = a_k / K).
 */
export function accumulateDirection(
  g: Float32Array | Float64Array,
  coef: number,
  seed: number,
  k: number,
  start = 0,
  end = g.length,
): void {
  checkU32(seed, 'seed');
  checkU32(k, 'k');
  checkRange(start, end, g.length);
  if (start === end) return;
  const M = wasm();
  if (M !== null) {
    start = wasmRange(M, g instanceof Float64Array ? K_ACC64 : K_ACC32, seed, k, g, null, coef, start, end);
    if (start === end) return;
  }
  let b = Math.floor(start / BLOCK);
  let base = b * BLOCK;
  if (base < start) {
    const n = Math.min(BLOCK, end - base);
    blockFill(ZBUF, 0, n, seed, k, b); // unaligned start: whole block prefix, use the part >= start
    const z = ZBUF;
    for (let i = start; i < base + n; i++) g[i] = g[i]! + coef * z[i - base]!;
    b++;
    base += BLOCK;
  }
  const is64 = g instanceof Float64Array;
  while (base < end) {
    const n = Math.min(BLOCK, end - base);
    seedState(seed, k, b, DIRECTION_DOMAIN, ST);
    const nm = is64 ? passAcc64(g, coef, base, n) : passAcc32(g as Float32Array, coef, base, n);
    if (nm > 0) {
      seedState(seed, k, b, SLOW_DOMAIN, SS);
      for (let q = 0; q < nm; q++) g[MISS_POS[q]!] = MISS_OLD[q]! + coef * slowSample(MISS_RAW[q]!);
    }
    b++;
    base += BLOCK;
  }
}
