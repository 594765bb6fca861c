// Federated simulation of C clients in one process: the server loop (federation.ts) with the in-process
// transport, whose worker threads play the clients and help the server rebuild ĝ.
import type { RunConfig } from '../cli/config.ts';
import type { Dataset, Split } from '../data/types.ts';
import { buildModel } from '../model/index.ts';
import type { BuiltModel, ModelConfig } from '../model/types.ts';
import { mixSeed } from '../rng/directions.ts';
import { UniformRng as Rng } from '../rng/uniform.ts';
import { ClientStream, CursorStream } from './clientData.ts';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { isDeepStrictEqual } from 'node:util';
import { Ema } from './ema.ts';
import {
  freshProgress,
  planFederation,
  runFederation,
  type FederationEvents,
  type MetricsRecord,
} from './federation.ts';
import { InProcessTransport } from './inProcess.ts';
import { makeOptimizer, type Optimizer } from './optimizer.ts';
import { partition, type PartitionSpec } from './partition.ts';
import { SimPool } from './simPool.ts';
import { FedAvg, FedSgd, type EstimatorSettings, type Strategy } from './strategy.ts';
import { createBackprop } from '../baseline/strategy.ts';
import type { ClientTransport } from './transport.ts';

export type { MetricsRecord, StepInfo } from './federation.ts';

export interface SimulationEvents extends FederationEvents {
  onStart?(info: { resumedAt: number; totalSteps: number; stepsPerEpoch: number; params: number; workers: number; shardSizes: number[] }): void;
}

export interface SimulationResult {
  model: BuiltModel;
  weights: Float32Array;
  /** The weights that were evaluated (EMA when on). */
  evalWeights: Float32Array;
  metrics: MetricsRecord[];
  totalSteps: number;
}

export function modelConfigOf(config: RunConfig, dataset: Pick<Dataset, 'inputShape' | 'classes'>): ModelConfig {
  if (config.norm === 'batchnorm') throw new Error('norm: batchnorm is not supported (see baffle-spec §4)');
  return {
    model: config.model,
    activation: config.activation,
    norm: config.norm,
    hidden: config.hidden,
    depth: config.depth,
    width: config.width,
    inputShape: dataset.inputShape,
    classes: dataset.classes,
  };
}

function partitionSpec(config: RunConfig): PartitionSpec {
  switch (config.partition) {
    case 'iid':
      return { kind: 'iid' };
    case 'dirichlet':
      return { kind: 'dirichlet', alpha: config.alpha };
    case 'shards':
      return { kind: 'shards', shardsPerClient: config.shardsPerClient };
  }
}

/**
 * The test examples a run evaluates on: the whole test split, or `testSubset` of them taken at an even
 * stride — test splits can be sorted by class (mnist-10k is), so the first N would miss whole classes.
 */
export function evaluationSplit(test: Split, testSubset: number | null): Split {
  if (testSubset === null || testSubset >= test.count) return test;
  const count = Math.max(1, testSubset);
  const size = test.x.length / test.count;
  const x = new Float32Array(count * size);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const j = Math.floor((i * test.count) / count);
    x.set(test.x.subarray(j * size, (j + 1) * size), i * size);
    y[i] = test.y[j];
  }
  return { x, y, count };
}

/** Every client's shard of the training split, a pure function of (labels, config): any process can recompute it. */
export function clientShards(config: RunConfig, labels: Uint8Array, classes: number): Int32Array[] {
  const rng = new Rng(mixSeed(config.seed, 0x7061_7274 /* "part" */));
  return partition(labels, classes, config.clients, partitionSpec(config), rng);
}

/** Client `c`'s minibatch stream over its shard (same in the simulation and in a `baffle join` client). */
export function clientStream(config: RunConfig, shard: Int32Array, clientId: number): ClientStream {
  return new ClientStream(shard, new Rng(mixSeed(config.seed, 0x6461_7461 /* "data" */, clientId)));
}

export function estimatorSettings(config: RunConfig): EstimatorSettings {
  return {
    runSeed: config.seed,
    K: config.K,
    sigma: config.sigma,
    scheme: config.scheme,
    seedPolicy: config.seedPolicy,
    clip: config.clip,
  };
}

/** The server optimizer the config names (FedSGD), for `params` parameters. */
export function serverOptimizer(config: RunConfig, params: number): Optimizer {
  return makeOptimizer(
    { optimizer: config.optimizer, beta1: config.beta1, beta2: config.beta2, momentum: config.momentum, weightDecay: config.weightDecay },
    params,
  );
}

/**
 * The strategy the config names, talking to clients through `transport`. `optimizer` (FedSGD) may be passed
 * in so that its state can be checkpointed; by default a fresh serverOptimizer().
 */
export function makeStrategy(
  config: RunConfig,
  transport: ClientTransport,
  reconstruct: (sets: Parameters<SimPool['reconstruct']>[0]) => Promise<Float64Array>,
  params: number,
  optimizer: Optimizer = serverOptimizer(config, params),
): Strategy {
  if (config.algorithm === 'bp') {
    // simulate() builds the backprop strategy itself (src/baseline); anything else asking for it is a mistake.
    throw new Error("algorithm 'bp' (the backprop baseline) runs in the simulation only (baffle run / baffle suite); networked clients are forward-only");
  }
  if (config.fedopt === 'fedavg') {
    return new FedAvg(transport, estimatorSettings(config), {
      localSteps: config.localSteps,
      localLr: config.localLr,
      localOptimizer: config.localOptimizer,
    });
  }
  return new FedSgd(transport, reconstruct, estimatorSettings(config), optimizer);
}

export interface CheckpointOptions {
  /** Save a checkpoint here after every completed step (atomic; see fl/checkpoint.ts). */
  dir: string;
  /** Continue from the checkpoint in `dir` if there is one. */
  resume: boolean;
}

export async function simulate(
  config: RunConfig,
  dataset: Dataset,
  workers: number,
  events: SimulationEvents = {},
  checkpoint: CheckpointOptions | null = null,
): Promise<SimulationResult> {
  const model = buildModel(modelConfigOf(config, dataset));
  const n = model.layout.size;
  const shards = clientShards(config, dataset.train.y, dataset.classes);
  const plan = planFederation(config, dataset.train.count);
  const test = evaluationSplit(dataset.test, config.testSubset);

  const pool = new SimPool(model.config, { ...dataset, test }, n, workers);
  // algorithm = 'bp': the backprop baseline's clients (src/baseline) replace the forward-only ones.
  const backprop = config.algorithm === 'bp' ? createBackprop(config, model.config, dataset, shards.map((s, c) => clientStream(config, s, c)), n, pool.workers) : null;
  try {
    const weights = pool.weights;
    weights.set(model.initWeights(config.seed));
    const ema = config.ema ? new Ema(weights, config.emaDecay) : null;
    const optimizer = serverOptimizer(config, n);
    let progress = freshProgress(config);
    let cursors: number[] | undefined;
    if (checkpoint?.resume && hasCheckpoint(checkpoint.dir)) {
      if (backprop) throw new Error('resuming a backprop baseline run (algorithm = bp) is not supported: start it again');
      const ck = loadCheckpoint(checkpoint.dir);
      if (!isDeepStrictEqual({ ...ck.config, workers: config.workers }, { ...config })) {
        throw new Error(`the checkpoint in ${checkpoint.dir} was made with a different configuration`);
      }
      if (ck.weights.length !== n) throw new Error(`checkpoint holds ${ck.weights.length} weights, the model has ${n}`);
      weights.set(ck.weights);
      if (ck.optimizer) optimizer.loadState(ck.optimizer);
      if (ema && ck.ema) ema.loadState(ck.ema);
      progress = ck.progress;
      cursors = ck.extra.cursors as number[] | undefined;
    }
    const cursorStreams = shards.map((shard, c) => new CursorStream(() => clientStream(config, shard, c)));
    const transport = new InProcessTransport(pool, cursorStreams, config.batchSize, cursors);
    const strategy = backprop?.strategy ?? makeStrategy(config, transport, (sets) => pool.reconstruct(sets), n, optimizer);
    const runId = `${config.seed}`;
    const wallBase = progress.wallOffsetMs;
    const sessionStart = performance.now();
    events.onStart?.({
      resumedAt: progress.step,
      totalSteps: plan.totalSteps,
      stepsPerEpoch: plan.stepsPerEpoch,
      params: n,
      workers: pool.workers,
      shardSizes: shards.map((s) => s.length),
    });
    progress = await runFederation(
      {
        config,
        plan,
        strategy,
        weights,
        ema,
        evaluate: (w) => pool.evaluate(w),
        afterStep: checkpoint
          ? (p) =>
              saveCheckpoint(
                checkpoint.dir,
                {
                  runId,
                  config,
                  progress: p,
                  weights,
                  optimizer: backprop ? null : optimizer.state(),
                  ema: ema?.state() ?? null,
                  extra: { cursors: transport.cursors },
                },
                wallBase + (performance.now() - sessionStart),
              )
          : undefined,
      },
      progress,
      events,
    );
    return {
      model,
      weights: weights.slice(),
      evalWeights: (ema ? ema.weights() : weights).slice(),
      metrics: progress.metrics,
      totalSteps: plan.totalSteps,
    };
  } finally {
    await backprop?.close();
    await pool.close();
  }
}
