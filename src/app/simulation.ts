// Federated simulation of C clients in one process: a training session (session.ts) whose clients are the
// worker pool (the in-process transport), or, for the backprop baseline, tfjs clients (src/node/baseline).
import type { RunConfig } from '../core/config/index.ts';
import type { Dataset } from '../core/data/types.ts';
import { UserError } from '../core/errors.ts';
import { CursorStream } from '../core/fl/clientData.ts';
import type { FederationEvents, MetricsRecord } from '../core/fl/federation.ts';
import { clientShards, clientStream } from '../core/fl/setup.ts';
import type { ModelArtifact } from '../core/model/artifact.ts';
import { TrainableMap } from '../core/model/trainableMap.ts';
import { createBackprop } from '../node/baseline/strategy.ts';
import { loadRunModel, type RunModel } from '../node/model/load.ts';
import { InProcessTransport } from '../node/sim/inProcess.ts';
import { Session } from './session.ts';

export type { MetricsRecord, StepInfo } from '../core/fl/federation.ts';
export { evaluationSplit } from '../core/fl/setup.ts';

export interface SimulationEvents extends FederationEvents {
  onStart?(info: { resumedAt: number; totalSteps: number; stepsPerEpoch: number; params: number; workers: number; shardSizes: number[] }): void;
}

export interface SimulationResult {
  artifact: ModelArtifact;
  weights: Float32Array;
  /** The weights that were evaluated (EMA when on). */
  evalWeights: Float32Array;
  metrics: MetricsRecord[];
  totalSteps: number;
  /** The run's differential privacy (δ and the noise multiplier), or null. */
  privacy: { delta: number; noiseMultiplier: number } | null;
}

export interface CheckpointOptions {
  /** Save a checkpoint here after every completed step (atomic; see src/node/checkpoint.ts). */
  dir: string;
  /** Continue from the checkpoint in `dir` if there is one. */
  resume: boolean;
}

/**
 * Simulates the federation `config` describes on `dataset` (prepared as the model takes it, see
 * loadRunData). `model` is the run's model when the caller has it already (else it is loaded from config).
 */
export async function simulate(
  config: RunConfig,
  dataset: Dataset,
  workers: number,
  events: SimulationEvents = {},
  checkpoint: CheckpointOptions | null = null,
  model?: RunModel,
): Promise<SimulationResult> {
  const { artifact, zoo, zooWeights } = model ?? (await loadRunModel(config));
  const shards = clientShards(config, dataset.train.y, dataset.classes);
  const session = Session.open({
    config,
    artifact,
    dataset,
    workers,
    checkpointDir: checkpoint?.dir ?? null,
    resume: checkpoint?.resume ?? false,
    runId: `${config.seed}`,
  });
  // algorithm = 'bp': the backprop baseline's clients (src/node/baseline) replace the forward-only ones.
  let backprop: Awaited<ReturnType<typeof createBackprop>> | null = null;
  try {
    if (config.algorithm === 'bp') {
      if (session.resumedAt > 0) throw new UserError('resuming a backprop baseline run (algorithm = bp) is not supported: start it again');
      if (!zoo || !zooWeights) throw new UserError('the backprop baseline (algorithm = bp) needs a zoo model');
      const streams = shards.map((s, c) => clientStream(config, s, c));
      backprop = createBackprop(config, session.aggregation, zoo, new TrainableMap(zoo.layout, artifact.layout), zooWeights, dataset, streams, session.pool.workers);
    }
    const cursors = session.restored.cursors as number[] | undefined;
    const cursorStreams = shards.map((shard, c) => new CursorStream(() => clientStream(config, shard, c)));
    const transport = new InProcessTransport(session.pool, cursorStreams, config.batchSize, cursors);
    if (config.secureAggregation) transport.enableSecureAggregation(config, session.privacy?.noiseMultiplier ?? 0);
    events.onStart?.({
      resumedAt: session.resumedAt,
      totalSteps: session.plan.totalSteps,
      stepsPerEpoch: session.plan.stepsPerEpoch,
      params: artifact.params,
      workers: session.pool.workers,
      shardSizes: shards.map((s) => s.length),
    });
    const strategy = backprop?.strategy ?? session.strategy(transport);
    const result = await session.train(strategy, events, () => ({ cursors: transport.cursors }), backprop === null);
    return { artifact, ...result, metrics: [...result.metrics] };
  } finally {
    await backprop?.close();
    await session.close();
  }
}
