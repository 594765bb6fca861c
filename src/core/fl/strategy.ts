// Federated strategies: how one server round turns the participants' replies into a model update.
// FedSGD (the paper's protocol): every participant sends K scalars for one minibatch; the server rebuilds
// ĝ from the seeds, clips it and takes one optimizer step. FedAvg: every participant takes several local
// ZO steps and sends its model delta; the server applies the example-weighted mean delta.
import { forwardPassesPerEstimate, type Scheme } from '../zo/scheme.ts';
import { directionSeed, type SeedPolicy } from '../zo/seeds.ts';
import { directionCount, directionSets, type DirectionSet } from '../zo/server.ts';
import { clipMaxAbs } from './clip.ts';
import type { Optimizer } from './optimizer.ts';
import type { ClientTransport, EstimateReply, EstimateRequest } from './transport.ts';
import type { Aggregation } from './aggregation.ts';
import { deltaBytes, scalarsBytes, secAggBytes, taskBytes } from './wire.ts';

export interface RoundInput {
  step: number;
  /** Ids of this round's participants, ascending. */
  clients: number[];
  lr: number;
}

export interface RoundOutput {
  /** Clients whose reply was used (the others dropped out or missed the deadline). */
  counted: number;
  /** Mean minibatch loss L(W) over counted participants (the training loss reading). */
  trainLoss: number;
  forwardPasses: number;
  uplinkBytes: number;
  downlinkBytes: number;
  /** Directions the server regenerated. */
  directions: number;
  /** Scale the ĝ clip applied (1 = untouched). */
  clipScale: number;
  /** Replies the aggregation rule left out (robust rules), with the reason. */
  excluded: { clientId: number; reason: string }[];
  /** The round had no training-loss reading (a differentially private secure sum carries none): trainLoss is NaN. */
  lossHidden?: boolean;
}

/** The round's output when no participant replied in time: the model stays as it was. */
function noReplies(downlinkBytes: number): RoundOutput {
  return { counted: 0, trainLoss: NaN, forwardPasses: 0, uplinkBytes: 0, downlinkBytes, directions: 0, clipScale: 1, excluded: [] };
}

/** What every strategy reports of the replies it counted. */
function replyTotals(replies: readonly { loss: number; forwardPasses: number }[]): Pick<RoundOutput, 'counted' | 'trainLoss' | 'forwardPasses'> {
  return {
    counted: replies.length,
    trainLoss: replies.reduce((s, r) => s + r.loss, 0) / replies.length,
    forwardPasses: replies.reduce((s, r) => s + r.forwardPasses, 0),
  };
}

export interface Strategy {
  readonly name: 'fedsgd' | 'fedavg';
  /** Updates `weights` in place. */
  round(input: RoundInput, weights: Float32Array, version: number): Promise<RoundOutput>;
}

export interface EstimatorSettings {
  runSeed: number;
  K: number;
  sigma: number;
  scheme: Scheme;
  seedPolicy: SeedPolicy;
  /** Max-abs clip of ĝ (0 = off). */
  clip: number;
  /** Secure aggregation: the transport returns only the sum of the K-vectors (shared directions, the mean). */
  secureAggregation?: boolean;
  /**
   * Differential privacy under secure aggregation (distributed noise): the clients add weight 1 and loss 0 to the
   * sum (secAggVector), so ĝ is Σ/survivors and the round reports no loss.
   */
  secureDp?: boolean;
}

/** Rebuilds ĝ = Σ coef_k z_k over the whole parameter vector (in parallel where it can). */
export type Reconstructor = (sets: DirectionSet[]) => Promise<Float64Array>;

/**
 * FedSGD in four steps, as Flower's strategies split a round: configure (each participant's task: its seed, K,
 * σ, scheme), collect (the transport), aggregate (the K-vectors → direction sets, through the round's
 * Aggregation: attack, DP, rule) and apply (ĝ rebuilt from the seeds, clipped, one optimizer step).
 */
export class FedSgd implements Strategy {
  readonly name = 'fedsgd';
  private readonly gradient: Float32Array;

  constructor(
    private readonly transport: ClientTransport,
    private readonly reconstruct: Reconstructor,
    private readonly settings: EstimatorSettings,
    private readonly optimizer: Optimizer,
    private readonly aggregation: Aggregation | null = null,
  ) {
    this.gradient = new Float32Array(optimizer.size);
  }

  configure({ step, clients }: RoundInput): EstimateRequest[] {
    const { K, sigma, scheme, seedPolicy, runSeed } = this.settings;
    return clients.map((clientId) => ({ step, clientId, seed: directionSeed(runSeed, seedPolicy, step, clientId), K, sigma, scheme }));
  }

  /** The direction sets ĝ is rebuilt from, and the replies the rule left out. */
  aggregate(step: number, requests: readonly EstimateRequest[], replies: readonly EstimateReply[]): { sets: DirectionSet[]; excluded: RoundOutput['excluded'] } {
    const { K, seedPolicy } = this.settings;
    const seedOf = new Map(requests.map((r) => [r.clientId, r.seed]));
    const scalars = (rs: readonly { clientId: number; scalars: Float32Array; examples: number }[]) =>
      rs.map((r) => ({ seed: seedOf.get(r.clientId) as number, scalars: r.scalars, examples: r.examples }));
    const a = this.aggregation;
    if (!a) return { sets: directionSets(scalars(replies), seedPolicy), excluded: [] };
    const vectors = replies.map((r) => ({ clientId: r.clientId, values: r.scalars, examples: r.examples }));
    if (seedPolicy === 'per-client') {
      // Client c's scalars multiply its own directions: a rule may screen whole clients, never mix coordinates.
      const sent = a.sent(vectors, step);
      const { used, excluded } = a.combine(vectors, step, K);
      const kept = new Set(used);
      return { sets: directionSets(scalars(sent.filter((v) => kept.has(v.clientId)).map((v) => ({ clientId: v.clientId, scalars: v.values, examples: v.examples }))), 'per-client'), excluded };
    }
    // Shared directions: one K-vector per client, comparable coordinate by coordinate. The mean rule computes
    // Σ_c (n_c / Σn / K) a_c exactly as directionSets does, so a mean run keeps its bits.
    const { values, excluded } = a.combine(vectors, step, K);
    return { sets: [{ seed: seedOf.get(replies[0]!.clientId) as number, coefs: Float32Array.from(values) }], excluded };
  }

  /** ĝ from the sets, clipped, one optimizer step on `weights`; returns the clip's scale. */
  async apply(sets: DirectionSet[], weights: Float32Array, lr: number): Promise<number> {
    const grad64 = await this.reconstruct(sets);
    const g = this.gradient;
    for (let i = 0; i < g.length; i++) g[i] = grad64[i]!;
    const clipScale = this.settings.clip > 0 ? clipMaxAbs(g, this.settings.clip) : 1;
    this.optimizer.step(weights, g, lr);
    return clipScale;
  }

  /** A round under secure aggregation: ĝ from the sum Σ w_c a_c / Σ w_c, which is all the server learns. */
  private async secureRound(input: RoundInput, weights: Float32Array, version: number): Promise<RoundOutput> {
    const requests = this.configure(input);
    if (!this.transport.secureEstimate) throw new Error('this transport cannot aggregate securely');
    const { survivors, sum } = await this.transport.secureEstimate(requests, weights, version);
    const { K } = this.settings;
    const m = requests.length;
    const wire = secAggBytes(K, m);
    const downlinkBytes = m * (taskBytes(weights.length, true) + wire.downlink);
    if (survivors.length === 0 || !(sum[K]! > 0)) return noReplies(downlinkBytes);
    const coefs = new Float32Array(K);
    for (let k = 0; k < K; k++) coefs[k] = sum[k]! / sum[K]! / K;
    const sets: DirectionSet[] = [{ seed: requests[0]!.seed, coefs }];
    const clipScale = await this.apply(sets, weights, input.lr);
    return {
      counted: survivors.length,
      trainLoss: this.settings.secureDp ? NaN : sum[K + 1]! / survivors.length,
      ...(this.settings.secureDp ? { lossHidden: true } : {}),
      forwardPasses: survivors.length * forwardPassesPerEstimate(K, this.settings.scheme),
      uplinkBytes: survivors.length * wire.uplink,
      downlinkBytes,
      directions: directionCount(sets),
      clipScale,
      excluded: [],
    };
  }

  async round(input: RoundInput, weights: Float32Array, version: number): Promise<RoundOutput> {
    if (this.settings.secureAggregation) return this.secureRound(input, weights, version);
    const requests = this.configure(input);
    const replies = await this.transport.estimate(requests, weights, version);
    // The model changes every FedSGD step, so every participant downloads it every round.
    const downlinkBytes = requests.length * taskBytes(weights.length, true);
    if (replies.length === 0) return noReplies(downlinkBytes);
    const { sets, excluded } = this.aggregate(input.step, requests, replies);
    const clipScale = await this.apply(sets, weights, input.lr);
    return {
      ...replyTotals(replies),
      uplinkBytes: replies.length * scalarsBytes(this.settings.K),
      downlinkBytes,
      directions: directionCount(sets),
      clipScale,
      excluded,
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

  constructor(
    private readonly transport: ClientTransport,
    private readonly settings: EstimatorSettings,
    private readonly local: LocalSettings,
  ) {}

  async round({ step, clients }: RoundInput, weights: Float32Array, version: number): Promise<RoundOutput> {
    const { K, sigma, scheme, seedPolicy, runSeed, clip } = this.settings;
    const n = weights.length;
    const requests = clients.map((clientId) => ({
      step,
      clientId,
      seeds: Array.from({ length: this.local.localSteps }, (_, j) => directionSeed(runSeed, seedPolicy, step, clientId, j)),
      K,
      sigma,
      scheme,
      lr: this.local.localLr,
      optimizer: this.local.localOptimizer,
      clip,
    }));
    const replies = await this.transport.localTrain(requests, weights, version);
    const downlinkBytes = requests.length * taskBytes(n, true);
    if (replies.length === 0) return noReplies(downlinkBytes);
    const total = replies.reduce((s, r) => s + r.examples, 0);
    const mean = new Float64Array(n);
    for (const r of replies) {
      const w = r.examples / total;
      for (let i = 0; i < n; i++) mean[i] += w * r.delta[i];
    }
    for (let i = 0; i < n; i++) weights[i] += mean[i];
    return {
      ...replyTotals(replies),
      uplinkBytes: replies.length * deltaBytes(n),
      downlinkBytes,
      directions: replies.length * K * this.local.localSteps,
      clipScale: 1,
      excluded: [],
    };
  }
}
