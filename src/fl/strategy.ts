// Federated strategies: how one server round turns participants' minibatches into a model update.
// FedSGD (the paper's protocol): every participant sends K scalars for one minibatch; the server rebuilds
// ĝ from the seeds and takes one optimizer step. FedAvg: every participant takes several local ZO steps
// and sends its model delta; the server averages the deltas.
import type { Scheme } from '../zo/scheme.ts';
import { forwardPassesPerEstimate, scalarsFromLosses } from '../zo/scheme.ts';
import { directionSeed, type SeedPolicy } from '../zo/seeds.ts';
import { directionCount, directionSets, type ClientScalars } from '../zo/server.ts';
import { clipMaxAbs } from './clip.ts';
import type { Optimizer } from './optimizer.ts';
import type { SimPool } from './simPool.ts';
import type { LossesResult } from './simTasks.ts';
import { deltaBytes, scalarsBytes, taskBytes } from './wire.ts';

export interface Participant {
  clientId: number;
  /** Example indices of this round's minibatches (FedSGD uses one, FedAvg `localSteps`). */
  batches: Int32Array[];
}

export interface RoundInput {
  step: number;
  participants: Participant[];
  lr: number;
}

export interface RoundOutput {
  /** Mean minibatch loss L(W) over participants (the training loss reading). */
  trainLoss: number;
  forwardPasses: number;
  uplinkBytes: number;
  downlinkBytes: number;
  /** Directions the server regenerated. */
  directions: number;
  /** Scale the ĝ clip applied (1 = untouched). */
  clipScale: number;
}

export interface Strategy {
  readonly name: 'fedsgd' | 'fedavg';
  /** Minibatches each participant consumes per round. */
  readonly batchesPerRound: number;
  round(input: RoundInput): Promise<RoundOutput>;
}

export interface EstimatorSettings {
  runSeed: number;
  K: number;
  sigma: number;
  scheme: Scheme;
  seedPolicy: SeedPolicy;
  /** Max-abs clip of ĝ (0 = off). */
  clip: number;
}

export class FedSgd implements Strategy {
  readonly name = 'fedsgd';
  readonly batchesPerRound = 1;
  private readonly gradient: Float32Array;

  constructor(
    private readonly pool: SimPool,
    private readonly settings: EstimatorSettings,
    private readonly optimizer: Optimizer,
  ) {
    this.gradient = new Float32Array(pool.weights.length);
  }

  async round({ step, participants, lr }: RoundInput): Promise<RoundOutput> {
    const { K, sigma, scheme, seedPolicy, runSeed } = this.settings;
    const n = this.pool.weights.length;
    // Split each client's K directions into chunks so that every worker has work even with few clients.
    const chunks = Math.max(1, Math.min(K, Math.ceil((2 * this.pool.workers) / participants.length)));
    const perClient = participants.map(async (p): Promise<ClientScalars & { loss: number }> => {
      const seed = directionSeed(runSeed, seedPolicy, step, p.clientId);
      const indices = p.batches[0];
      const parts: Promise<LossesResult>[] = [];
      for (let c = 0; c < chunks; c++) {
        const kStart = Math.floor((K * c) / chunks);
        const kEnd = Math.floor((K * (c + 1)) / chunks);
        parts.push(
          this.pool.losses({ indices, seed, sigma, kStart, kEnd, minus: scheme === 'central', base: c === 0 && scheme === 'forward' }),
        );
      }
      const results = await Promise.all(parts);
      const plus = concat(results.map((r) => r.plus), K);
      let scalars: Float32Array;
      let loss: number;
      if (scheme === 'forward') {
        const base = results[0].base as number;
        scalars = scalarsFromLosses(plus, { base }, sigma);
        loss = base;
      } else {
        const minus = concat(results.map((r) => r.minus as Float32Array), K);
        scalars = scalarsFromLosses(plus, { minus }, sigma);
        loss = 0;
        for (let k = 0; k < K; k++) loss += (plus[k] + minus[k]) / 2 / K;
      }
      return { seed, scalars, examples: indices.length, loss };
    });
    const results = await Promise.all(perClient);
    const sets = directionSets(results, seedPolicy);
    const grad64 = await this.pool.reconstruct(sets);
    const g = this.gradient;
    for (let i = 0; i < n; i++) g[i] = grad64[i];
    const clipScale = this.settings.clip > 0 ? clipMaxAbs(g, this.settings.clip) : 1;
    this.optimizer.step(this.pool.weights, g, lr);
    const m = participants.length;
    return {
      trainLoss: results.reduce((s, r) => s + r.loss, 0) / m,
      forwardPasses: m * forwardPassesPerEstimate(K, scheme),
      uplinkBytes: m * scalarsBytes(K),
      // The model changes every FedSGD step, so every participant downloads it every round.
      downlinkBytes: m * taskBytes(n, true),
      directions: directionCount(sets),
      clipScale,
    };
  }
}

export interface LocalSettings {
  localSteps: number;
  localLr: number;
  localOptimizer: 'sgd' | 'adam';
}

export class FedAvg implements Strategy {
  readonly name = 'fedavg';
  readonly batchesPerRound: number;

  constructor(
    private readonly pool: SimPool,
    private readonly settings: EstimatorSettings,
    private readonly local: LocalSettings,
  ) {
    this.batchesPerRound = local.localSteps;
  }

  async round({ step, participants }: RoundInput): Promise<RoundOutput> {
    const { K, sigma, scheme, seedPolicy, runSeed, clip } = this.settings;
    const n = this.pool.weights.length;
    const results = await Promise.all(
      participants.map((p) =>
        this.pool.localTrain({
          batches: p.batches,
          seeds: p.batches.map((_, j) => directionSeed(runSeed, seedPolicy, step, p.clientId, j)),
          K,
          sigma,
          scheme,
          lr: this.local.localLr,
          optimizer: this.local.localOptimizer,
          clip,
        }),
      ),
    );
    // Weighted average of the deltas (weights = examples seen), applied to the server model.
    const examples = participants.map((p) => p.batches.reduce((s, b) => s + b.length, 0));
    const total = examples.reduce((s, e) => s + e, 0);
    const avg = new Float64Array(n);
    results.forEach((r, c) => {
      const w = examples[c] / total;
      for (let i = 0; i < n; i++) avg[i] += w * r.delta[i];
    });
    const weights = this.pool.weights;
    for (let i = 0; i < n; i++) weights[i] += avg[i];
    const m = participants.length;
    return {
      trainLoss: results.reduce((s, r) => s + r.meanLoss, 0) / m,
      forwardPasses: results.reduce((s, r) => s + r.forwardPasses, 0),
      uplinkBytes: m * deltaBytes(n),
      downlinkBytes: m * taskBytes(n, true),
      directions: m * K * this.local.localSteps,
      clipScale: 1,
    };
  }
}

function concat(parts: Float32Array[], total: number): Float32Array {
  const out = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
