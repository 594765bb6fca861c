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
import type { RunConfig } from '../../core/config/index.ts';
import type { Dataset } from '../../core/data/types.ts';
import { WorkerPool } from '../engine/pool.ts';
import type { ClientStream } from '../../core/fl/clientData.ts';
import { type Optimizer } from '../../core/fl/optimizer.ts';
import type { Aggregation } from '../../core/fl/aggregation.ts';
import { serverOptimizer } from '../../core/fl/setup.ts';
import type { RoundInput, RoundOutput, Strategy } from '../../core/fl/strategy.ts';
import { deltaBytes, taskBytes } from '../../core/fl/wire.ts';
import type { BuiltModel } from '../../core/model/types.ts';
import type { TrainableMap } from '../../core/model/trainableMap.ts';
import type { BpGradResult, BpLocalTrainResult, BpSharedState, BpTask } from './bpTasks.ts';
import { tfjsBackendFromEnv, type TfjsBackend } from './tfjs.ts';

function sharedCopy(src: Float32Array | Uint8Array): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(sab).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return sab;
}

/**
 * Backprop clients behind worker threads (one tfjs model each), with every client's own minibatch stream.
 * The workers run the whole zoo model; the server trains the artifact's trainable parameters only, so the
 * trainable vector is expanded into the full one going out and gradients and deltas are gathered coming back.
 */
export class BpClients {
  /** The full weight vector the workers read (frozen parameters keep their starting values). */
  private readonly full: Float32Array;
  private readonly pool: WorkerPool<BpTask, unknown>;

  constructor(
    model: BuiltModel,
    private readonly map: TrainableMap,
    fullWeights: Float32Array,
    dataset: Dataset,
    workers: number,
    private readonly streams: ClientStream[],
    readonly batchSize: number,
    backend: TfjsBackend = tfjsBackendFromEnv(),
  ) {
    const state: BpSharedState = {
      model: model.config,
      backend,
      trainX: sharedCopy(dataset.train.x),
      trainY: sharedCopy(dataset.train.y),
      weights: new SharedArrayBuffer(model.layout.size * 4),
    };
    this.full = new Float32Array(state.weights);
    this.full.set(fullWeights);
    this.pool = new WorkerPool<BpTask, unknown>(new URL('./bpWorker.ts', import.meta.url), workers, state);
  }

  /** A full-model vector's trainable part. */
  private trainablePart(full: Float32Array, size: number): Float32Array {
    if (this.map.identity) return full;
    const out = new Float32Array(size);
    this.map.gather(full, out);
    return out;
  }

  /** Exact minibatch gradients of `clients` at `weights` (the trainable vector), in request order. */
  async gradients(clients: number[], weights: Float32Array): Promise<(BpGradResult & { examples: number })[]> {
    this.map.expand(weights, this.full);
    return Promise.all(
      clients.map(async (c) => {
        const indices = this.streams[c]!.next(this.batchSize);
        const r = (await this.pool.run({ kind: 'grad', indices })) as BpGradResult;
        return { ...r, grad: this.trainablePart(r.grad, weights.length), examples: indices.length };
      }),
    );
  }

  /** Local training of `clients` from `weights`: model deltas, in request order. */
  async localTrain(
    clients: number[],
    weights: Float32Array,
    local: { localSteps: number; localLr: number; localOptimizer: 'sgd' | 'adam' },
  ): Promise<(BpLocalTrainResult & { examples: number })[]> {
    this.map.expand(weights, this.full);
    return Promise.all(
      clients.map(async (c) => {
        const batches = Array.from({ length: local.localSteps }, () => this.streams[c]!.next(this.batchSize));
        const r = (await this.pool.run({
          kind: 'local-train',
          batches,
          lr: local.localLr,
          optimizer: local.localOptimizer,
        })) as BpLocalTrainResult;
        return { ...r, delta: this.trainablePart(r.delta, weights.length), examples: batches.reduce((s, b) => s + b.length, 0) };
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
    /** The round's aggregation on the gradients (the rule, the attack, DP), as BAFFLE's on its K-vectors. */
    private readonly aggregation: Aggregation,
  ) {
    this.gradient = new Float32Array(optimizer.size);
  }

  async round({ step, clients, lr }: RoundInput, weights: Float32Array): Promise<RoundOutput> {
    const n = weights.length;
    const replies = await this.clients.gradients(clients, weights);
    const downlinkBytes = clients.length * taskBytes(n, true);
    const { values: mean, excluded } = this.aggregation.combine(
      replies.map((r, i) => ({ clientId: clients[i]!, values: r.grad, examples: r.examples })),
      step,
      1,
    );
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
      excluded,
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
      excluded: [],
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
  aggregation: Aggregation,
  model: BuiltModel,
  map: TrainableMap,
  fullWeights: Float32Array,
  dataset: Dataset,
  streams: ClientStream[],
  workers: number,
): Backprop {
  const params = map.size;
  const clients = new BpClients(model, map, fullWeights, dataset, workers, streams, config.batchSize);
  const strategy =
    config.fedopt === 'fedavg'
      ? new BpFedAvg(clients, { localSteps: config.localSteps, localLr: config.localLr, localOptimizer: config.localOptimizer })
      : new BpFedSgd(clients, serverOptimizer(config, params), aggregation);
  return { strategy, close: () => clients.close() };
}
