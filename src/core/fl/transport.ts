// How the server reaches its clients. Two implementations: in-process (simulation: worker threads that
// play the clients, src/node/sim/inProcess.ts) and WebSocket (real clients on other machines, src/node/net).
// Clients hold their own data; the server only names the round, the seeds and the estimator settings.
import type { Scheme } from '../zo/scheme.ts';
import type { LowRankPlan } from '../rng/lowrank.ts';

export interface EstimateRequest {
  step: number;
  clientId: number;
  /** Seed of this client's K directions (server-assigned, so the server can regenerate them). */
  seed: number;
  K: number;
  sigma: number;
  scheme: Scheme;
}

export interface EstimateReply {
  clientId: number;
  scalars: Float32Array;
  /** Examples behind the estimate (the aggregation weight n_c). */
  examples: number;
  /** L(W) on the minibatch, reported for the training-loss curve. */
  loss: number;
  forwardPasses: number;
}

/** What a FedAvg client needs to run its local ZO steps (besides its data and the weights). */
export interface LocalTrainPlan {
  /** One seed per local step. */
  seeds: number[];
  K: number;
  sigma: number;
  scheme: Scheme;
  lr: number;
  optimizer: 'sgd' | 'adam';
  clip: number;
  /** Low-rank directions (perturbation 'lowrank'; simulation only); absent or null = Gaussian. */
  lowrank?: LowRankPlan | null;
}

export interface LocalTrainRequest extends LocalTrainPlan {
  step: number;
  clientId: number;
}

export interface LocalTrainReply {
  clientId: number;
  delta: Float32Array;
  examples: number;
  loss: number;
  forwardPasses: number;
}

/** A secure-aggregation round's outcome (docs/secure-aggregation.md): the sum, never a client's vector. */
export interface SecureSumReply {
  /** Clients whose vectors the sum holds (ascending); empty when the round failed. */
  survivors: number[];
  /** Σ_c w_c·a_c (K values), Σ_c w_c, Σ_c loss_c, with w_c = examples / batchSize (secagg/quantize.ts). */
  sum: Float64Array;
}

export interface ClientTransport {
  /** Minibatches per client per local step (for byte and example accounting). */
  readonly batchSize: number;
  /**
   * FedSGD round: every request answered with K scalars on one local minibatch under `weights`.
   * Replies come back in request order; a client that failed or missed the deadline is left out.
   */
  estimate(requests: EstimateRequest[], weights: Float32Array, version: number): Promise<EstimateReply[]>;
  /**
   * FedSGD round under secure aggregation: the same tasks, but the transport returns only the sum of the
   * clients' vectors (transports without it refuse such a configuration).
   */
  secureEstimate?(requests: EstimateRequest[], weights: Float32Array, version: number): Promise<SecureSumReply>;
  /** FedAvg round: local ZO steps from `weights`, replies carry model deltas (same dropping rule). */
  localTrain(requests: LocalTrainRequest[], weights: Float32Array, version: number): Promise<LocalTrainReply[]>;
  close(): Promise<void>;
}
