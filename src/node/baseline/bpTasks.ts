// Messages between the backprop baseline (main thread) and its worker threads. Each worker holds one tfjs
// model and plays whichever client the next task names, on that client's own examples.
import type { ModelConfig } from '../../core/model/types.ts';
import type { TfjsBackend } from './tfjs.ts';

/** Buffers every worker maps once. */
export interface BpSharedState {
  model: ModelConfig;
  backend: TfjsBackend;
  trainX: SharedArrayBuffer;
  trainY: SharedArrayBuffer;
  /** Current server weights (float32, n), written by the main thread before each round. */
  weights: SharedArrayBuffer;
}

/** FedSGD client: the exact minibatch gradient at the current weights. */
export interface BpGradTask {
  kind: 'grad';
  indices: Int32Array;
}

export interface BpGradResult {
  grad: Float32Array;
  /** L(W) on the minibatch. */
  loss: number;
}

/** FedAvg client: local gradient steps on successive minibatches, from the current weights. */
export interface BpLocalTrainTask {
  kind: 'local-train';
  batches: Int32Array[];
  lr: number;
  optimizer: 'sgd' | 'adam';
}

export interface BpLocalTrainResult {
  delta: Float32Array;
  meanLoss: number;
  /** One forward (and one backward) pass per local step. */
  forwardPasses: number;
}

export type BpTask = BpGradTask | BpLocalTrainTask;
