// The server side of BAFFLE: aggregate the clients' scalars and rebuild ĝ = Σ coef_k z_k from the seeds.
import { accumulateDirection } from '../rng/directions.ts';
import { accumulateLowRank, type LowRankPlan } from '../rng/lowrank.ts';

/** One seed's directions with the coefficient each direction gets in ĝ. */
export interface DirectionSet {
  seed: number;
  coefs: Float32Array;
}

export interface ClientScalars {
  seed: number;
  scalars: Float32Array;
  /** Examples behind the estimate (n_c), the aggregation weight. */
  examples: number;
}

/**
 * Turns the round's client results into direction sets.
 * shared:     all clients used one seed; a_k = Σ_c (n_c/Σn) a_ck, ĝ = (1/K) Σ_k a_k z_k — one set.
 * per-client: each client its own seed; ĝ = Σ_c (n_c/Σn) (1/K) Σ_k a_ck z_ck — one set per client.
 */
export function directionSets(results: ClientScalars[], policy: 'shared' | 'per-client'): DirectionSet[] {
  if (results.length === 0) return [];
  const total = results.reduce((s, r) => s + r.examples, 0);
  const K = results[0].scalars.length;
  for (const r of results) {
    if (r.scalars.length !== K) throw new Error(`client result has ${r.scalars.length} scalars, expected K=${K}`);
  }
  if (policy === 'shared') {
    const seed = results[0].seed;
    const sum = new Float64Array(K);
    for (const r of results) {
      if (r.seed !== seed) throw new Error('shared seed policy: clients of one round must share the seed');
      const w = r.examples / total / K;
      for (let k = 0; k < K; k++) sum[k] += w * r.scalars[k];
    }
    return [{ seed, coefs: Float32Array.from(sum) }];
  }
  return results.map((r) => {
    const w = r.examples / total / K;
    const coefs = new Float32Array(K);
    for (let k = 0; k < K; k++) coefs[k] = w * r.scalars[k];
    return { seed: r.seed, coefs };
  });
}

/**
 * g[start, end) += Σ_sets Σ_k coef_k z_k[start, end); the order of the sum is fixed, so any split gives equal bits.
 * With a low-rank plan (perturbation 'lowrank') the directions are low-rank and ĝ is rebuilt as one matrix
 * product per weight matrix (accumulateLowRank; g must then be a Float64Array).
 */
export function accumulateSets(
  g: Float32Array | Float64Array,
  sets: readonly DirectionSet[],
  start = 0,
  end = g.length,
  lowrank: LowRankPlan | null = null,
): void {
  if (lowrank) {
    if (!(g instanceof Float64Array)) throw new TypeError('low-rank directions rebuild ĝ into a Float64Array');
    accumulateLowRank(g, sets, lowrank, start, end);
    return;
  }
  for (const set of sets) {
    for (let k = 0; k < set.coefs.length; k++) {
      const c = set.coefs[k];
      if (c !== 0) accumulateDirection(g, c, set.seed, k, start, end);
    }
  }
}

/** Number of regenerated directions behind a set list (server cost). */
export function directionCount(sets: readonly DirectionSet[]): number {
  return sets.reduce((s, d) => s + d.coefs.length, 0);
}
