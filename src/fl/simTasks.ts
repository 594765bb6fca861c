// Messages between the simulation (main thread) and its workers. Each worker plays clients (forward
// passes on perturbed weights) and helps the server (rebuilding ĝ over a slice of the parameters).
import type { ModelConfig } from '../model/types.ts';
import type { DirectionSet } from '../zo/server.ts';
import type { LocalTrainPlan } from './transport.ts';

/** Buffers every worker maps once: the data (clients read their own indices) and the model state. */
export interface SharedState {
  model: ModelConfig;
  trainX: SharedArrayBuffer;
  trainY: SharedArrayBuffer;
  testX: SharedArrayBuffer;
  testY: SharedArrayBuffer;
  /** Current server weights (float32, n). */
  weights: SharedArrayBuffer;
  /** Weights to evaluate (the EMA, or a copy of the weights). */
  evalWeights: SharedArrayBuffer;
  /** ĝ accumulator (float64, n). */
  grad: SharedArrayBuffer;
}

/** Losses of one client's minibatch under directions [kStart, kEnd) of its seed. */
export interface LossesTask {
  kind: 'losses';
  indices: Int32Array;
  seed: number;
  sigma: number;
  kStart: number;
  kEnd: number;
  /** Also evaluate L(W − σz_k) (central differences). */
  minus: boolean;
  /** Also evaluate L(W) (forward differences' reference point). */
  base: boolean;
}

export interface LossesResult {
  plus: Float32Array;
  minus: Float32Array | null;
  base: number | null;
}

/** grad[start, end) = Σ_sets Σ_k coef_k z_k[start, end). */
export interface ReconstructTask {
  kind: 'reconstruct';
  sets: DirectionSet[];
  start: number;
  end: number;
}

/** Loss sum and correct count of evalWeights on test examples [start, end). */
export interface EvaluateTask {
  kind: 'evaluate';
  start: number;
  end: number;
}

export interface EvaluateResult {
  lossSum: number;
  correct: number;
  count: number;
}

/** One FedAvg client: local ZO steps from the current weights, returns its model delta. */
export interface LocalTrainTask extends LocalTrainPlan {
  kind: 'local-train';
  batches: Int32Array[];
}

export interface LocalTrainResult {
  delta: Float32Array;
  meanLoss: number;
  forwardPasses: number;
}

export type SimTask = LossesTask | ReconstructTask | EvaluateTask | LocalTrainTask;
