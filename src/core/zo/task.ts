// The client's task, written once: K perturbed forward passes on one minibatch → K scalars. Every client runs
// it through these functions — the simulation's workers (each taking a range of k), `baffle join`, a browser
// tab, FedAvg's local steps and `baffle memory` — so they all produce the same bits.
import { perturbInto } from '../rng/directions.ts';
import { perturbLowRank, type LowRankPlan } from '../rng/lowrank.ts';
import type { ForwardSession } from '../engine/types.ts';
import { forwardPassesPerEstimate, scalarsFromLosses, type Scheme } from './scheme.ts';

export interface EstimateTask {
  /** Seed of this client's directions for this round (server-assigned). */
  seed: number;
  K: number;
  sigma: number;
  scheme: Scheme;
  /** Low-rank directions (perturbation 'lowrank', src/core/rng/lowrank.ts); absent or null = Gaussian. */
  lowrank?: LowRankPlan | null;
}

/** A share of one estimate: directions [kStart, kEnd), plus the unperturbed pass L(W) when `base`. */
export interface PassRange {
  kStart: number;
  kEnd: number;
  base: boolean;
}

/** The losses of one share: L(W + σz_k), with central differences L(W − σz_k), and L(W) when asked. */
export interface PartialLosses {
  kStart: number;
  plus: Float32Array;
  minus: Float32Array | null;
  base: number | null;
}

export interface Estimate {
  /** The K scalars a_1..a_K that go up the wire. */
  scalars: Float32Array;
  /** L(W) on the minibatch (forward scheme), or the mean of the ± losses (central): a free training-loss reading. */
  loss: number;
  forwardPasses: number;
}

/**
 * Splits one estimate into `chunks` shares of consecutive directions (for workers); under forward differences
 * the first share also takes the unperturbed pass.
 */
export function splitDirections(task: Pick<EstimateTask, 'K' | 'scheme'>, chunks: number): PassRange[] {
  const c = Math.max(1, Math.min(task.K, chunks));
  return Array.from({ length: c }, (_, i) => ({
    kStart: Math.floor((task.K * i) / c),
    kEnd: Math.floor((task.K * (i + 1)) / c),
    base: i === 0 && task.scheme === 'forward',
  }));
}

/**
 * Losses L(W + sign·σ·z_k) for k in [kStart, kEnd) on the session's current batch. `scratch` (n floats)
 * receives the perturbed weights; it is reused across directions so the hot loop allocates nothing and the
 * engine's input views stay valid.
 */
async function perturbedLosses(
  session: ForwardSession,
  weights: Float32Array,
  scratch: Float32Array,
  task: EstimateTask,
  sign: 1 | -1,
  range: PassRange,
): Promise<Float32Array> {
  const losses = new Float32Array(range.kEnd - range.kStart);
  const plan = task.lowrank ?? null;
  for (let k = range.kStart; k < range.kEnd; k++) {
    if (plan) perturbLowRank(scratch, weights, sign * task.sigma, plan, task.seed, k);
    else perturbInto(scratch, weights, sign * task.sigma, task.seed, k);
    losses[k - range.kStart] = await session.loss(scratch);
  }
  return losses;
}

/** The forward passes of one share of `task` on the session's current batch. */
export async function runPasses(
  session: ForwardSession,
  weights: Float32Array,
  scratch: Float32Array,
  task: EstimateTask,
  range: PassRange,
): Promise<PartialLosses> {
  const plus = await perturbedLosses(session, weights, scratch, task, 1, range);
  const minus = task.scheme === 'central' ? await perturbedLosses(session, weights, scratch, task, -1, range) : null;
  const base = range.base ? await session.loss(weights) : null;
  return { kStart: range.kStart, plus, minus, base };
}

/** The client's reply from the losses of all shares of `task` (in any order, together covering 0..K). */
export function combineLosses(task: EstimateTask, parts: readonly PartialLosses[]): Estimate {
  const { K, sigma, scheme } = task;
  const plus = new Float32Array(K);
  const minus = scheme === 'central' ? new Float32Array(K) : null;
  let base: number | null = null;
  let covered = 0;
  for (const p of parts) {
    plus.set(p.plus, p.kStart);
    if (minus) {
      if (!p.minus) throw new Error('central differences: a share lacks its L(W − σz) losses');
      minus.set(p.minus, p.kStart);
    }
    if (p.base !== null) base = p.base;
    covered += p.plus.length;
  }
  if (covered !== K) throw new Error(`the shares cover ${covered} of the ${K} directions`);
  const forwardPasses = forwardPassesPerEstimate(K, scheme);
  if (!minus) {
    if (base === null) throw new Error('forward differences: no share holds L(W)');
    return { scalars: scalarsFromLosses(plus, { base }, sigma), loss: base, forwardPasses };
  }
  let sum = 0;
  for (let k = 0; k < K; k++) sum += (plus[k]! + minus[k]!) / 2;
  return { scalars: scalarsFromLosses(plus, { minus }, sigma), loss: sum / K, forwardPasses };
}

/** One whole client estimate on the session's current batch, in one engine. */
export async function estimate(
  session: ForwardSession,
  weights: Float32Array,
  scratch: Float32Array,
  task: EstimateTask,
): Promise<Estimate> {
  const [all] = splitDirections(task, 1);
  return combineLosses(task, [await runPasses(session, weights, scratch, task, all!)]);
}

/**
 * An engine that runs every member of a share in one run (the member-batched low-rank path of
 * src/core/zo/lowrankBatch.ts; onnxruntime: src/node/engine/lowrankBatch.ts). Its runPasses gives the losses
 * of task.ts's runPasses for the same share to float32 tolerance (not bit for bit); any split of the directions
 * into shares gives the bits of one run, so results do not depend on the worker count.
 */
export interface MemberBatchedEngine {
  /** The low-rank plan the engine draws its factors with (must be the task's). */
  readonly plan: LowRankPlan;
  setBatch(batch: { x: Float32Array; y: Uint8Array; count: number }): void;
  runPasses(weights: Float32Array, task: Pick<EstimateTask, 'seed' | 'sigma' | 'scheme'>, range: PassRange): Promise<PartialLosses>;
}

/** One whole client estimate on the engine's current batch, all K (or 2K) + 1 members in one engine run. */
export async function estimateBatched(engine: MemberBatchedEngine, weights: Float32Array, task: EstimateTask): Promise<Estimate> {
  const p = task.lowrank;
  if (p && (p.rank !== engine.plan.rank || p.params !== engine.plan.params || p.factors !== engine.plan.factors)) {
    throw new Error(`member-batched step: the engine's plan (rank ${engine.plan.rank}) is not the task's (rank ${p.rank})`);
  }
  const [all] = splitDirections(task, 1);
  return combineLosses(task, [await engine.runPasses(weights, task, all!)]);
}

/**
 * The client estimate through the member-batched engine when there is one (lowrank directions on an MLP-shaped
 * model), else through today's per-pass path on `session`. Both engines must hold the same batch.
 */
export async function estimateWith(
  engine: MemberBatchedEngine | null,
  session: ForwardSession,
  weights: Float32Array,
  scratch: Float32Array,
  task: EstimateTask,
): Promise<Estimate> {
  return engine && task.lowrank ? estimateBatched(engine, weights, task) : estimate(session, weights, scratch, task);
}
