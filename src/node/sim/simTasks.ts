// Messages between the simulation (main thread) and its workers. Each worker plays clients (forward
// passes on perturbed weights) and helps the server (rebuilding ĝ over a slice of the parameters).
import type { ClientModel } from '../../core/model/artifact.ts';
import type { EstimateTask, PassRange } from '../../core/zo/task.ts';
import type { DirectionSet } from '../../core/zo/server.ts';
import type { LowRankPlan } from '../../core/rng/lowrank.ts';
import type { MlpShape } from '../../core/zo/lowrankBatch.ts';
import type { LocalTrainPlan } from '../../core/fl/transport.ts';

/** Buffers every worker maps once: the data (clients read their own indices) and the model state. */
export interface SharedState {
  model: ClientModel;
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
  /** The member-batched client step (memberBatch, src/core/zo/lowrankBatch.ts): the model's shape and the plan, or null. */
  memberBatch: { shape: MlpShape; plan: LowRankPlan } | null;
}

/** One share of a client's estimate on its minibatch (see src/core/zo/task.ts). */
export interface LossesTask {
  kind: 'losses';
  indices: Int32Array;
  task: EstimateTask;
  range: PassRange;
}

/** grad[start, end) = Σ_sets Σ_k coef_k z_k[start, end). */
export interface ReconstructTask {
  kind: 'reconstruct';
  sets: DirectionSet[];
  start: number;
  end: number;
  /** The run's low-rank plan (perturbation 'lowrank'), or null for Gaussian directions. */
  lowrank: LowRankPlan | null;
}

/** Loss sum and correct count of evalWeights on test examples [start, end). */
export interface EvaluateTask {
  kind: 'evaluate';
  start: number;
  end: number;
}

export type { Evaluation as EvaluateResult } from '../../core/engine/types.ts';

/** One FedAvg client: local ZO steps from the current weights, returns its model delta. */
export interface LocalTrainTask extends LocalTrainPlan {
  kind: 'local-train';
  batches: Int32Array[];
}

export type { LocalTrainResult } from '../../core/fl/localTrain.ts';

export type SimTask = LossesTask | ReconstructTask | EvaluateTask | LocalTrainTask;
