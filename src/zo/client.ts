// The client side of BAFFLE: forward passes only. Regenerate z_k from the seed, perturb, evaluate the loss.
import { perturbInto } from '../rng/directions.ts';
import type { ForwardSession } from '../engine/types.ts';
import { scalarsFromLosses, type Scheme } from './scheme.ts';

export interface EstimateTask {
  /** Seed of this client's directions for this round (server-assigned). */
  seed: number;
  K: number;
  sigma: number;
  scheme: Scheme;
}

/**
 * Losses L(W + sign·σ·z_k) for k in [kStart, kEnd) on the session's current batch.
 * `scratch` (n floats) receives the perturbed weights; it is reused across directions so the hot loop
 * allocates nothing and the engine's input views stay valid.
 */
export async function perturbedLosses(
  session: ForwardSession,
  weights: Float32Array,
  scratch: Float32Array,
  seed: number,
  sigma: number,
  sign: 1 | -1,
  kStart: number,
  kEnd: number,
): Promise<Float32Array> {
  const losses = new Float32Array(kEnd - kStart);
  for (let k = kStart; k < kEnd; k++) {
    perturbInto(scratch, weights, sign * sigma, seed, k);
    losses[k - kStart] = await session.loss(scratch);
  }
  return losses;
}

export interface Estimate {
  /** The K scalars a_1..a_K that go up the wire. */
  scalars: Float32Array;
  /** L(W) on the minibatch (forward scheme), or the mean of the ± losses (central): a free training-loss reading. */
  loss: number;
  forwardPasses: number;
}

/** One whole client estimate on the session's current batch (a single-process client; the pool splits it). */
export async function estimate(
  session: ForwardSession,
  weights: Float32Array,
  scratch: Float32Array,
  task: EstimateTask,
): Promise<Estimate> {
  const plus = await perturbedLosses(session, weights, scratch, task.seed, task.sigma, 1, 0, task.K);
  if (task.scheme === 'forward') {
    const base = await session.loss(weights);
    return { scalars: scalarsFromLosses(plus, { base }, task.sigma), loss: base, forwardPasses: task.K + 1 };
  }
  const minus = await perturbedLosses(session, weights, scratch, task.seed, task.sigma, -1, 0, task.K);
  let mean = 0;
  for (let k = 0; k < task.K; k++) mean += (plus[k] + minus[k]) / 2;
  return {
    scalars: scalarsFromLosses(plus, { minus }, task.sigma),
    loss: mean / task.K,
    forwardPasses: 2 * task.K,
  };
}
