/**
 * Deterministic exp / log written with IEEE-754 basic arithmetic only.
 *
 * Why: ECMAScript only requires `Math.exp` / `Math.log` to be "implementation-approximated", so two JS engines
 * (V8, SpiderMonkey, JavaScriptCore) may return results that differ in the last bit. The seeded Gaussian
 * directions must be bit-identical on every machine, so the rare Ziggurat wedge/tail paths, the table generator
 * and the `UniformRng.gamma` sampler use these functions instead.
 *
 * Everything below uses only `+ - * /` on float64 (correctly rounded, round-to-nearest-even, no fused
 * multiply-add: ECMAScript forbids contraction), `Math.floor` (exact), comparisons, and exact bit
 * manipulation of the float64 encoding (typed-array aliasing, byte order detected at load). The results are therefore
 * the same on every conforming engine and platform.
 *
 * Accuracy (checked in test/rng.test.ts against `Math.exp` / `Math.log`): a few ulp, i.e. relative error
 * < 1e-15 on the normal range. `dexp` is accurate on [-708.39, 709.78]; below that the result is subnormal
 * (scaled in two steps, may be off by one subnormal ulp) or 0. `dlog` handles subnormal inputs.
 *
 * Algorithms (fdlibm-style):
 *  - dexp(x): n = floor(x/ln2 + 1/2); r = (x - n*LN2_HI) - n*LN2_LO (Cody–Waite, |r| <= 0.3466);
 *    e^r = 1 + r*P(r) with P the Taylor polynomial of (e^r - 1)/r up to r^12/13! (truncation < 2e-17);
 *    result = e^r * 2^n (exact power-of-two scaling from a table built by exact doubling/halving).
 *  - dlog(x): x = m * 2^e with m in [sqrt(1/2), sqrt(2)) (read from the bits); f = m - 1 (exact);
 *    s = f / (2 + f); R = s^2 * (2/3 + s^2*(2/5 + ... + s^2*2/23)) (atanh series, truncation < 1e-18);
 *    log(m) = f - (f^2/2 - s*(f^2/2 + R)); result = e*LN2_HI + (e*LN2_LO + log(m)).
 */

/** ln 2 split: LN2_HI has 32 significant bits, so n*LN2_HI is exact for |n| < 2^21 (fdlibm constants). */
const LN2_HI = 6.93147180369123816490e-1; // 0x3FE62E42FEE00000
const LN2_LO = 1.90821492927058770002e-10; // 0x3DEA39EF35793C76
const INV_LN2 = 1.44269504088896338700e0;
const SQRT2 = 1.4142135623730951;

/** POW2[n + 1074] = 2^n exactly, n = -1074 .. 1023 (built by exact doubling / halving of 1). */
const POW2 = new Float64Array(1074 + 1024);
{
  let p = 1;
  for (let n = 0; n <= 1023; n++) {
    POW2[n + 1074] = p;
    p *= 2;
  }
  p = 1;
  for (let n = 0; n >= -1074; n--) {
    POW2[n + 1074] = p;
    p *= 0.5;
  }
}

/** Exact 2^n for integer n in [-1074, 1023]. */
export function pow2(n: number): number {
  return POW2[n + 1074]!;
}

// Taylor coefficients 1/(k+1)! of (e^r - 1)/r = sum_k r^k / (k+1)!
const E2 = 1 / 2;
const E3 = 1 / 6;
const E4 = 1 / 24;
const E5 = 1 / 120;
const E6 = 1 / 720;
const E7 = 1 / 5040;
const E8 = 1 / 40320;
const E9 = 1 / 362880;
const E10 = 1 / 3628800;
const E11 = 1 / 39916800;
const E12 = 1 / 479001600;
const E13 = 1 / 6227020800;

/** Deterministic e^x (see the module comment). */
export function dexp(x: number): number {
  if (!(x > -745.2)) return x !== x ? NaN : 0;
  if (x > 709.782712893384) return Infinity;
  const n = Math.floor(x * INV_LN2 + 0.5);
  const r = (x - n * LN2_HI) - n * LN2_LO;
  let p = E13;
  p = p * r + E12;
  p = p * r + E11;
  p = p * r + E10;
  p = p * r + E9;
  p = p * r + E8;
  p = p * r + E7;
  p = p * r + E6;
  p = p * r + E5;
  p = p * r + E4;
  p = p * r + E3;
  p = p * r + E2;
  p = p * r + 1;
  const er = 1 + r * p;
  if (n > 1023) return er * 2 * POW2[n - 1 + 1074]!;
  if (n >= -1022) return er * POW2[n + 1074]!;
  // Subnormal result: scale in two exact-power steps (the second multiplication rounds once).
  return er * POW2[n + 64 + 1074]! * POW2[-64 + 1074]!;
}

// atanh-series coefficients 2/(2j+1), j = 1..11
const L3 = 2 / 3;
const L5 = 2 / 5;
const L7 = 2 / 7;
const L9 = 2 / 9;
const L11 = 2 / 11;
const L13 = 2 / 13;
const L15 = 2 / 15;
const L17 = 2 / 17;
const L19 = 2 / 19;
const L21 = 2 / 21;
const L23 = 2 / 23;

// Float64 <-> words aliasing. The index of the high word depends on the platform's byte order, which is
// detected once (1.0 has high word 0x3FF00000), so the bits read are the same on every platform.
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
F64[0] = 1;
const HI = U32[1] === 0x3ff00000 ? 1 : 0;

/** Deterministic natural logarithm (see the module comment). */
export function dlog(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : NaN;
  if (x === Infinity) return Infinity;
  let e = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984; // 2^54, exact
    e = -54;
  }
  F64[0] = x;
  const hi = U32[HI]!;
  e += (hi >>> 20) - 1023;
  U32[HI] = (hi & 0x000fffff) | 0x3ff00000;
  let m = F64[0]!; // x / 2^e, in [1, 2)
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  const f = m - 1; // exact (Sterbenz)
  const s = f / (2 + f);
  const z = s * s;
  let R = L23;
  R = R * z + L21;
  R = R * z + L19;
  R = R * z + L17;
  R = R * z + L15;
  R = R * z + L13;
  R = R * z + L11;
  R = R * z + L9;
  R = R * z + L7;
  R = R * z + L5;
  R = R * z + L3;
  R = R * z;
  const hfsq = 0.5 * f * f;
  const lnm = f - (hfsq - s * (hfsq + R));
  return e * LN2_HI + (e * LN2_LO + lnm);
}
