/**
 * Writes the checked-in test vectors of low-rank directions, test/vectors/rng-lowrank.json, from the current
 * implementation (src/core/rng/lowrank.ts, SPEC.md §8). Run only when the definition deliberately changes:
 *   node --import tsx scripts/lowrank-vectors-gen.ts
 * Each case: a layout and a rank, the plan, for some (seed, k) the factor stream (small cases: all of it, as
 * A and B per tensor) and z (small cases: all of it; large ones: values at indices and float64 sums), and a
 * server rebuild ĝ of two direction sets (values at indices and sums, float64 exact).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mixSeed } from '../src/core/rng/directions.ts';
import { accumulateLowRank, fillFactors, fillLowRank, lowRankPlan, type LowRankPlan } from '../src/core/rng/lowrank.ts';

type Layout = { name: string; shape: number[] }[];

function withOffsets(layout: Layout): { name: string; shape: number[]; offset: number; size: number }[] {
  let offset = 0;
  return layout.map((e) => {
    const size = e.shape.reduce((a, d) => a * d, 1);
    const r = { ...e, offset, size };
    offset += size;
    return r;
  });
}

export const LOWRANK_CASES: { name: string; layout: Layout; rank: number; full: boolean }[] = [
  { name: 'small, rank 1', layout: [{ name: 'fc.weight', shape: [3, 4] }, { name: 'fc.bias', shape: [3] }, { name: 'conv.weight', shape: [2, 1, 2, 2] }], rank: 1, full: true },
  { name: 'small, rank 2', layout: [{ name: 'fc.weight', shape: [3, 4] }, { name: 'fc.bias', shape: [3] }, { name: 'conv.weight', shape: [2, 1, 2, 2] }], rank: 2, full: true },
  {
    name: 'MLP 1024-128-10, rank 1',
    layout: [{ name: 'fc1.weight', shape: [128, 1024] }, { name: 'fc1.bias', shape: [128] }, { name: 'fc2.weight', shape: [10, 128] }, { name: 'fc2.bias', shape: [10] }],
    rank: 1,
    full: false,
  },
  {
    name: 'LeNet-like, rank 3',
    layout: [{ name: 'conv1.weight', shape: [6, 1, 5, 5] }, { name: 'conv1.bias', shape: [6] }, { name: 'fc.weight', shape: [10, 150] }, { name: 'fc.bias', shape: [10] }, { name: 'odd', shape: [1, 7] }],
    rank: 3,
    full: false,
  },
];
export const LOWRANK_DIRECTIONS: ReadonlyArray<readonly [number, number]> = [
  [0, 0],
  [12345, 7],
  [mixSeed(42, 3, 1), 99],
];

/** The summary of a long vector in the file: Σ v_i and Σ v_i², in index order, binary64 (the test checks with this). */
export function sums(v: ArrayLike<number>): { sum: number; sumSq: number } {
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < v.length; i++) {
    sum += v[i]!;
    sumSq += v[i]! * v[i]!;
  }
  return { sum, sumSq };
}

/** Indices to sample in a vector of n: the first and last few, and some in between. */
function probeIndices(n: number): number[] {
  const s = new Set<number>([0, 1, 2, n - 1, n - 2, Math.floor(n / 2), Math.floor(n / 3), Math.floor((7 * n) / 11)]);
  return [...s].filter((i) => i >= 0 && i < n).sort((a, b) => a - b);
}

function factorsByTensor(plan: LowRankPlan, f: Float32Array): unknown[] {
  return plan.tensors.map((t) =>
    t.rows === 0
      ? { gaussian: Array.from(f.subarray(t.factor, t.factor + t.size)) }
      : { A: Array.from(f.subarray(t.factor, t.factor + t.rows * plan.rank)), B: Array.from(f.subarray(t.factor + t.rows * plan.rank, t.factor + (t.rows + t.cols) * plan.rank)) },
  );
}

export function lowRankVectors(): unknown {
  const cases = LOWRANK_CASES.map((c) => {
    const layout = withOffsets(c.layout);
    const plan = lowRankPlan(layout, c.rank);
    const n = plan.params;
    const z = new Float32Array(n);
    const f = new Float32Array(plan.factors);
    const directions = LOWRANK_DIRECTIONS.map(([seed, k]) => {
      fillFactors(plan, seed, k, f);
      fillLowRank(plan, seed, k, z);
      const at: Record<string, number> = {};
      for (const i of probeIndices(n)) at[String(i)] = z[i]!;
      return c.full
        ? { seed, k, factors: factorsByTensor(plan, f), z: Array.from(z) }
        : { seed, k, factorsFirst8: Array.from(f.subarray(0, 8)), at, ...sums(z) };
    });
    // Server: two direction sets (per-client style), coefficients with a zero (skipped) among them.
    const sets = [
      { seed: 0xbaff, coefs: Float32Array.from([0.5, -0.25, 0, 1.75, -3]) },
      { seed: 7, coefs: Float32Array.from([-0.125, 2, 0.0625]) },
    ];
    const g = new Float64Array(n);
    accumulateLowRank(g, sets, plan);
    const gat: Record<string, number> = {};
    for (const i of probeIndices(n)) gat[String(i)] = g[i]!;
    const rebuild = { sets: sets.map((s) => ({ seed: s.seed, coefs: Array.from(s.coefs) })), ...(c.full ? { g: Array.from(g) } : { at: gat, ...sums(g) }) };
    return { name: c.name, layout: c.layout, rank: c.rank, plan, directions, rebuild };
  });
  return {
    description:
      'Low-rank directions (perturbation lowrank): per layout and rank, the plan, for (seed, k) the factor stream (A, B per matrix, Gaussian values per vector) and z as float32, and a server rebuild ĝ (float64). See src/core/rng/SPEC.md §8. Generated by scripts/lowrank-vectors-gen.ts.',
    specVersion: 1,
    cases,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = fileURLToPath(new URL('../test/vectors/rng-lowrank.json', import.meta.url));
  writeFileSync(file, `${JSON.stringify(lowRankVectors(), null, 1)}\n`);
  console.log(`wrote ${file}`);
}
