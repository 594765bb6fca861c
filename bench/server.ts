// Server step: rebuild ĝ = Σ_k coef_k z_k from K scalars and the seed, through the simulation's own path
// (SimPool.reconstruct: the parameter range split in BLOCK-aligned slices, one per worker, Float64 accumulator
// in shared memory). Reported as ns per parameter per direction.
import type { Dataset } from '../src/core/data/types.ts';
import { SimPool } from '../src/node/sim/simPool.ts';
import type { ModelConfig } from '../src/core/model/types.ts';
import { seededZooArtifact } from '../src/core/model/zooArtifact.ts';
import type { DirectionSet } from '../src/core/zo/server.ts';
import { mixSeed } from '../src/core/rng/directions.ts';
import { lowRankPlan } from '../src/core/rng/lowrank.ts';
import { median, now, spread } from './lib.ts';

export interface ServerResult {
  n: number;
  /** Directions per set (K), and the number of sets (1 = shared seeds; C = per-client). */
  K: number;
  sets?: number;
  /** 'gaussian' (default) or 'lowrank'. */
  perturbation?: string;
  rank?: number;
  /** What the parameters are: 'one vector' (default) or a layout's name, e.g. 'MLP 1024-128-10'. */
  layout?: string;
  workers: number;
  /** Median wall ms of one reconstruction. */
  ms: number;
  /** Wall ns per parameter per direction. */
  nsPerParamDir: number;
  /** The same × workers: cost per core. */
  nsPerParamDirPerCore: number;
  spread: number;
  /** Process on-CPU ns per parameter per direction (all threads): the cost per busy core, robust to other jobs. */
  cpuNsPerParamDir: number;
}

// SimPool's workers would hold a forward session if asked for passes; the smallest model there is.
const TINY_MODEL: ModelConfig = {
  model: 'mlp',
  activation: 'hardswish',
  norm: 'none',
  hidden: [2],
  depth: 10,
  width: 2,
  inputShape: [1, 2, 2],
  classes: 2,
};

function tinyDataset(): Dataset {
  const split = { x: new Float32Array(8), y: new Uint8Array([0, 1]), count: 2 };
  return { name: 'bench', inputShape: [1, 2, 2], classes: 2, train: split, test: { ...split } };
}

/** Layouts of the zoo's models, for the rebuild of ĝ over real tensor shapes (low-rank directions need them). */
export const SERVER_LAYOUTS: Record<string, { name: string; shape: number[] }[]> = {
  'MLP 1024-128-10': [
    { name: 'fc1.weight', shape: [128, 1024] },
    { name: 'fc1.bias', shape: [128] },
    { name: 'fc2.weight', shape: [10, 128] },
    { name: 'fc2.bias', shape: [10] },
  ],
};

export interface ServerBenchOptions {
  /** A layout of SERVER_LAYOUTS (n is then its size); default one vector of n. */
  layout?: string;
  perturbation?: 'gaussian' | 'lowrank';
  rank?: number;
  /** Direction sets (per-client seeds: one per client), K directions each; default 1. */
  sets?: number;
}

export async function benchServer(n: number, K: number, workers: number, reps = 5, targetMs = 150, opts: ServerBenchOptions = {}): Promise<ServerResult> {
  // Reconstruction only: the workers never build an engine, so the model is the tiny one with a layout of n.
  let offset = 0;
  const layout = opts.layout
    ? SERVER_LAYOUTS[opts.layout]!.map((e) => {
        const size = e.shape.reduce((a, d) => a * d, 1);
        const r = { ...e, offset, size };
        offset += size;
        return r;
      })
    : [{ name: 'w', shape: [n], offset: 0, size: n }];
  if (opts.layout) n = offset;
  const model = { ...seededZooArtifact(TINY_MODEL, 1), params: n, layout };
  const rank = opts.rank ?? 1;
  const lowrank = opts.perturbation === 'lowrank' ? lowRankPlan(layout, rank) : null;
  const pool = new SimPool(model, tinyDataset(), workers, lowrank);
  const nSets = opts.sets ?? 1;
  try {
    const sets: DirectionSet[] = Array.from({ length: nSets }, (_, c) => {
      const coefs = new Float32Array(K);
      for (let k = 0; k < K; k++) coefs[k] = ((k % 7) - 3) * 1e-3 + 1e-4;
      return { seed: nSets === 1 ? 0x5e7e : mixSeed(0x5e7e, c), coefs };
    });
    await pool.reconstruct(sets); // start-up + JIT
    // Each repetition repeats the rebuild until ~targetMs, so small n are not all timer noise.
    const t1 = now();
    await pool.reconstruct(sets);
    const inner = Math.max(1, Math.round(targetMs / Math.max(0.1, now() - t1)));
    const ms: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < reps; r++) {
      const c0 = process.cpuUsage();
      const t0 = now();
      for (let i = 0; i < inner; i++) {
        const g = await pool.reconstruct(sets);
        if (!Number.isFinite(g[n - 1]!)) throw new Error('non-finite reconstruction');
      }
      ms.push((now() - t0) / inner);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000 / inner);
    }
    const m = median(ms);
    const ns = (m * 1e6) / (n * K * nSets);
    return {
      n,
      K,
      sets: nSets,
      perturbation: opts.perturbation ?? 'gaussian',
      rank: opts.perturbation === 'lowrank' ? rank : undefined,
      layout: opts.layout ?? 'one vector',
      workers: pool.workers,
      ms: m,
      nsPerParamDir: ns,
      nsPerParamDirPerCore: ns * pool.workers,
      spread: spread(ms),
      cpuNsPerParamDir: (median(cpu) * 1e6) / (n * K * nSets),
    };
  } finally {
    await pool.close();
  }
}
