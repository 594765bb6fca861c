// The backprop baseline as federated strategies (algorithm = 'bp'), plugged into the same server loop
// (federation.ts) as BAFFLE: same participants, same client minibatch streams, same server optimizer, same EMA,
// same evaluation. Only the client changes: it backpropagates (tfjs autograd) instead of running K perturbed
// forward passes, and uploads n floats instead of K.
//
//   FedSGD: every participant returns the exact gradient of its minibatch loss; the server averages them
//           weighted by example count and takes one optimizer step. No clipping: the max-abs clip is there to
//           tame the zeroth-order estimate's noise, and the official backprop baseline does not clip (the
//           `clip` key applies to BAFFLE only).
//   FedAvg: every participant takes `localSteps` gradient steps (localOptimizer, localLr) on successive
//           minibatches and uploads its model delta; the server applies the example-weighted mean delta.
import type { RunConfig } from '../cli/config.ts';
import type { Dataset } from '../data/types.ts';
import { WorkerPool } from '../engine/pool.ts';
import type { ClientStream } from '../fl/clientData.ts';
import { makeOptimizer, type Optimizer } from '../fl/optimizer.ts';
import type { RoundInput, RoundOutput, Strategy } from '../fl/strategy.ts';
import { deltaBytes, taskBytes } from '../fl/wire.ts';
import type { ModelConfig } from '../model/types.ts';
import type { BpGradResult, BpLocalTrainResult, BpSharedState, BpTask } from './bpTasks.ts';
import { tfjsBackendFromEnv, type TfjsBackend } from './tfjs.ts';

function sharedCopy(src: Float32Array | Uint8Array): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(sab).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return sab;
}

/** Backprop clients behind worker threads (one tfjs model each), with every client's own minibatch stream. */
export class BpClients {
  readonly weights: Float32Array;
  private readonly pool: WorkerPool<BpTask, unknown>;

  constructor(
    model: ModelConfig,
    dataset: Dataset,
    params: number,
    workers: number,
    private readonly streams: ClientStream[],
    readonly batchSize: number,
    backend: TfjsBackend = tfjsBackendFromEnv(),
  ) {
    const state: BpSharedState = {
      model,
      backend,
      trainX: sharedCopy(dataset.train.x),
      trainY: sharedCopy(dataset.train.y),
      weights: new SharedArrayBuffer(params * 4),
    };
    this.weights = new Float32Array(state.weights);
    this.pool = new WorkerPool<BpTask, unknown>(new URL('./bpWorker.ts', import.meta.url), workers, state);
  }

  /** Exact minibatch gradients of `clients` at `weights`, in request order. */
  async gradients(clients: number[], weights: Float32Array): Promise<(BpGradResult & { examples: number })[]> {
    this.weights.set(weights);
    return Promise.all(
      clients.map(async (c) => {
        const indices = this.streams[c]!.next(this.batchSize);
        const r = (await this.pool.run({ kind: 'grad', indices })) as BpGradResult;
        return { ...r, examples: indices.length };
      }),
    );
  }

  /** Local training of `clients` from `weights`: model deltas, in request order. */
  async localTrain(
    clients: number[],
    weights: Float32Array,
    local: { localSteps: number; localLr: number; localOptimizer: 'sgd' | 'adam' },
  ): Promise<(BpLocalTrainResult & { examples: number })[]> {
    this.weights.set(weights);
    return Promise.all(
      clients.map(async (c) => {
        const batches = Array.from({ length: local.localSteps }, () => this.streams[c]!.next(this.batchSize));
        const r = (await this.pool.run({
          kind: 'local-train',
          batches,
          lr: local.localLr,
          optimizer: local.localOptimizer,
        })) as BpLocalTrainResult;
        return { ...r, examples: batches.reduce((s, b) => s + b.length, 0) };
      }),
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export class BpFedSgd implements Strategy {
  readonly name = 'fedsgd';
  private readonly gradient: Float32Array;

  constructor(
    private readonly clients: BpClients,
    private readonly optimizer: Optimizer,
  ) {
    this.gradient = new Float32Array(optimizer.size);
  }

  async round({ clients, lr }: RoundInput, weights: Float32Array): Promise<RoundOutput> {
    const n = weights.length;
    const replies = await this.clients.gradients(clients, weights);
    const downlinkBytes = clients.length * taskBytes(n, true);
    const total = replies.reduce((s, r) => s + r.examples, 0);
    const mean = new Float64Array(n);
    for (const r of replies) {
      const w = r.examples / total;
      for (let i = 0; i < n; i++) mean[i] += w * r.grad[i]!;
    }
    const g = this.gradient;
    for (let i = 0; i < n; i++) g[i] = mean[i]!;
    this.optimizer.step(weights, g, lr);
    return {
      counted: replies.length,
      trainLoss: replies.reduce((s, r) => s + r.loss, 0) / replies.length,
      forwardPasses: replies.length,
      uplinkBytes: replies.length * deltaBytes(n),
      downlinkBytes,
      directions: 0,
      clipScale: 1,
    };
  }
}

export class BpFedAvg implements Strategy {
  readonly name = 'fedavg';

  constructor(
    private readonly clients: BpClients,
    private readonly local: { localSteps: number; localLr: number; localOptimizer: 'sgd' | 'adam' },
  ) {}

  async round({ clients }: RoundInput, weights: Float32Array): Promise<RoundOutput> {
    const n = weights.length;
    const replies = await this.clients.localTrain(clients, weights, this.local);
    const total = replies.reduce((s, r) => s + r.examples, 0);
    const mean = new Float64Array(n);
    for (const r of replies) {
      const w = r.examples / total;
      for (let i = 0; i < n; i++) mean[i] += w * r.delta[i]!;
    }
    for (let i = 0; i < n; i++) weights[i] += mean[i]!;
    return {
      counted: replies.length,
      trainLoss: replies.reduce((s, r) => s + r.meanLoss, 0) / replies.length,
      forwardPasses: replies.reduce((s, r) => s + r.forwardPasses, 0),
      uplinkBytes: replies.length * deltaBytes(n),
      downlinkBytes: clients.length * taskBytes(n, true),
      directions: 0,
      clipScale: 1,
    };
  }
}

export interface Backprop {
  strategy: Strategy;
  close(): Promise<void>;
}

/** The backprop strategy for `config` (algorithm = 'bp'), with its worker threads; close() stops them. */
export function createBackprop(
  config: RunConfig,
  model: ModelConfig,
  dataset: Dataset,
  streams: ClientStream[],
  params: number,
  workers: number,
): Backprop {
  const clients = new BpClients(model, dataset, params, workers, streams, config.batchSize);
  const strategy =
    config.fedopt === 'fedavg'
      ? new BpFedAvg(clients, { localSteps: config.localSteps, localLr: config.localLr, localOptimizer: config.localOptimizer })
      : new BpFedSgd(
          clients,
          makeOptimizer(
            { optimizer: config.optimizer, beta1: config.beta1, beta2: config.beta2, momentum: config.momentum, weightDecay: config.weightDecay },
            params,
          ),
        );
  return { strategy, close: () => clients.close() };
}
