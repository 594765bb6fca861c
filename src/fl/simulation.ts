// Federated simulation of C clients in one process: data → clients (forward passes on perturbed weights,
// in worker threads) → K scalars each → server (aggregate, rebuild ĝ, clip, optimizer step, EMA) → evaluation.
import type { RunConfig } from '../cli/config.ts';
import type { Dataset } from '../data/types.ts';
import { buildModel } from '../model/index.ts';
import type { BuiltModel, ModelConfig } from '../model/types.ts';
import { mixSeed } from '../rng/directions.ts';
import { UniformRng as Rng } from '../rng/uniform.ts';
import { ClientStream, sampleClients } from './clientData.ts';
import { Ema } from './ema.ts';
import { makeOptimizer } from './optimizer.ts';
import { partition, type PartitionSpec } from './partition.ts';
import { lrAt } from './schedule.ts';
import { SimPool } from './simPool.ts';
import { FedAvg, FedSgd, type Strategy } from './strategy.ts';

/** One line of metrics.jsonl. */
export interface MetricsRecord {
  epoch: number;
  step: number;
  testAccuracy: number;
  testLoss: number;
  /** Mean participant minibatch loss L(W) over the steps since the previous evaluation. */
  trainLoss: number;
  /** Cumulative counters. */
  forwardPasses: number;
  uplinkBytes: number;
  downlinkBytes: number;
  directions: number;
  lr: number;
  wallMs: number;
}

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  trainLoss: number;
}

export interface SimulationEvents {
  onStart?(info: { totalSteps: number; stepsPerEpoch: number; params: number; workers: number; shardSizes: number[] }): void;
  onStep?(info: StepInfo): void;
  onEvaluation?(record: MetricsRecord): void | Promise<void>;
}

export interface SimulationResult {
  model: BuiltModel;
  weights: Float32Array;
  /** The weights that were evaluated (EMA when on). */
  evalWeights: Float32Array;
  metrics: MetricsRecord[];
  totalSteps: number;
}

export function modelConfigOf(config: RunConfig, dataset: Dataset): ModelConfig {
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

/** Server steps in one epoch: the rounds it takes an average client to go once through its shard. */
export function stepsPerEpoch(config: RunConfig, trainCount: number): number {
  const batchesPerRound = config.fedopt === 'fedavg' ? config.localSteps : 1;
  return Math.max(1, Math.ceil(trainCount / config.clients / (config.batchSize * batchesPerRound)));
}

export async function simulate(
  config: RunConfig,
  dataset: Dataset,
  workers: number,
  events: SimulationEvents = {},
): Promise<SimulationResult> {
  const started = performance.now();
  const model = buildModel(modelConfigOf(config, dataset));
  const n = model.layout.size;

  // Independent random streams, each derived from the run seed and a purpose tag.
  const partitionRng = new Rng(mixSeed(config.seed, 0x7061_7274 /* "part" */));
  const sampleRng = new Rng(mixSeed(config.seed, 0x7361_6d70 /* "samp" */));
  const shards = partition(dataset.train.y, dataset.classes, config.clients, partitionSpec(config), partitionRng);
  const streams = shards.map((s, c) => new ClientStream(s, new Rng(mixSeed(config.seed, 0x6461_7461 /* "data" */, c))));

  const perEpoch = stepsPerEpoch(config, dataset.train.count);
  const plannedSteps = Math.max(1, Math.round(config.epochs * perEpoch));
  const totalSteps = config.maxSteps === null ? plannedSteps : Math.min(plannedSteps, config.maxSteps);
  const participants = Math.max(1, Math.round(config.participation * config.clients));
  const testCount = config.testSubset === null ? dataset.test.count : Math.min(config.testSubset, dataset.test.count);

  const pool = new SimPool(model.config, dataset, n, workers);
  try {
    pool.weights.set(model.initWeights(config.seed));
    const ema = config.ema ? new Ema(pool.weights, config.emaDecay) : null;
    const estimator = {
      runSeed: config.seed,
      K: config.K,
      sigma: config.sigma,
      scheme: config.scheme,
      seedPolicy: config.seedPolicy,
      clip: config.clip,
    };
    const strategy: Strategy =
      config.fedopt === 'fedsgd'
        ? new FedSgd(
            pool,
            estimator,
            makeOptimizer(
              {
                optimizer: config.optimizer,
                beta1: config.beta1,
                beta2: config.beta2,
                momentum: config.momentum,
                weightDecay: config.weightDecay,
              },
              n,
            ),
          )
        : new FedAvg(pool, estimator, {
            localSteps: config.localSteps,
            localLr: config.localLr,
            localOptimizer: config.localOptimizer,
          });
    const schedule = {
      lr: config.lr,
      warmupSteps: Math.round(config.warmupEpochs * perEpoch),
      warmupLr: config.warmupLr ?? config.lr,
    };

    events.onStart?.({ totalSteps, stepsPerEpoch: perEpoch, params: n, workers: pool.workers, shardSizes: shards.map((s) => s.length) });

    const metrics: MetricsRecord[] = [];
    const totals = { forwardPasses: 0, uplinkBytes: 0, downlinkBytes: 0, directions: 0 };
    let lossSinceEval = 0;
    let stepsSinceEval = 0;
    let lr = schedule.lr;

    for (let step = 0; step < totalSteps; step++) {
      const epoch = Math.floor(step / perEpoch);
      lr = lrAt(step, schedule);
      const ids = sampleClients(config.clients, participants, sampleRng);
      const round = await strategy.round({
        step,
        lr,
        participants: ids.map((clientId) => ({
          clientId,
          batches: Array.from({ length: strategy.batchesPerRound }, () => streams[clientId].next(config.batchSize)),
        })),
      });
      if (!Number.isFinite(round.trainLoss)) {
        throw new Error(`training diverged at step ${step}: minibatch loss is ${round.trainLoss} (try a smaller lr or sigma)`);
      }
      totals.forwardPasses += round.forwardPasses;
      totals.uplinkBytes += round.uplinkBytes;
      totals.downlinkBytes += round.downlinkBytes;
      totals.directions += round.directions;
      lossSinceEval += round.trainLoss;
      stepsSinceEval++;

      const endOfEpoch = (step + 1) % perEpoch === 0 || step + 1 === totalSteps;
      // The official recipe updates the EMA once per epoch (with its warm-up); 'step' is available for study.
      if (ema && (config.emaEvery === 'step' || endOfEpoch)) ema.update(pool.weights);
      events.onStep?.({ step: step + 1, totalSteps, epoch: epoch + 1, trainLoss: round.trainLoss });

      const evalNow = config.evalEvery === 'epoch' ? endOfEpoch : (step + 1) % config.evalEvery === 0 || step + 1 === totalSteps;
      if (evalNow) {
        pool.evalWeights.set(ema ? ema.weights() : pool.weights);
        const ev = await pool.evaluate(testCount);
        const record: MetricsRecord = {
          epoch: (step + 1) / perEpoch,
          step: step + 1,
          testAccuracy: ev.correct / ev.count,
          testLoss: ev.lossSum / ev.count,
          trainLoss: lossSinceEval / stepsSinceEval,
          ...totals,
          lr,
          wallMs: Math.round(performance.now() - started),
        };
        metrics.push(record);
        lossSinceEval = 0;
        stepsSinceEval = 0;
        await events.onEvaluation?.(record);
      }
    }
    return {
      model,
      weights: pool.weights.slice(),
      evalWeights: ema ? ema.weights().slice() : pool.weights.slice(),
      metrics,
      totalSteps,
    };
  } finally {
    await pool.close();
  }
}
