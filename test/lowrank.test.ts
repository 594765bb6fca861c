// Low-rank directions (perturbation 'lowrank'): the checked-in vectors, a naive implementation of SPEC.md §8
// against the fast kernels (client and server, bit for bit), E[z zᵀ] = I, the configuration's refusals, and short
// simulated runs (worker-count determinism, a falling loss). Fixed seeds throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { directionBackend, fillDirection, mixSeed, setDirectionBackend } from '../src/core/rng/directions.ts';
import { accumulateLowRank, fillFactors, fillLowRank, lowRankPlan, lowRankScale, perturbLowRank, setFactorCacheCap, type LowRankPlan } from '../src/core/rng/lowrank.ts';
import { accumulateSets } from '../src/core/zo/server.ts';
import { sums } from '../scripts/lowrank-vectors-gen.ts';
import { ConfigError, resolveConfig, resolveServeConfig } from '../src/core/config/index.ts';
import { loadDataset } from '../src/node/data/index.ts';
import { simulate, type MetricsRecord } from '../src/app/simulation.ts';

interface VectorCase {
  name: string;
  layout: { name: string; shape: number[] }[];
  rank: number;
  plan: LowRankPlan;
  directions: ({ seed: number; k: number } & (
    | { factors: ({ A: number[]; B: number[] } | { gaussian: number[] })[]; z: number[] }
    | { factorsFirst8: number[]; at: Record<string, number>; sum: number; sumSq: number }
  ))[];
  rebuild: { sets: { seed: number; coefs: number[] }[] } & ({ g: number[] } | { at: Record<string, number>; sum: number; sumSq: number });
}
const vectors = JSON.parse(readFileSync(new URL('./vectors/rng-lowrank.json', import.meta.url), 'utf8')) as { specVersion: number; cases: VectorCase[] };

function withOffsets(layout: { shape: number[] }[]): { shape: number[]; offset: number; size: number }[] {
  let offset = 0;
  return layout.map((e) => {
    const size = e.shape.reduce((a, d) => a * d, 1);
    const r = { shape: e.shape, offset, size };
    offset += size;
    return r;
  });
}

/** z of SPEC.md §8 written out naively: the factor stream from fillDirection, then the formula per element. */
function naiveZ(plan: LowRankPlan, seed: number, k: number): Float32Array {
  const f = new Float32Array(plan.factors);
  fillDirection(seed, k, f);
  const z = new Float32Array(plan.params);
  const r = plan.rank;
  const c = 1 / Math.sqrt(r);
  for (const t of plan.tensors) {
    if (t.rows === 0) {
      for (let i = 0; i < t.size; i++) z[t.offset + i] = f[t.factor + i]!;
      continue;
    }
    for (let i = 0; i < t.rows; i++) {
      for (let j = 0; j < t.cols; j++) {
        let s = f[t.factor + i * r]! * f[t.factor + t.rows * r + j * r]!;
        for (let q = 1; q < r; q++) s = s + f[t.factor + i * r + q]! * f[t.factor + t.rows * r + j * r + q]!;
        z[t.offset + i * t.cols + j] = Math.fround(s * c);
      }
    }
  }
  return z;
}

/** ĝ of SPEC.md §8 written out naively: per element, every term in order. */
function naiveRebuild(plan: LowRankPlan, sets: { seed: number; coefs: ArrayLike<number> }[]): Float64Array {
  const g = new Float64Array(plan.params);
  const r = plan.rank;
  const c = 1 / Math.sqrt(r);
  const f = new Float32Array(plan.factors);
  const terms: { f: Float32Array; coef: number }[] = [];
  for (const s of sets) {
    for (let k = 0; k < s.coefs.length; k++) {
      if (s.coefs[k] === 0) continue;
      fillDirection(s.seed, k, f);
      terms.push({ f: f.slice(), coef: s.coefs[k]! });
    }
  }
  for (const t of plan.tensors) {
    for (let e = 0; e < t.size; e++) {
      let acc = 0;
      for (const term of terms) {
        if (t.rows === 0) acc = acc + term.coef * term.f[t.factor + e]!;
        else {
          const i = Math.floor(e / t.cols);
          const j = e - i * t.cols;
          for (let q = 0; q < r; q++) acc = acc + term.coef * c * term.f[t.factor + i * r + q]! * term.f[t.factor + t.rows * r + j * r + q]!;
        }
      }
      g[t.offset + e] = acc;
    }
  }
  return g;
}


test('the plan: matrices as [shape[0], rest] with (m+p)·r factor positions, other tensors Gaussian, in layout order', () => {
  const plan = lowRankPlan(withOffsets([{ shape: [128, 1024] }, { shape: [128] }, { shape: [6, 1, 5, 5] }, { shape: [1, 7] }, { shape: [] }]), 2);
  assert.equal(plan.params, 128 * 1024 + 128 + 150 + 7 + 1);
  assert.deepEqual(
    plan.tensors.map((t) => [t.rows, t.cols, t.factor]),
    [
      [128, 1024, 0],
      [0, 0, (128 + 1024) * 2],
      [6, 25, (128 + 1024) * 2 + 128],
      [0, 0, (128 + 1024) * 2 + 128 + (6 + 25) * 2],
      [0, 0, (128 + 1024) * 2 + 128 + (6 + 25) * 2 + 7],
    ],
  );
  assert.equal(plan.factors, (128 + 1024) * 2 + 128 + 62 + 7 + 1);
  assert.throws(() => lowRankPlan(withOffsets([{ shape: [3, 3] }]), 0), /rank/);
  assert.throws(() => lowRankPlan([{ shape: [3, 3], offset: 1, size: 9 }], 1), /consecutive/);
  assert.equal(lowRankScale(1), 1);
  assert.equal(lowRankScale(4), 0.5);
});

test('checked-in vectors (test/vectors/rng-lowrank.json): plan, factors, z and the server rebuild, exactly', () => {
  assert.equal(vectors.specVersion, 1);
  assert.ok(vectors.cases.length >= 4);
  for (const c of vectors.cases) {
    const plan = lowRankPlan(withOffsets(c.layout), c.rank);
    assert.deepEqual(plan, c.plan, c.name);
    const z = new Float32Array(plan.params);
    const f = new Float32Array(plan.factors);
    for (const d of c.directions) {
      const what = `${c.name} (seed ${d.seed}, k ${d.k})`;
      fillFactors(plan, d.seed, d.k, f);
      fillLowRank(plan, d.seed, d.k, z);
      assert.deepEqual(z, naiveZ(plan, d.seed, d.k), `${what}: fast z = naive z`);
      if ('z' in d) {
        const flat = d.factors.flatMap((t) => ('A' in t ? [...t.A, ...t.B] : t.gaussian));
        assert.deepEqual(Array.from(f), flat, `${what}: factors`);
        assert.deepEqual(Array.from(z), d.z, `${what}: z`);
      } else {
        assert.deepEqual(Array.from(f.subarray(0, 8)), d.factorsFirst8, `${what}: factors`);
        for (const [i, v] of Object.entries(d.at)) assert.equal(z[Number(i)], v, `${what}: z[${i}]`);
        assert.deepEqual(sums(z), { sum: d.sum, sumSq: d.sumSq }, `${what}: sums`);
      }
    }
    const sets = c.rebuild.sets.map((s) => ({ seed: s.seed, coefs: Float32Array.from(s.coefs) }));
    const g = new Float64Array(plan.params);
    accumulateLowRank(g, sets, plan);
    if ('g' in c.rebuild) assert.deepEqual(Array.from(g), c.rebuild.g, `${c.name}: ĝ`);
    else {
      for (const [i, v] of Object.entries(c.rebuild.at)) assert.equal(g[Number(i)], v, `${c.name}: ĝ[${i}]`);
      assert.deepEqual(sums(g), { sum: c.rebuild.sum, sumSq: c.rebuild.sumSq }, `${c.name}: ĝ sums`);
    }
  }
});

const mlpPlan = (rank: number) => lowRankPlan(withOffsets([{ shape: [40, 300] }, { shape: [40] }, { shape: [10, 40] }, { shape: [10] }]), rank);

test('the client perturbation is fround(w + σ·z), in place too, and follows the sign of σ', () => {
  for (const rank of [1, 3]) {
    const plan = mlpPlan(rank);
    const n = plan.params;
    const w = new Float32Array(n);
    fillDirection(5, 5, w);
    const z = naiveZ(plan, 77, 4);
    for (const sigma of [1e-3, -1e-3]) {
      const out = new Float32Array(n);
      perturbLowRank(out, w, sigma, plan, 77, 4);
      const expected = new Float32Array(n);
      for (let i = 0; i < n; i++) expected[i] = w[i]! + sigma * z[i]!;
      assert.deepEqual(out, expected, `rank ${rank}, σ ${sigma}`);
      const inPlace = w.slice();
      perturbLowRank(inPlace, inPlace, sigma, plan, 77, 4);
      assert.deepEqual(inPlace, expected, `rank ${rank}, in place`);
    }
  }
  assert.throws(() => perturbLowRank(new Float32Array(5), new Float32Array(5), 1, mlpPlan(1), 1, 1), /plan is for/);
});

test('the server rebuild: the naive per-element sum bit for bit, whatever the split; close to Σ coef_k z_k', () => {
  for (const rank of [1, 2]) {
    const plan = mlpPlan(rank);
    const n = plan.params;
    // Per-client style sets, 70 terms (more than one T_CHUNK of 64 for rank 1), with zeros among the coefficients.
    const sets = [0, 1, 2, 3, 4].map((c) => {
      const coefs = new Float32Array(14);
      for (let k = 0; k < 14; k++) coefs[k] = k === 3 ? 0 : Math.sin(c * 14 + k) * 0.1;
      return { seed: mixSeed(9, c), coefs };
    });
    const whole = new Float64Array(n);
    accumulateLowRank(whole, sets, plan);
    assert.deepEqual(whole, naiveRebuild(plan, sets), `rank ${rank}: tiled kernel = naive`);
    // Splits at odd places (inside rows, inside tensors) give the same bits; elements outside stay untouched.
    for (const cuts of [[0, 1, n], [0, 1000, 1024, 5555, 12000, n], [0, 12000, 12001, 12040, 12440, n]]) {
      const split = new Float64Array(n).fill(0.25);
      for (let s = 0; s + 1 < cuts.length; s++) {
        split.fill(0, cuts[s], cuts[s + 1]);
        accumulateSets(split, sets, cuts[s], cuts[s + 1], plan);
      }
      assert.deepEqual(split, whole, `rank ${rank}, cuts ${cuts.join(',')}`);
    }
    const partial = new Float64Array(n).fill(0.25);
    accumulateLowRank(partial, sets, plan, 300, 700);
    assert.equal(partial[299], 0.25);
    assert.equal(partial[700], 0.25);
    // Against Σ_sets Σ_k coef_k z_k with the clients' float32 z: equal up to float32 rounding of z.
    const ref = new Float64Array(n);
    let scale = 0;
    for (const s of sets) {
      for (let k = 0; k < s.coefs.length; k++) {
        const z = naiveZ(plan, s.seed, k);
        for (let i = 0; i < n; i++) ref[i] += s.coefs[k]! * z[i]!;
        scale += Math.abs(s.coefs[k]!);
      }
    }
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(ref[i]! - whole[i]!));
    assert.ok(worst < scale * 1e-6, `rank ${rank}: max |ĝ − Σ coef z| = ${worst}`);
  }
  assert.throws(() => accumulateSets(new Float32Array(mlpPlan(1).params), [{ seed: 1, coefs: Float32Array.of(1) }], 0, undefined, mlpPlan(1)), /Float64Array/);
});

test('the WebAssembly kernels give the JS kernels\' bits (server: odd widths and row counts, T not a multiple of 4, partial rows; client: rank 1)', (t) => {
  setDirectionBackend('auto');
  if (directionBackend() !== 'wasm') {
    t.skip('no WebAssembly SIMD here');
    return;
  }
  const plan = lowRankPlan(withOffsets([{ shape: [37, 301] }, { shape: [5] }, { shape: [7, 3, 3, 3] }, { shape: [2, 1024] }]), 3);
  const n = plan.params;
  const sets = [0, 1, 2].map((c) => ({ seed: mixSeed(77, c), coefs: Float32Array.from({ length: 11 }, (_, k) => Math.cos(3 * c + k) * 0.01) }));
  const ranges = [[0, n], [0, 301], [5, 11000], [11137, 11142], [11142, n], [301 * 3 + 7, 301 * 30]];
  for (const [a, b] of ranges) {
    const viaWasm = new Float64Array(n).fill(0.5);
    accumulateLowRank(viaWasm, sets, plan, a, b);
    setDirectionBackend('js');
    try {
      const viaJs = new Float64Array(n).fill(0.5);
      accumulateLowRank(viaJs, sets, plan, a, b);
      assert.deepEqual(viaWasm, viaJs, `range [${a}, ${b})`);
    } finally {
      setDirectionBackend('auto');
    }
  }
  const whole = new Float64Array(n);
  accumulateLowRank(whole, sets, plan);
  assert.deepEqual(whole, naiveRebuild(plan, sets));
  // The client's rank-1 kernel (rows of odd width, 4-lane steps and the scalar rest), in place too.
  const plan1 = lowRankPlan(withOffsets([{ shape: [37, 301] }, { shape: [5] }, { shape: [7, 3, 3, 3] }, { shape: [3, 4] }]), 1);
  const w = new Float32Array(plan1.params);
  fillDirection(3, 3, w);
  for (const sigma of [1e-4, -0.5]) {
    const viaWasm = new Float32Array(plan1.params);
    perturbLowRank(viaWasm, w, sigma, plan1, 11, 2);
    const inPlace = w.slice();
    perturbLowRank(inPlace, inPlace, sigma, plan1, 11, 2);
    setDirectionBackend('js');
    const viaJs = new Float32Array(plan1.params);
    try {
      perturbLowRank(viaJs, w, sigma, plan1, 11, 2);
    } finally {
      setDirectionBackend('auto');
    }
    assert.deepEqual(viaWasm, viaJs, `client, σ ${sigma}`);
    assert.deepEqual(inPlace, viaJs, `client in place, σ ${sigma}`);
  }
  // Without the per-term factor cache (a step too large for it): the same bits.
  const cap = setFactorCacheCap(0);
  try {
    for (const [a, b] of ranges) {
      const uncached = new Float64Array(n).fill(0.5);
      accumulateLowRank(uncached, sets, plan, a, b);
      const ref = new Float64Array(n).fill(0.5);
      setFactorCacheCap(cap);
      accumulateLowRank(ref, sets, plan, a, b);
      setFactorCacheCap(0);
      assert.deepEqual(uncached, ref, `uncached, range [${a}, ${b})`);
    }
  } finally {
    setFactorCacheCap(cap);
  }
});

test('E[z zᵀ] = I: unit second moments, uncorrelated elements in a row, a column and across tensors', () => {
  for (const rank of [1, 4]) {
    const plan = lowRankPlan(withOffsets([{ shape: [6, 8] }, { shape: [6] }]), rank);
    const n = plan.params;
    const N = 20000;
    const z = new Float32Array(n);
    const second = new Float64Array(n);
    // pairs: same row (0,1), same column (0, 8), neither (0, 9), matrix × bias (0, 48)
    const pairs = [
      [0, 1],
      [0, 8],
      [0, 9],
      [0, 48],
    ] as const;
    const cross = new Float64Array(pairs.length);
    for (let k = 0; k < N; k++) {
      fillLowRank(plan, 31337, k, z);
      for (let i = 0; i < n; i++) second[i] += z[i]! * z[i]!;
      pairs.forEach(([a, b], p) => (cross[p] += z[a]! * z[b]!));
    }
    // Var(z²) is 8 for rank 1 (E a⁴ b⁴ = 9), 3·(1 + 2/r)... bounded by 8: 5 standard errors ≈ 5·√(8/N) ≈ 0.1.
    for (let i = 0; i < n; i++) assert.ok(Math.abs(second[i]! / N - 1) < 0.1, `rank ${rank}: E z_${i}² = ${second[i]! / N}`);
    pairs.forEach(([a, b], p) => assert.ok(Math.abs(cross[p]! / N) < 0.05, `rank ${rank}: E z_${a} z_${b} = ${cross[p]! / N}`));
  }
});

test('perturbation and rank: defaults, refusals that name the keys', () => {
  const c = resolveConfig([{}]);
  assert.equal(c.perturbation, 'gaussian');
  assert.equal(c.rank, 1);
  assert.equal(resolveConfig([{ perturbation: 'lowrank', rank: 4 }]).rank, 4);
  const problems = (layer: Record<string, unknown>, serve = false): string[] => {
    try {
      if (serve) resolveServeConfig([layer]);
      else resolveConfig([layer]);
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems;
    }
  };
  assert.match(problems({ perturbation: 'sparse' }).join('\n'), /perturbation: got "sparse"/);
  assert.match(problems({ perturbation: 'lowrank', rank: 0 }).join('\n'), /rank: got 0/);
  assert.match(problems({ perturbation: 'lowrank', rank: 1.5 }).join('\n'), /rank: got 1.5/);
  assert.match(problems({ rank: 2 }).join('\n'), /rank 2 with perturbation 'gaussian'/);
  assert.match(problems({ perturbation: 'lowrank', algorithm: 'bp' }).join('\n'), /perturbation 'lowrank' with algorithm 'bp'/);
  assert.match(problems({ perturbation: 'lowrank' }, true).join('\n'), /perturbation 'lowrank' with baffle serve/);
  assert.deepEqual(problems({ perturbation: 'lowrank', rank: 3, scheme: 'central', seedPolicy: 'shared' }), []);
  assert.deepEqual(problems({ perturbation: 'lowrank', fedopt: 'fedavg' }), []);
});

// ---- short simulated runs on mnist-10k ---------------------------------------------------------------------

const dataset = loadDataset('mnist-10k');
const withoutTime = (m: MetricsRecord[]) => m.map(({ wallMs: _w, ...rest }) => rest);

test('lowrank runs: same config and seed → same metrics and weights with 1 and 2 workers', async () => {
  for (const extra of [{ seedPolicy: 'per-client', rank: 1 }, { seedPolicy: 'shared', rank: 2, scheme: 'central' }]) {
    const config = resolveConfig([{ hidden: [8], K: 6, clients: 4, maxSteps: 6, evalEvery: 3, testSubset: 300, perturbation: 'lowrank', ...extra }]);
    const a = await simulate(config, dataset, 1);
    const b = await simulate(config, dataset, 2);
    assert.equal(a.metrics.length, 2);
    assert.deepEqual(withoutTime(a.metrics), withoutTime(b.metrics), JSON.stringify(extra));
    assert.deepEqual(a.evalWeights, b.evalWeights);
    // ... and not the Gaussian run's.
    const g = await simulate({ ...config, perturbation: 'gaussian', rank: 1 }, dataset, 2);
    assert.notDeepEqual(withoutTime(g.metrics), withoutTime(a.metrics));
    // The workers ran the member-batched step (memberBatch, on by default for a zoo mlp): the per-pass path's
    // float32 rounding differs, so its weights do, but its run is the same to a few ulps of a loss per step.
    const p = await simulate({ ...config, memberBatch: false }, dataset, 2);
    assert.notDeepEqual(p.evalWeights, a.evalWeights, 'memberBatch = false takes the per-pass path');
    for (let i = 0; i < a.metrics.length; i++) {
      const [x, y] = [a.metrics[i]!, p.metrics[i]!];
      assert.ok(Math.abs(x.testLoss - y.testLoss) < 1e-3 * y.testLoss, `step ${x.step}: test loss ${x.testLoss} (member-batched) vs ${y.testLoss} (per-pass)`);
    }
  }
});

test('FedAvg with lowrank directions: local steps use them (not the Gaussian run), same bits with 1 and 2 workers', async () => {
  const config = resolveConfig([{ hidden: [8], K: 6, clients: 4, fedopt: 'fedavg', localSteps: 2, localOptimizer: 'adam', maxSteps: 3, evalEvery: 3, testSubset: 300, perturbation: 'lowrank', ema: false }]);
  const a = await simulate(config, dataset, 1);
  const b = await simulate(config, dataset, 2);
  assert.deepEqual(withoutTime(a.metrics), withoutTime(b.metrics));
  assert.deepEqual(a.evalWeights, b.evalWeights);
  const g = await simulate({ ...config, perturbation: 'gaussian' }, dataset, 2);
  assert.notDeepEqual(g.evalWeights, a.evalWeights);
  assert.ok(Number.isFinite(a.metrics[0]!.testLoss));
});

test('FedSGD with lowrank directions learns mnist-10k digits (loss falls, accuracy well above chance)', async () => {
  const config = resolveConfig([
    { hidden: [16], K: 20, clients: 10, maxSteps: 60, evalEvery: 20, testSubset: 1000, seed: 3, perturbation: 'lowrank', ema: false },
  ]);
  const { metrics } = await simulate(config, dataset, 2);
  const first = metrics[0]!;
  const last = metrics[metrics.length - 1]!;
  assert.ok(last.testLoss < first.testLoss, `test loss ${first.testLoss} → ${last.testLoss}`);
  assert.ok(last.testLoss < 1.6, `test loss after 60 steps ${last.testLoss}`);
  assert.ok(last.testAccuracy > 0.5, `accuracy after 60 steps ${last.testAccuracy}`);
});

// ---- the member-batched client step (src/core/zo/lowrankBatch.ts, src/node/engine/lowrankBatch.ts) ----

import { buildModel } from '../src/core/model/index.ts';
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { ReferenceSession } from '../src/core/engine/reference.ts';
import { OrtSession } from '../src/node/engine/ort.ts';
import { combineLosses, estimateBatched, estimateWith, runPasses, splitDirections, type EstimateTask } from '../src/core/zo/task.ts';
import { syntheticBatch } from '../bench/lib.ts';
import { memberFactors, mlpShape, referenceMemberLosses, shareMembers } from '../src/core/zo/lowrankBatch.ts';
import { LowRankBatchSession, memberBatchedEngine } from '../src/node/engine/lowrankBatch.ts';
import type { ModelConfig } from '../src/core/model/types.ts';

const mlpConfig = (hidden: number[], inputShape: [number, number, number], classes: number, activation: ModelConfig['activation'] = 'hardswish'): ModelConfig =>
  ({ model: 'mlp', activation, hidden, depth: 10, width: 2, classes, norm: 'none', inputShape }) as ModelConfig;

/** bench/lib's synthetic batch with labels that vary with the salt (so two batches differ in both). */
function lcgBatch(inputShape: readonly number[], count: number, classes: number, salt: number): { x: Float32Array; y: Uint8Array; count: number } {
  const b = syntheticBatch(inputShape, count, classes, salt);
  for (let i = 0; i < count; i++) b.y[i] = (i * 7 + salt) % classes;
  return b;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

test('member-batched path: covers the zoo mlp (any depth, every activation), refuses the rest with a reason', async () => {
  for (const hidden of [[], [16], [16, 8]]) {
    const c = mlpConfig(hidden, [1, 4, 4], 3);
    const shape = mlpShape(c, buildModel(c).layout.params);
    assert.ok(shape, `hidden ${JSON.stringify(hidden)}`);
    assert.deepEqual(shape.layers.map((l) => [l.m, l.p]), [...hidden, 3].map((m, i) => [m, i === 0 ? 16 : hidden[i - 1]!]));
  }
  const lenet = { ...mlpConfig([], [1, 8, 8], 10), model: 'lenet' } as ModelConfig;
  const why: { reason?: string } = {};
  assert.equal(mlpShape(lenet, buildModel(lenet).layout.params, why), null);
  assert.match(why.reason ?? '', /not a zoo mlp/);
  const c = mlpConfig([16], [1, 4, 4], 3);
  const partial = buildModel(c).layout.params.slice(2); // e.g. trainable = the last layer only
  assert.equal(mlpShape(c, partial, why), null);
  // The engine factory: null (callers keep the per-pass path) for Gaussian directions and uncovered models.
  const layout = buildModel(c).layout.params;
  assert.equal(await memberBatchedEngine(c, layout, null, why), null);
  assert.match(why.reason ?? '', /Gaussian/);
  assert.equal(await memberBatchedEngine(lenet, buildModel(lenet).layout.params, lowRankPlan(buildModel(lenet).layout.params, 1)), null);
  const engine = await memberBatchedEngine(c, layout, lowRankPlan(layout, 2));
  assert.ok(engine instanceof LowRankBatchSession);
  await engine.dispose();
});

test('member-batched path: K losses agree with the per-pass path (ReferenceSession and OrtSession) to float32 tolerance, forward and central, ranks 1 and 3', async () => {
  for (const [hidden, activation] of [[[16], 'hardswish'], [[12, 8], 'relu'], [[10], 'gelu']] as const) {
    const config = mlpConfig([...hidden], [1, 4, 4], 5, activation);
    const model = buildModel(config);
    const weights = model.initWeights(3);
    const batch = lcgBatch(config.inputShape, 9, 5, 4);
    const ref = new ReferenceSession(model);
    ref.setBatch(batch);
    const ortPass = await OrtSession.create(zooArtifact(model, { weights, trainable: ['all'] }));
    ortPass.setBatch(batch);
    const shape = mlpShape(config, model.layout.params)!;
    for (const rank of [1, 3]) {
      const plan = lowRankPlan(model.layout.params, rank);
      const fast = await LowRankBatchSession.create(shape, plan);
      fast.setBatch(batch);
      for (const scheme of ['forward', 'central'] as const) {
        const task: EstimateTask = { seed: 0x51ed, K: 7, sigma: 1e-2, scheme, lowrank: plan };
        const [all] = splitDirections(task, 1);
        const what = `${JSON.stringify(hidden)} ${activation} r=${rank} ${scheme}`;
        const scratch = new Float32Array(weights.length);
        const perPassRef = await runPasses(ref, weights, scratch, task, all!);
        const perPassOrt = await runPasses(ortPass, weights, scratch, task, all!);
        const batched = await fast.runPasses(weights, task, all!);
        // The float64 reference of the batched math (same member tensors) agrees too.
        const f64 = referenceMemberLosses(shape, weights, memberFactors(shape, plan, weights, task, shareMembers(task, all!)), batch.x, batch.y, batch.count);
        const near = (a: number, b: number, m: string) => assert.ok(Math.abs(a - b) <= 2e-6 * Math.max(1, Math.abs(b)), `${what} ${m}: ${a} vs ${b}`);
        for (const perPass of [perPassRef, perPassOrt]) {
          for (let k = 0; k < task.K; k++) near(batched.plus[k]!, perPass.plus[k]!, `L+ ${k}`);
          if (scheme === 'central') for (let k = 0; k < task.K; k++) near(batched.minus![k]!, perPass.minus![k]!, `L− ${k}`);
          else near(batched.base!, perPass.base!, 'L(W)');
        }
        const o = scheme === 'forward' ? 1 : 0;
        if (scheme === 'forward') near(batched.base!, f64[0]!, 'L(W) vs float64');
        for (let k = 0; k < task.K; k++) near(batched.plus[k]!, f64[o + k]!, `L+ ${k} vs float64`);
        // The scalars a_k: the same estimate.
        const a = combineLosses(task, [batched]).scalars;
        const b = combineLosses(task, [perPassRef]).scalars;
        assert.ok(cosine(a, b) > 0.9999, `${what}: cos ${cosine(a, b)}`);
        const e = await estimateBatched(fast, weights, task);
        assert.deepEqual(e.scalars, a);
        assert.deepEqual((await estimateWith(fast, ref, weights, scratch, task)).scalars, a);
        assert.deepEqual((await estimateWith(null, ref, weights, scratch, task)).scalars, combineLosses(task, [perPassRef]).scalars);
      }
      await fast.dispose();
    }
    await ortPass.dispose();
  }
});

test('member-batched path on the default MLP (1024-128-10, batch 32, K = 100): cos(a, a_per-pass) ≈ 1 (forward, central); any split into shares gives the one-run bits', async () => {
  const config = mlpConfig([128], [1, 32, 32], 10);
  const model = buildModel(config);
  const weights = model.initWeights(1);
  const batch = lcgBatch(config.inputShape, 32, 10, 9);
  const plan = lowRankPlan(model.layout.params, 1);
  const ortPass = await OrtSession.create(zooArtifact(model, { weights, trainable: ['all'] }));
  ortPass.setBatch(batch);
  const fast = await LowRankBatchSession.create(mlpShape(config, model.layout.params)!, plan);
  fast.setBatch(batch);
  for (const sigma of [1e-3, 1e-4]) {
    const task: EstimateTask = { seed: 0xc0ffee, K: 100, sigma, scheme: 'forward', lowrank: plan };
    const [all] = splitDirections(task, 1);
    const perPass = combineLosses(task, [await runPasses(ortPass, weights, new Float32Array(weights.length), task, all!)]);
    const batched = await estimateBatched(fast, weights, task);
    const cos = cosine(batched.scalars, perPass.scalars);
    assert.ok(cos > (sigma === 1e-3 ? 0.9999 : 0.999), `σ = ${sigma}: cos ${cos}`);
    assert.ok(Math.abs(batched.loss - perPass.loss) < 1e-5, `L(W) ${batched.loss} vs ${perPass.loss}`);
    // Any split of the directions into shares (as workers would run them) gives the one run's bits.
    for (const chunks of [2, 3, 7]) {
      const parts = [];
      for (const s of splitDirections(task, chunks)) parts.push(await fast.runPasses(weights, task, s));
      assert.deepEqual(combineLosses(task, parts), batched, `${chunks} shares`);
    }
  }
  const central: EstimateTask = { seed: 0xc0ffee, K: 100, sigma: 1e-3, scheme: 'central', lowrank: plan };
  const one = await estimateBatched(fast, weights, central);
  const parts = [];
  for (const s of splitDirections(central, 3)) parts.push(await fast.runPasses(weights, central, s));
  assert.deepEqual(combineLosses(central, parts), one);
  const perPass = combineLosses(central, [await runPasses(ortPass, weights, new Float32Array(weights.length), central, splitDirections(central, 1)[0]!)]);
  assert.ok(cosine(one.scalars, perPass.scalars) > 0.9999, `central: cos ${cosine(one.scalars, perPass.scalars)}`);
  await fast.dispose();
  await ortPass.dispose();
});
