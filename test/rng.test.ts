import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { dexp, dlog, pow2 } from '../src/core/rng/detmath.ts';
import {
  accumulateDirection,
  BLOCK,
  directionBackend,
  fillDirection,
  mixSeed,
  perturbInto,
  setDirectionBackend,
} from '../src/core/rng/directions.ts';
import { murmur3Words } from '../src/core/rng/hash.ts';
import { UniformRng } from '../src/core/rng/uniform.ts';
import { loadDirectionWasm } from '../src/core/rng/wasmDirections.ts';
import { computeZigTables, renderZigTablesSource, ZIG_V_DEF } from '../scripts/zigtables-gen.ts';
import { ZIG_F, ZIG_K, ZIG_R, ZIG_W } from '../src/core/rng/zigtables.ts';

const vectors = JSON.parse(readFileSync(new URL('./vectors/rng-directions.json', import.meta.url), 'utf8')) as {
  block: number;
  directions: {
    seed: number;
    k: number;
    first16: number[];
    at: Record<string, number>;
    sumN: number;
    sum: number;
    sumSq: number;
  }[];
  mixSeed: { parts: number[]; value: number }[];
};
const uvectors = JSON.parse(readFileSync(new URL('./vectors/rng-uniform.json', import.meta.url), 'utf8')) as {
  cases: {
    seed: number;
    state: number[];
    uint32: number[];
    float: number[];
    normal: number[];
    int1000: number[];
    gamma05: number[];
  }[];
};

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

function direction(seed: number, k: number, n: number): Float32Array {
  const z = new Float32Array(n);
  fillDirection(seed, k, z);
  return z;
}

function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const A = bitsOf(a);
  const B = bitsOf(b);
  for (let i = 0; i < A.length; i++) {
    if (A[i] !== B[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// An independent, deliberately naive implementation of src/core/rng/SPEC.md (BigInt words, no shared code except
// the literal tables and dexp/dlog, which are tested separately). The optimised kernels must match it.
// ---------------------------------------------------------------------------------------------------------
const M32 = 0xffffffffn;
const rotlB = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M32;
function fmixB(h: bigint): bigint {
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M32;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M32;
  h ^= h >> 16n;
  return h;
}
function seedStateB(a: number, b: number, c: number, d: number): bigint[] {
  const x = [BigInt(a), BigInt(b), BigInt(c), BigInt(d)];
  let j = 0n;
  for (let round = 0; round < 2; round++) {
    for (let w = 0; w < 4; w++) {
      j += 1n;
      x[w] = fmixB((x[w]! + x[(w + 3) % 4]! + ((j * 0x9e3779b9n) & M32)) & M32);
    }
  }
  if (!x.some((v) => v !== 0n)) x[0] = 1n;
  return x;
}
class RefXoshiro {
  constructor(private s: bigint[]) {}
  /** next output as int32 */
  next(): number {
    const s = this.s;
    const result = (rotlB((s[1]! * 5n) & M32, 7n) * 9n) & M32;
    const t = (s[1]! << 9n) & M32;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotlB(s[3]!, 11n);
    return Number(result) | 0;
  }
  u(): number {
    return ((this.next() >>> 0) + 0.5) / 4294967296;
  }
}
function refSample(r: number, S: RefXoshiro): number {
  for (;;) {
    const layer = r & 127;
    const j = r >> 7;
    const m = j < 0 ? -j - 1 : j;
    const x = (j + 0.5) * ZIG_W[layer]!;
    if (m < ZIG_K[layer]!) return x;
    if (layer === 0) {
      for (;;) {
        const a = -dlog(S.u()) / ZIG_R;
        const c = -dlog(S.u());
        if (c + c >= a * a) return j >= 0 ? ZIG_R + a : -(ZIG_R + a);
      }
    }
    const y = ZIG_F[layer]! + S.u() * (ZIG_F[layer + 1]! - ZIG_F[layer]!);
    if (y < dexp(-0.5 * x * x)) return x;
    r = S.next();
  }
}
/** reference z_k[i] for i in [start, end) */
function refDirection(seed: number, k: number, start: number, end: number): Float32Array {
  const out = new Float32Array(end - start);
  for (let b = Math.floor(start / 1024); b * 1024 < end; b++) {
    const P = new RefXoshiro(seedStateB(seed, k, b, 0xbaff1e01));
    const S = new RefXoshiro(seedStateB(seed, k, b, 0xbaff1e03));
    for (let t = 0; t < 1024 && b * 1024 + t < end; t++) {
      const z = refSample(P.next(), S);
      const i = b * 1024 + t;
      if (i >= start) out[i - start] = z;
    }
  }
  return out;
}

function checkVectors(tag0 = ''): void {
  assert.equal(vectors.block, BLOCK);
  assert.ok(vectors.directions.length >= 5);
  for (const v of vectors.directions) {
    const n = Math.max(v.sumN, ...Object.keys(v.at).map(Number)) + 1;
    const z = direction(v.seed, v.k, n);
    const tag = `${tag0}(seed ${v.seed}, k ${v.k})`;
    for (const x of v.first16) assert.equal(Math.fround(x), x, 'vector values are float32');
    assert.deepEqual(Array.from(z.subarray(0, 16)), v.first16, `${tag} first 16`);
    for (const [i, x] of Object.entries(v.at)) assert.equal(z[Number(i)], x, `${tag} z[${i}]`);
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < v.sumN; i++) {
      sum += z[i]!;
      sumSq += z[i]! * z[i]!;
    }
    assert.equal(sum, v.sum, `${tag} sum`);
    assert.equal(sumSq, v.sumSq, `${tag} sum of squares`);
  }
}

describe('hashes and the xoshiro128** core', () => {
  test('mixSeed is MurmurHash3_x86_32 (values from the reference C implementation)', () => {
    assert.equal(murmur3Words([0x74736574], 0), 0xba6bd213); // the bytes "test"
    assert.equal(murmur3Words([], 1), 0x514e28b7);
    assert.equal(mixSeed(1, 2, 3), 3923217110);
    assert.equal(mixSeed(42, 3, 1), 3437265404);
    assert.equal(mixSeed(0), 593689054);
    assert.equal(mixSeed(0xffffffff), 1982413648);
    assert.notEqual(mixSeed(0), mixSeed(0, 0));
    for (const v of vectors.mixSeed) assert.equal(mixSeed(...v.parts), v.value, `mixSeed(${v.parts.join(',')})`);
  });

  test('mixSeed rejects non-uint32 parts', () => {
    for (const bad of [-1, 0.5, 2 ** 32, NaN, Infinity]) assert.throws(() => mixSeed(1, bad), RangeError);
  });

  test('xoshiro128** matches the reference C outputs for state (1,2,3,4)', () => {
    const g = UniformRng.fromState([1, 2, 3, 4]);
    const got = Array.from({ length: 10 }, () => g.nextUint32());
    assert.deepEqual(
      got,
      [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804],
    );
  });
});

describe('Ziggurat tables', () => {
  test('the generator reproduces the literal tables bit for bit', () => {
    const t = computeZigTables();
    assert.deepEqual(Array.from(t.K), Array.from(ZIG_K));
    assert.deepEqual(Array.from(t.W), Array.from(ZIG_W));
    assert.deepEqual(Array.from(t.F), Array.from(ZIG_F));
    const src = readFileSync(new URL('../src/core/rng/zigtables.ts', import.meta.url), 'utf8');
    assert.equal(renderZigTablesSource(t), src, 'zigtables.ts is exactly the generator output');
  });

  test('tables are consistent (layer areas, fast-path bounds)', () => {
    const t = computeZigTables();
    assert.equal(ZIG_K.length, 128);
    assert.equal(ZIG_W.length, 128);
    assert.equal(ZIG_F.length, 129);
    // every rectangle layer has area V; the top one closes the ziggurat to ~1e-9
    for (let i = 1; i < 128; i++) {
      const area = t.E[i]! * (ZIG_F[i + 1]! - ZIG_F[i]!);
      assert.ok(Math.abs(area / ZIG_V_DEF - 1) < 1e-8, `layer ${i} area ${area}`);
    }
    // base layer: rectangle R*f(R) + tail = V (tail = ∫_R^∞ f, by Simpson)
    let tail = 0;
    const h = 1e-3;
    for (let x = ZIG_R; x < ZIG_R + 12; x += 2 * h) {
      tail += (h / 3) * (Math.exp(-0.5 * x * x) + 4 * Math.exp(-0.5 * (x + h) ** 2) + Math.exp(-0.5 * (x + 2 * h) ** 2));
    }
    assert.ok(Math.abs((ZIG_R * ZIG_F[0]! + tail) / ZIG_V_DEF - 1) < 1e-9);
    // K[i] is the exact count of magnitudes whose sample lies strictly inside the next layer's width
    for (let i = 0; i < 128; i++) {
      const inner = t.E[i + 1]!;
      const K = ZIG_K[i]!;
      if (K > 0) assert.ok((K - 1 + 0.5) * ZIG_W[i]! < inner, `K[${i}] too large`);
      assert.ok((K + 0.5) * ZIG_W[i]! >= inner, `K[${i}] too small`);
    }
  });
});

describe('deterministic exp / log', () => {
  test('dexp and dlog agree with Math.exp / Math.log within 1e-14 relative', () => {
    const g = new UniformRng(7);
    let worstE = 0;
    let worstL = 0;
    for (let i = 0; i < 100_000; i++) {
      const xe = i % 2 ? (g.nextFloat() - 0.5) * 1400 : (g.nextFloat() - 0.5) * 20; // wide and hot range
      const e = Math.exp(xe);
      worstE = Math.max(worstE, Math.abs(dexp(xe) - e) / e);
      const xl = i % 3 === 0 ? 1 + (g.nextFloat() - 0.5) * 1e-6 : g.nextFloat() * pow2(g.nextInt(2046) - 1074 + 1);
      if (xl > 0 && xl !== 1) {
        const l = Math.log(xl);
        worstL = Math.max(worstL, Math.abs(dlog(xl) - l) / Math.abs(l));
      }
    }
    assert.ok(worstE < 1e-14, `dexp worst relative error ${worstE}`);
    assert.ok(worstL < 1e-14, `dlog worst relative error ${worstL}`);
  });

  test('special values', () => {
    assert.equal(dexp(0), 1);
    assert.equal(dexp(-Infinity), 0);
    assert.equal(dexp(Infinity), Infinity);
    assert.ok(Number.isNaN(dexp(NaN)));
    assert.equal(dexp(-800), 0);
    assert.ok(Math.abs(dexp(1) / Math.E - 1) <= 2.3e-16); // within 1 ulp
    assert.equal(dlog(1), 0);
    assert.equal(dlog(0), -Infinity);
    assert.ok(Number.isNaN(dlog(-1)));
    assert.equal(dlog(Infinity), Infinity);
    assert.ok(Math.abs(dlog(5e-324) / Math.log(5e-324) - 1) < 1e-15); // subnormal input
    assert.ok(Math.abs(dlog(2) / Math.LN2 - 1) < 1e-16);
    assert.ok(Math.abs(dexp(-700) / Math.exp(-700) - 1) < 1e-14);
  });
});

describe('seeded directions: definition', () => {
  test('checked-in test vectors match exactly', () => checkVectors());

  test('matches the naive reference implementation of SPEC.md (incl. wedge and tail paths)', () => {
    for (const [seed, k, start, end] of [
      [0, 0, 0, 2100],
      [0xffffffff, 0xffffffff, 0, 1100],
      [mixSeed(9, 9), 3, 1000, 1050],
    ] as const) {
      assertSameBits(direction(seed, k, end).subarray(start), refDirection(seed, k, start, end), `(${seed},${k})`);
    }
    // find blocks that contain tail samples (|z| > R, ~1 in 4300) and wedge samples, and check them too
    const z = direction(2024, 5, 64 * BLOCK);
    const tailBlocks = new Set<number>();
    let wedge = 0;
    for (let i = 0; i < z.length; i++) {
      const a = Math.abs(z[i]!);
      if (a > ZIG_R) tailBlocks.add(Math.floor(i / BLOCK));
      if (a > 3 && a < ZIG_R) wedge++;
    }
    assert.ok(tailBlocks.size >= 2, 'test data contains tail samples');
    assert.ok(wedge > 0);
    for (const b of [...tailBlocks].slice(0, 3)) {
      const ref = refDirection(2024, 5, b * BLOCK, (b + 1) * BLOCK);
      assertSameBits(z.subarray(b * BLOCK, (b + 1) * BLOCK), ref, `tail block ${b}`);
    }
  });
});

describe('seeded directions: ranges and fused operations', () => {
  const N = 3 * BLOCK + 517;
  const SEED = mixSeed(77, 1);
  const K = 11;
  const full = direction(SEED, K, N);

  test('any split of [0, n) gives the same bits; elements outside a range are untouched', () => {
    const cuts = [0, 1, 2, 1023, 1024, 1025, 2000, 3071, 3072, N - 1, N];
    const pieces = new Float32Array(N).fill(NaN);
    // fill the pieces in reverse order: no hidden state may leak between calls
    for (let c = cuts.length - 2; c >= 0; c--) fillDirection(SEED, K, pieces, cuts[c], cuts[c + 1]);
    assertSameBits(pieces, full, 'fixed cuts');
    const g = new UniformRng(5);
    for (let rep = 0; rep < 30; rep++) {
      const a = g.nextInt(N + 1);
      const b = g.nextInt(N + 1);
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const out = new Float32Array(N).fill(NaN);
      fillDirection(SEED, K, out, lo, hi);
      for (let i = 0; i < N; i++) {
        const inside = i >= lo && i < hi;
        if (inside ? bitsOf(out)[i] !== bitsOf(full)[i] : !Number.isNaN(out[i]!)) {
          assert.fail(`range [${lo}, ${hi}): element ${i} wrong`);
        }
      }
    }
    // a direction is a prefix-consistent function of i: a longer array agrees on the common prefix
    assertSameBits(direction(SEED, K, N + 999).subarray(0, N), full, 'prefix');
  });

  test('different (seed, k) give different directions', () => {
    assert.notDeepEqual(Array.from(direction(SEED, K + 1, 64)), Array.from(full.subarray(0, 64)));
    assert.notDeepEqual(Array.from(direction(SEED + 1, K, 64)), Array.from(full.subarray(0, 64)));
    // block b of direction k is not block b' of another direction (no counter arithmetic aliasing)
    const other = direction(SEED, K + 1, 2 * BLOCK);
    assert.notDeepEqual(Array.from(other.subarray(0, 32)), Array.from(full.subarray(BLOCK, BLOCK + 32)));
  });

  test('perturbInto = fround(w + sigma*z), on any range and in place', () => {
    const w = new Float32Array(N);
    const g = new UniformRng(3);
    for (let i = 0; i < N; i++) w[i] = g.normal() * 0.1;
    for (const sigma of [1e-4, 0.37, -2]) {
      for (const [lo, hi] of [
        [0, N],
        [5, 1030],
        [1024, 2048],
        [3000, N],
        [7, 7],
      ] as const) {
        const out = new Float32Array(N).fill(NaN);
        perturbInto(out, w, sigma, SEED, K, lo, hi);
        for (let i = 0; i < N; i++) {
          const want = i >= lo && i < hi ? Math.fround(w[i]! + sigma * full[i]!) : NaN;
          if (!Object.is(out[i], want)) assert.fail(`sigma ${sigma} [${lo},${hi}) i=${i}: ${out[i]} vs ${want}`);
        }
      }
      const inPlace = w.slice();
      perturbInto(inPlace, inPlace, sigma, SEED, K, 3, N - 2);
      for (let i = 0; i < N; i++) {
        const want = i >= 3 && i < N - 2 ? Math.fround(w[i]! + sigma * full[i]!) : w[i]!;
        if (inPlace[i] !== want) assert.fail(`in place, i=${i}`);
      }
    }
    assert.throws(() => perturbInto(new Float32Array(5), new Float32Array(6), 1, 1, 1), RangeError);
  });

  test('accumulateDirection: g += coef*z in float64 (Float64Array) or rounded (Float32Array)', () => {
    const g0 = new Float64Array(N);
    const rng = new UniformRng(4);
    for (let i = 0; i < N; i++) g0[i] = rng.normal();
    for (const [lo, hi] of [
      [0, N],
      [1, 1025],
      [2048, 3000],
    ] as const) {
      const coef = 0.123456789;
      const g64 = g0.slice();
      accumulateDirection(g64, coef, SEED, K, lo, hi);
      const g32 = Float32Array.from(g0);
      const g32before = g32.slice();
      accumulateDirection(g32, coef, SEED, K, lo, hi);
      for (let i = 0; i < N; i++) {
        const inside = i >= lo && i < hi;
        const w64 = inside ? g0[i]! + coef * full[i]! : g0[i]!;
        const w32 = inside ? Math.fround(g32before[i]! + coef * full[i]!) : g32before[i]!;
        if (g64[i] !== w64) assert.fail(`f64 [${lo},${hi}) i=${i}: ${g64[i]} vs ${w64}`);
        if (g32[i] !== w32) assert.fail(`f32 [${lo},${hi}) i=${i}`);
      }
    }
    // rebuilding (1/K) Σ a_k z_k by accumulation equals the explicit sum
    const a = [0.5, -1.25, 2];
    const ghat = new Float64Array(N);
    a.forEach((ak, k) => accumulateDirection(ghat, ak / a.length, SEED, k));
    const zs = a.map((_, k) => direction(SEED, k, N));
    for (let i = 0; i < N; i += 97) {
      let want = 0;
      for (let k = 0; k < a.length; k++) want = want + (a[k]! / a.length) * zs[k]![i]!;
      assert.equal(ghat[i], want);
    }
  });

  test('argument validation', () => {
    const out = new Float32Array(10);
    for (const bad of [-1, 1.5, 2 ** 32, NaN]) {
      assert.throws(() => fillDirection(bad, 0, out), RangeError);
      assert.throws(() => fillDirection(0, bad, out), RangeError);
    }
    assert.throws(() => fillDirection(0, 0, out, 5, 4), RangeError);
    assert.throws(() => fillDirection(0, 0, out, 0, 11), RangeError);
    assert.throws(() => fillDirection(0, 0, out, -1, 3), RangeError);
    assert.throws(() => accumulateDirection(new Float64Array(3), 1, 0, 0, 0.5, 2), RangeError);
  });
});

describe('seeded directions: statistics (fixed seeds; tolerances = 5 standard errors unless noted)', () => {
  const N = 1 << 21;
  const z = direction(mixSeed(2024, 0), 0, N);

  test('moments: mean 0, variance 1, kurtosis 3; tail fractions', () => {
    let s1 = 0;
    let s2 = 0;
    let s4 = 0;
    let t3 = 0;
    let t4 = 0;
    let maxAbs = 0;
    for (let i = 0; i < N; i++) {
      const x = z[i]!;
      s1 += x;
      const x2 = x * x;
      s2 += x2;
      s4 += x2 * x2;
      const a = Math.abs(x);
      if (a > 3) t3++;
      if (a > 4) t4++;
      if (a > maxAbs) maxAbs = a;
    }
    const mean = s1 / N;
    const variance = s2 / N - mean * mean;
    const kurt = s4 / N / (variance * variance);
    const se = (p: number): number => Math.sqrt(p * (1 - p) / N);
    assert.ok(Math.abs(mean) < 5 / Math.sqrt(N), `mean ${mean}`); // SE 1/sqrt(N) = 6.9e-4
    assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / N), `variance ${variance}`); // SE sqrt(2/N)
    assert.ok(Math.abs(kurt - 3) < 5 * Math.sqrt(96 / N), `kurtosis ${kurt}`); // Var(x^4)=96 → SE sqrt(96/N)
    const p3 = 0.0026997960632601866; // P(|Z| > 3)
    const p4 = 6.334248366623996e-5; // P(|Z| > 4)
    assert.ok(Math.abs(t3 / N - p3) < 5 * se(p3), `P(|z|>3) ${t3 / N}`);
    assert.ok(Math.abs(t4 / N - p4) < 5 * se(p4), `P(|z|>4) ${t4 / N}`);
    assert.ok(maxAbs > 4.5 && maxAbs < 10.1, `max |z| ${maxAbs}`); // E[max] ≈ 5.2 for 2M samples
  });

  test('histogram matches N(0,1): chi-square over 92 bins', () => {
    // bins: (-inf,-4.5), 90 bins of width 0.1 on [-4.5, 4.5), [4.5, inf)
    const nb = 92;
    const counts = new Float64Array(nb);
    for (let i = 0; i < N; i++) {
      const x = z[i]!;
      const b = x < -4.5 ? 0 : x >= 4.5 ? nb - 1 : 1 + Math.min(89, Math.floor((x + 4.5) * 10));
      counts[b]!++;
    }
    const phi = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    const binP = (a: number, b: number): number => {
      let s = 0;
      const m = 40;
      const h = (b - a) / m;
      for (let q = 0; q < m; q += 2) {
        const x = a + q * h;
        s += (h / 3) * (phi(x) + 4 * phi(x + h) + phi(x + 2 * h));
      }
      return s;
    };
    const probs = new Float64Array(nb);
    let inner = 0;
    for (let b = 1; b < nb - 1; b++) {
      probs[b] = binP(-4.5 + (b - 1) * 0.1, -4.5 + b * 0.1);
      inner += probs[b]!;
    }
    probs[0] = probs[nb - 1] = (1 - inner) / 2;
    let chi2 = 0;
    for (let b = 0; b < nb; b++) chi2 += (counts[b]! - N * probs[b]!) ** 2 / (N * probs[b]!);
    // df = 91: mean 91, sd 13.5; the bound is mean + 5 sd (p ≈ 1e-6). A wrong table entry or wedge test
    // (a few % density error over one layer) pushes chi2 into the thousands.
    assert.ok(chi2 < 91 + 5 * Math.sqrt(2 * 91), `chi2 ${chi2}`);
  });

  test('the tail beyond R follows the truncated normal (Kolmogorov–Smirnov)', () => {
    // 2^24 samples → ~9700 with |z| > R (P(|Z| > R) = 5.76e-4)
    const tails: number[] = [];
    const buf = new Float32Array(1 << 20);
    for (let k = 0; k < 16; k++) {
      fillDirection(mixSeed(2024, 1), k, buf);
      for (let i = 0; i < buf.length; i++) if (Math.abs(buf[i]!) > ZIG_R) tails.push(Math.abs(buf[i]!));
    }
    const n = tails.length;
    const pTail = 5.7611e-4; // P(|Z| > R) = 2 Q(3.442619855899)
    assert.ok(Math.abs(n / (16 << 20) - pTail) < 5 * Math.sqrt(pTail / (16 << 20)), `tail count ${n}`);
    tails.sort((a, b) => a - b);
    // conditional CDF G(x) = (Q(R) - Q(x)) / Q(R), Q by Simpson integration of the density
    const phi = (x: number): number => Math.exp(-0.5 * x * x);
    const grid = 4000;
    const h = 8 / grid;
    const cum = new Float64Array(grid + 1); // ∫_R^{R + i h} phi
    for (let i = 0; i < grid; i++) {
      const x = ZIG_R + i * h;
      cum[i + 1] = cum[i]! + (h / 6) * (phi(x) + 4 * phi(x + h / 2) + phi(x + h));
    }
    const total = cum[grid]!;
    const G = (x: number): number => {
      const u = (x - ZIG_R) / h;
      const i = Math.min(grid - 1, Math.floor(u));
      return (cum[i]! + (u - i) * (cum[i + 1]! - cum[i]!)) / total;
    };
    let d = 0;
    for (let i = 0; i < n; i++) {
      const g = G(tails[i]!);
      d = Math.max(d, Math.abs(g - i / n), Math.abs(g - (i + 1) / n));
    }
    // KS: P(sqrt(n) D > 1.95) ≈ 1e-3. Sampling the tail as R + Exp(R) without the rejection step gives ≈ 4.3.
    assert.ok(Math.sqrt(n) * d < 1.95, `KS sqrt(n)·D = ${Math.sqrt(n) * d} (n = ${n})`);
  });

  test('no correlation between directions, seeds, neighbours and blocks', () => {
    const M = 1 << 19;
    const corr = (a: Float32Array, b: Float32Array, lag = 0): number => {
      let s = 0;
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      const n = Math.min(a.length, b.length - lag);
      for (let i = 0; i < n; i++) {
        const x = a[i]!;
        const y = b[i + lag]!;
        s += x * y;
        sa += x;
        sb += y;
        saa += x * x;
        sbb += y * y;
      }
      const cov = s / n - (sa / n) * (sb / n);
      return cov / Math.sqrt((saa / n - (sa / n) ** 2) * (sbb / n - (sb / n) ** 2));
    };
    const tol = 5 / Math.sqrt(M); // SE of a correlation of independent samples = 1/sqrt(n)
    const base = mixSeed(2024, 0);
    const z0 = z.subarray(0, M);
    const cases: [string, number][] = [
      ['k vs k+1', corr(z0, direction(base, 1, M))],
      ['k vs k+1000', corr(z0, direction(base, 1000, M))],
      ['seed vs seed+1', corr(z0, direction(base + 1, 0, M))],
      ['lag 1', corr(z0, z, 1)],
      ['lag BLOCK (same position, next block)', corr(z0, z, BLOCK)],
      ['lag BLOCK-1', corr(z0, z, BLOCK - 1)],
      ['|z| lag 1', corr(z0.map(Math.abs), z.subarray(0, M + 1).map(Math.abs), 1)],
      ['z^2 vs next direction z^2', corr(z0.map((x) => x * x), direction(base, 1, M).map((x) => x * x))],
    ];
    for (const [name, c] of cases) assert.ok(Math.abs(c) < tol, `${name}: corr ${c}`);
  });
});

describe('UniformRng', () => {
  test('checked-in vectors', () => {
    for (const c of uvectors.cases) {
      const mk = (): UniformRng => new UniformRng(c.seed);
      assert.deepEqual(mk().getState(), c.state);
      const u = mk();
      assert.deepEqual(c.uint32.map(() => u.nextUint32()), c.uint32);
      const f = mk();
      assert.deepEqual(c.float.map(() => f.nextFloat()), c.float);
      const n = mk();
      assert.deepEqual(c.normal.map(() => n.normal()), c.normal);
      const i = mk();
      assert.deepEqual(c.int1000.map(() => i.nextInt(1000)), c.int1000);
      const g = mk();
      assert.deepEqual(c.gamma05.map(() => g.gamma(0.5)), c.gamma05);
    }
  });

  test('getState / setState resume the exact sequence', () => {
    const g = new UniformRng(99);
    for (let i = 0; i < 37; i++) g.nextUint32();
    g.normal();
    const saved = g.getState();
    assert.ok(saved.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32));
    const json = JSON.parse(JSON.stringify(saved)) as number[];
    const a = [g.nextUint32(), g.nextFloat(), g.normal(), g.gamma(2.5), g.nextInt(17)];
    const h = UniformRng.fromState(json);
    assert.deepEqual([h.nextUint32(), h.nextFloat(), h.normal(), h.gamma(2.5), h.nextInt(17)], a);
    const k = new UniformRng(1);
    k.setState(saved);
    assert.equal(k.nextUint32(), a[0]);
    const c = g.clone();
    assert.equal(c.nextUint32(), g.nextUint32());
    assert.throws(() => k.setState([0, 0, 0, 0]), RangeError);
    assert.throws(() => k.setState([1, 2, 3]), RangeError);
    assert.throws(() => k.setState([1, 2, 3, -4]), RangeError);
    assert.throws(() => new UniformRng(-1), RangeError);
  });

  test('nextFloat / nextFloat32 ranges and moments', () => {
    const g = new UniformRng(10);
    const n = 200_000;
    let s = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const u = g.nextFloat();
      s += u;
      min = Math.min(min, u);
      max = Math.max(max, u);
      const v = g.nextFloat32();
      assert.ok(v >= 0 && v < 1 && Math.fround(v) === v);
    }
    assert.ok(min >= 0 && max < 1);
    assert.ok(Math.abs(s / n - 0.5) < 5 * Math.sqrt(1 / 12 / n));
  });

  test('nextInt is in range and unbiased', () => {
    const g = new UniformRng(11);
    const n = 7;
    const counts = new Array<number>(n).fill(0);
    const draws = 140_000;
    for (let i = 0; i < draws; i++) counts[g.nextInt(n)]!++;
    const e = draws / n;
    const chi2 = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
    assert.ok(chi2 < 6 + 5 * Math.sqrt(12), `chi2 ${chi2}`); // df 6
    // n = 3·2^30: plain (u mod n) would put 2/3 of the mass in [0, 2^30); rejection gives 1/3
    let low = 0;
    for (let i = 0; i < 30_000; i++) {
      const v = g.nextInt(3 * 2 ** 30);
      assert.ok(v >= 0 && v < 3 * 2 ** 30 && Number.isInteger(v));
      if (v < 2 ** 30) low++;
    }
    assert.ok(Math.abs(low / 30_000 - 1 / 3) < 5 * Math.sqrt((2 / 9) / 30_000), `low fraction ${low / 30_000}`);
    for (let i = 0; i < 1000; i++) {
      const v = g.nextInt(2 ** 40 + 3);
      assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 40 + 3);
    }
    assert.equal(g.nextInt(1), 0);
    for (const bad of [0, -3, 2.5, 2 ** 53 + 2, NaN]) assert.throws(() => g.nextInt(bad), RangeError);
  });

  test('shuffle is a deterministic, uniform permutation', () => {
    const a = new UniformRng(12).shuffle(Array.from({ length: 100 }, (_, i) => i));
    const b = new UniformRng(12).shuffle(Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(a, b);
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
    assert.notDeepEqual(a, Array.from({ length: 100 }, (_, i) => i));
    const typed = new UniformRng(12).shuffle(Int32Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(Array.from(typed), a);
    // all 6 permutations of 3 elements equally likely
    const g = new UniformRng(13);
    const counts = new Map<string, number>();
    const reps = 60_000;
    for (let i = 0; i < reps; i++) {
      const key = g.shuffle([0, 1, 2]).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    assert.equal(counts.size, 6);
    const e = reps / 6;
    const chi2 = [...counts.values()].reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
    assert.ok(chi2 < 5 + 5 * Math.sqrt(10), `chi2 ${chi2}`);
  });

  test('normal, gamma and dirichlet moments', () => {
    const g = new UniformRng(14);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = g.normal();
      s += x;
      s2 += x * x;
    }
    assert.ok(Math.abs(s / n) < 5 / Math.sqrt(n));
    assert.ok(Math.abs(s2 / n - 1) < 5 * Math.sqrt(2 / n));
    for (const shape of [0.3, 1, 4.5]) {
      const m = 100_000;
      let a = 0;
      let a2 = 0;
      for (let i = 0; i < m; i++) {
        const x = g.gamma(shape);
        assert.ok(x >= 0);
        a += x;
        a2 += x * x;
      }
      const mean = a / m;
      const variance = a2 / m - mean * mean;
      // Gamma(k): mean k, variance k; SE(mean) = sqrt(k/m); SE(var) ≈ sqrt((μ4 - k²)/m), μ4 = 3k² + 6k
      assert.ok(Math.abs(mean - shape) < 5 * Math.sqrt(shape / m), `gamma(${shape}) mean ${mean}`);
      const seVar = Math.sqrt((2 * shape * shape + 6 * shape) / m);
      assert.ok(Math.abs(variance - shape) < 5 * seVar, `gamma(${shape}) variance ${variance}`);
    }
    const d = g.dirichlet([0.5, 0.5, 0.5, 0.5]);
    assert.equal(d.length, 4);
    assert.ok(Math.abs(d.reduce((x, y) => x + y, 0) - 1) < 1e-12);
    assert.ok(d.every((x) => x >= 0));
    assert.throws(() => g.gamma(0), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------------
// WebAssembly kernels (src/core/rng/wasmDirections.ts): the default backend where WebAssembly SIMD exists; the JS
// kernels are the reference. The tests above run on the default backend; here both are compared directly.
// ---------------------------------------------------------------------------------------------------------
describe('seeded directions: WebAssembly kernels vs the JS reference', () => {
  /** Run fn with the given backend, then restore the default. */
  function withBackend<T>(backend: 'js' | 'wasm', fn: () => T): T {
    setDirectionBackend(backend);
    try {
      return fn();
    } finally {
      setDirectionBackend('auto');
    }
  }
  const bits64 = (a: Float64Array): BigUint64Array => new BigUint64Array(a.buffer, a.byteOffset, a.length);
  function assertSame64(a: Float64Array, b: Float64Array, what: string): void {
    const A = bits64(a);
    const B = bits64(b);
    for (let i = 0; i < A.length; i++) {
      if (A[i] !== B[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
    }
  }

  test('WebAssembly SIMD is available here and is the default backend (unless BAFFLE_RNG=js)', () => {
    const dflt = process.env.BAFFLE_RNG === 'js' ? 'js' : 'wasm';
    assert.equal(directionBackend(), dflt);
    assert.equal(withBackend('js', directionBackend), 'js');
    assert.equal(withBackend('wasm', directionBackend), 'wasm');
    assert.equal(directionBackend(), dflt);
  });

  test('the ports of dexp / dlog are bit-identical to detmath on the arguments the kernels use', () => {
    const M = loadDirectionWasm();
    assert.ok(M !== null);
    const g = new UniformRng(21);
    for (let i = 0; i < 200_000; i++) {
      // dexp(-x*x/2) for |x| < 3.8 (wedges and base strip); dlog(u) for u = (v + 0.5) * 2^-32
      const X = -0.5 * (g.nextFloat() * 3.8) ** 2;
      assert.ok(Object.is(M.dexp(X), dexp(X)), `dexp(${X})`);
      const u = (g.nextUint32() + 0.5) * 2 ** -32;
      assert.ok(Object.is(M.dlog(u), dlog(u)), `dlog(${u})`);
    }
    for (const v of [0, 1, 2, 0x7fffffff, 0x80000000, 0xb504f333, 0xb504f334, 0xfffffffe, 0xffffffff]) {
      const u = (v + 0.5) * 2 ** -32;
      assert.ok(Object.is(M.dlog(u), dlog(u)), `dlog(${u})`);
    }
    for (const X of [0, -1e-300, -0.5, -Math.LN2 / 2, -Math.LN2, -1, -6.5, -7.2]) {
      assert.ok(Object.is(M.dexp(X), dexp(X)), `dexp(${X})`);
    }
  });

  test('fill / perturb / accumulate give the same bits over many (seed, k, range) cases', () => {
    const g = new UniformRng(22);
    // lengths: single and partial blocks, 4k+1 / 4k+2 / 4k+3 blocks (lone last block left to JS), more than
    // one kernel call (16 blocks), odd everything
    const lengths = [1, 7, 255, 256, 1023, 1024, 1025, 2047, 2049, 3 * 1024, 4096, 5 * 1024 + 1, 6 * 1024 - 3];
    lengths.push(7 * 1024 + 513, 17 * 1024 + 3, 21 * 1024, 40 * 1024 - 5);
    let elements = 0;
    let tails = 0;
    for (let c = 0; c < 48; c++) {
      const n = c < lengths.length ? lengths[c]! : 1 + g.nextInt(50 * 1024);
      const seed = c === 0 ? 0 : c === 1 ? 0xffffffff : g.nextUint32();
      const k = c === 2 ? 0xffffffff : g.nextInt(1000);
      // range: whole, aligned start, or arbitrary [start, end)
      let start = 0;
      let end = n;
      if (c % 3 === 1) start = Math.min(n, 1024 * g.nextInt(3));
      if (c % 3 === 2) {
        start = g.nextInt(n);
        end = start + g.nextInt(n - start + 1);
      }
      const w = new Float32Array(n);
      for (let i = 0; i < n; i++) w[i] = g.normal() * 0.1;
      const g64 = Float64Array.from(w, (x) => x * 3);
      const sigma = 1e-3 * (1 + g.nextFloat());
      const coef = g.normal();
      const run = (backend: 'js' | 'wasm') =>
        withBackend(backend, () => {
          const z = new Float32Array(n).fill(-7);
          fillDirection(seed, k, z, start, end);
          const p = new Float32Array(n).fill(5);
          perturbInto(p, w, sigma, seed, k, start, end);
          const inPlace = w.slice();
          perturbInto(inPlace, inPlace, -sigma, seed, k, start, end);
          const a64 = g64.slice();
          accumulateDirection(a64, coef, seed, k, start, end);
          const a32 = w.slice();
          accumulateDirection(a32, coef, seed, k, start, end);
          return { z, p, inPlace, a64, a32 };
        });
      const js = run('js');
      const wa = run('wasm');
      const what = `case ${c}: seed ${seed} k ${k} n ${n} [${start}, ${end})`;
      assertSameBits(wa.z, js.z, `${what} fill`);
      assertSameBits(wa.p, js.p, `${what} perturb`);
      assertSameBits(wa.inPlace, js.inPlace, `${what} perturb in place`);
      assertSame64(wa.a64, js.a64, `${what} accumulate f64`);
      assertSameBits(wa.a32, js.a32, `${what} accumulate f32`);
      elements += end - start;
      for (let i = start; i < end; i++) if (Math.abs(js.z[i]!) > ZIG_R) tails++;
    }
    // enough samples that every slow-path branch occurs (misses ~2.8 %, tail samples ~0.05 %)
    assert.ok(elements > 400_000, `elements ${elements}`);
    assert.ok(tails > 50, `tail samples ${tails}`);
  });

  test('checked-in vectors and the naive reference hold on both backends', () => {
    for (const backend of ['js', 'wasm'] as const) {
      withBackend(backend, () => {
        checkVectors(`${backend}: `);
        const z = new Float32Array(9000);
        fillDirection(0xc0ffee, 17, z, 1000, 9000);
        assertSameBits(z.subarray(1000), refDirection(0xc0ffee, 17, 1000, 9000), `${backend} vs reference`);
      });
    }
  });

  test('BAFFLE_RNG=js forces the JS kernels (same bits)', () => {
    const mod = new URL('../src/core/rng/directions.ts', import.meta.url).href;
    const code =
      `const m = await import(${JSON.stringify(mod)});` +
      'const z = new Float32Array(20000); m.fillDirection(99, 5, z, 3, 19999);' +
      'const u = new Uint32Array(z.buffer); let h = 0;' +
      'for (let i = 0; i < u.length; i++) h = (Math.imul(h, 31) + u[i]) | 0;' +
      'console.log(m.directionBackend() + " " + h);';
    const runChild = (env: Record<string, string | undefined>): string[] =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, ...env },
        encoding: 'utf8',
      })
        .trim()
        .split(' ');
    const forced = runChild({ BAFFLE_RNG: 'js' });
    const dflt = runChild({ BAFFLE_RNG: undefined });
    assert.equal(forced[0], 'js');
    assert.equal(dflt[0], 'wasm');
    assert.equal(forced[1], dflt[1], 'same bits');
  });
});
