// The BAFFLE estimator against the true gradient on a tiny model (fixed seeds throughout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../src/core/model/index.ts';
import { OrtSession } from '../src/node/engine/ort.ts';
import { estimate } from '../src/core/zo/task.ts';
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { accumulateSets, directionSets } from '../src/core/zo/server.ts';
import { mixSeed } from '../src/core/rng/directions.ts';
import { UniformRng as Rng } from '../src/core/rng/uniform.ts';
import { lowRankPlan, type LowRankPlan } from '../src/core/rng/lowrank.ts';

const model = buildModel({
  model: 'mlp',
  hidden: [6],
  activation: 'hardswish',
  norm: 'none',
  depth: 10,
  width: 1,
  inputShape: [1, 3, 3],
  classes: 3,
});
const n = model.layout.size; // 9·6+6 + 6·3+3 = 81

function fixedBatch() {
  const rng = new Rng(7);
  const count = 16;
  const x = new Float32Array(count * 9);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextFloat();
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) y[i] = rng.nextInt(3);
  return { x, y, count };
}

async function setup() {
  const session = await OrtSession.create(zooArtifact(model, { weights: model.initWeights(0), trainable: ['all'] }));
  session.setBatch(fixedBatch());
  const weights = model.initWeights(3);
  // True gradient by coordinate-wise central differences on the same engine.
  const g = new Float64Array(n);
  const h = 1e-2;
  const w = weights.slice();
  for (let i = 0; i < n; i++) {
    w[i] = weights[i] + h;
    const up = await session.loss(w);
    w[i] = weights[i] - h;
    const down = await session.loss(w);
    w[i] = weights[i];
    g[i] = (up - down) / (2 * h);
  }
  return { session, weights, g };
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

async function oneEstimate(
  ctx: Awaited<ReturnType<typeof setup>>,
  seed: number,
  K: number,
  scheme: 'forward' | 'central',
  lowrank: LowRankPlan | null = null,
): Promise<Float64Array> {
  const scratch = new Float32Array(n);
  const est = await estimate(ctx.session, ctx.weights, scratch, { seed, K, sigma: 1e-3, scheme, lowrank });
  const ghat = new Float64Array(n);
  accumulateSets(ghat, directionSets([{ seed, scalars: est.scalars, examples: 16 }], 'shared'), 0, n, lowrank);
  return ghat;
}

test('cos(ĝ, g) follows sqrt(K / (K + n)) for several K, both schemes', async () => {
  const ctx = await setup();
  for (const scheme of ['forward', 'central'] as const) {
    for (const K of [4, 20, 100]) {
      const reps = 40;
      let sum = 0;
      for (let r = 0; r < reps; r++) sum += cosine(await oneEstimate(ctx, mixSeed(K, r, 11), K, scheme), ctx.g);
      const mean = sum / reps;
      const theory = Math.sqrt(K / (K + n));
      assert.ok(
        Math.abs(mean - theory) < 0.12,
        `${scheme} K=${K}: mean cos ${mean.toFixed(3)} vs theory ${theory.toFixed(3)}`,
      );
    }
  }
  await ctx.session.dispose();
});

test('the mean of many estimates approaches the true gradient (unbiased)', async () => {
  const ctx = await setup();
  const K = 10;
  const gNorm = Math.sqrt(ctx.g.reduce((s, v) => s + v * v, 0));
  const errorAfter = async (M: number) => {
    const mean = new Float64Array(n);
    for (let r = 0; r < M; r++) {
      const e = await oneEstimate(ctx, mixSeed(99, r), K, 'forward');
      for (let i = 0; i < n; i++) mean[i] += e[i] / M;
    }
    let err = 0;
    for (let i = 0; i < n; i++) err += (mean[i] - ctx.g[i]) ** 2;
    return Math.sqrt(err) / gNorm;
  };
  const e20 = await errorAfter(20);
  const e400 = await errorAfter(400);
  // Relative error of an average of M·K Gaussian directions ≈ sqrt((n + 1) / (M·K)).
  const expected400 = Math.sqrt((n + 1) / (400 * K));
  assert.ok(e400 < 1.5 * expected400, `error after 400 estimates ${e400.toFixed(3)} vs expected ≈ ${expected400.toFixed(3)}`);
  assert.ok(e400 < e20 / 2.5, `error should shrink like 1/sqrt(M): ${e20.toFixed(3)} → ${e400.toFixed(3)}`);
  await ctx.session.dispose();
});

test('shared and per-client aggregation rebuild the weighted sum of client estimates', () => {
  const K = 5;
  const a1 = Float32Array.from([1, -2, 3, 0.5, -1]);
  const a2 = Float32Array.from([-1, 4, 0, 2, 1]);
  const shared = directionSets(
    [
      { seed: 42, scalars: a1, examples: 30 },
      { seed: 42, scalars: a2, examples: 10 },
    ],
    'shared',
  );
  assert.equal(shared.length, 1);
  for (let k = 0; k < K; k++) assert.ok(Math.abs(shared[0].coefs[k] - (0.75 * a1[k] + 0.25 * a2[k]) / K) < 1e-6);
  const perClient = directionSets(
    [
      { seed: 1, scalars: a1, examples: 30 },
      { seed: 2, scalars: a2, examples: 10 },
    ],
    'per-client',
  );
  // Rebuilding from the sets equals the weighted sum of each client's own ĝ_c.
  const g = new Float64Array(1000);
  accumulateSets(g, perClient);
  const g1 = new Float64Array(1000);
  accumulateSets(g1, directionSets([{ seed: 1, scalars: a1, examples: 1 }], 'per-client'));
  const g2 = new Float64Array(1000);
  accumulateSets(g2, directionSets([{ seed: 2, scalars: a2, examples: 1 }], 'per-client'));
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(g[i] - (0.75 * g1[i] + 0.25 * g2[i])) < 1e-5);
  assert.throws(() => directionSets([{ seed: 1, scalars: a1, examples: 1 }, { seed: 2, scalars: a2, examples: 1 }], 'shared'), /share the seed/);
});

// ---- low-rank directions (perturbation 'lowrank', docs/directions.md) -----------------------------------------

/**
 * E||z zᵀ g||² / ||g||² for the plan's directions, from the blocks of g: Σ_T ||g_T||² (c_T + n − n_T) / ||g||², with
 * c_T = n_T + 2 for a Gaussian block and ((m+2)(p+2) + (r−1)(mp+2)) / r for an m×p low-rank block (docs/directions.md).
 * Then, for a linear loss, E||ĝ||² = ||g||² (1 − 1/K + that / K) and E[ĝᵀg] = ||g||².
 */
function fourthMomentRatio(plan: LowRankPlan, g: Float64Array): number {
  let total = 0;
  let weighted = 0;
  for (const t of plan.tensors) {
    let gg = 0;
    for (let i = t.offset; i < t.offset + t.size; i++) gg += g[i]! * g[i]!;
    const m = t.rows;
    const p = t.cols;
    const r = plan.rank;
    const cT = m === 0 ? t.size + 2 : ((m + 2) * (p + 2) + (r - 1) * (m * p + 2)) / r;
    weighted += gg * (cT + plan.params - t.size);
    total += gg;
  }
  return weighted / total;
}

const planOf = (rank: number) => lowRankPlan(model.layout.params, rank);

test('lowrank: the plan of the test MLP has two matrices and two Gaussian biases', () => {
  const plan = planOf(1);
  assert.deepEqual(plan.tensors.map((t) => [t.rows, t.cols]), [[6, 9], [0, 0], [3, 6], [0, 0]]);
  assert.equal(plan.factors, 15 + 6 + 9 + 3);
});

test('lowrank: cos(ĝ, g) and E||ĝ||² follow their theory for several K and ranks, both schemes', async () => {
  const ctx = await setup();
  const gg = ctx.g.reduce((s, v) => s + v * v, 0);
  for (const rank of [1, 3]) {
    const plan = planOf(rank);
    const ratio = fourthMomentRatio(plan, ctx.g);
    for (const scheme of ['forward', 'central'] as const) {
      for (const K of [4, 20, 100]) {
        const reps = 40;
        let cosSum = 0;
        let normSum = 0;
        let dotSum = 0;
        for (let r = 0; r < reps; r++) {
          const e = await oneEstimate(ctx, mixSeed(K, r, 13, rank), K, scheme, plan);
          cosSum += cosine(e, ctx.g);
          normSum += e.reduce((s, v) => s + v * v, 0) / gg;
          dotSum += e.reduce((s, v, i) => s + v * ctx.g[i]!, 0) / gg;
        }
        const meanNorm = normSum / reps;
        const normTheory = 1 - 1 / K + ratio / K;
        const cosTheory = Math.sqrt(1 / normTheory);
        const what = `rank ${rank} ${scheme} K=${K}`;
        assert.ok(Math.abs(cosSum / reps - cosTheory) < 0.05, `${what}: mean cos ${(cosSum / reps).toFixed(3)} vs theory ${cosTheory.toFixed(3)}`);
        assert.ok(Math.abs(meanNorm / normTheory - 1) < 0.3, `${what}: E||ĝ||²/||g||² ${meanNorm.toFixed(2)} vs theory ${normTheory.toFixed(2)}`);
        // E[ĝᵀg] = ||g||² (checked at K = 100, where the mean of 40 has a standard error of ≈ 0.05).
        if (K === 100) assert.ok(Math.abs(dotSum / reps - 1) < 0.15, `${what}: E[ĝᵀg]/||g||² ${(dotSum / reps).toFixed(3)}`);
      }
    }
  }
  // Rank 1 concentrates more mass per direction than a Gaussian one: its theory is below sqrt(K/(K+n+1)) here.
  const r1 = fourthMomentRatio(planOf(1), ctx.g);
  assert.ok(r1 > n + 2, `rank-1 moment ratio ${r1.toFixed(1)} vs Gaussian ${n + 2}`);
  await ctx.session.dispose();
});

test('lowrank: the mean of many estimates approaches the true gradient (unbiased)', async () => {
  const ctx = await setup();
  const K = 10;
  const plan = planOf(1);
  const gg = ctx.g.reduce((s, v) => s + v * v, 0);
  const ratio = fourthMomentRatio(plan, ctx.g);
  const errorAfter = async (M: number) => {
    const mean = new Float64Array(n);
    for (let r = 0; r < M; r++) {
      const e = await oneEstimate(ctx, mixSeed(199, r), K, 'forward', plan);
      for (let i = 0; i < n; i++) mean[i] += e[i] / M;
    }
    let err = 0;
    for (let i = 0; i < n; i++) err += (mean[i] - ctx.g[i]) ** 2;
    return Math.sqrt(err / gg);
  };
  const e20 = await errorAfter(20);
  const e400 = await errorAfter(400);
  // Relative error of an average of M·K directions ≈ sqrt((ratio − 1) / (M·K)) (= sqrt((n+1)/(M·K)) for Gaussian ones).
  const expected400 = Math.sqrt((ratio - 1) / (400 * K));
  assert.ok(e400 < 1.5 * expected400, `error after 400 estimates ${e400.toFixed(3)} vs expected ≈ ${expected400.toFixed(3)}`);
  assert.ok(e400 < e20 / 2.5, `error should shrink like 1/sqrt(M): ${e20.toFixed(3)} → ${e400.toFixed(3)}`);
  await ctx.session.dispose();
});
