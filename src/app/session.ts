// One training session, whoever the clients are: the model's weights, the server optimizer and EMA, the worker
// pool that rebuilds ĝ and evaluates, the checkpoint after every step and the resume from it. `baffle run`
// (simulated clients, src/app/simulation.ts) and `baffle serve` (clients over WebSocket) differ only in the
// ClientTransport they hand to train().
import { isDeepStrictEqual } from 'node:util';
import { withDefaults, type RunConfig } from '../core/config/index.ts';
import type { Dataset } from '../core/data/types.ts';
import { UserError } from '../core/errors.ts';
import { Ema } from '../core/fl/ema.ts';
import {
  freshProgress,
  planFederation,
  runFederation,
  type FederationEvents,
  type FederationPlan,
  type FederationProgress,
  type MetricsRecord,
} from '../core/fl/federation.ts';
import type { Optimizer } from '../core/fl/optimizer.ts';
import { aggregationOf, evaluationSplit, makeStrategy, privacyOf, serverOptimizer, type Privacy } from '../core/fl/setup.ts';
import type { Aggregation } from '../core/fl/aggregation.ts';
import type { Strategy } from '../core/fl/strategy.ts';
import type { ClientTransport } from '../core/fl/transport.ts';
import { clientModel, type ModelArtifact } from '../core/model/artifact.ts';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../node/checkpoint.ts';
import { SimPool } from '../node/sim/simPool.ts';
import { lowRankPlan, type LowRankPlan } from '../core/rng/lowrank.ts';
import { mlpShape, type MlpShape } from '../core/zo/lowrankBatch.ts';
import { zooConfigOf } from '../node/model/load.ts';

export interface SessionOptions {
  config: RunConfig;
  artifact: ModelArtifact;
  dataset: Dataset;
  workers: number;
  /** Where the checkpoint after every step goes (null = no checkpoints, e.g. in tests). */
  checkpointDir: string | null;
  /** Continue from the checkpoint in checkpointDir when there is one. */
  resume: boolean;
  /** The run's id when it starts fresh (a resumed run keeps the checkpoint's). */
  runId: string;
  /** The clients are remote and hold their own data: keep the training split out of the workers. */
  remoteClients?: boolean;
}

export interface SessionResult {
  metrics: MetricsRecord[];
  /** The weights that were evaluated (the EMA when on), a copy. */
  evalWeights: Float32Array;
  /** The server's weights at the end, a copy. */
  weights: Float32Array;
  totalSteps: number;
  /** The run's differential privacy (δ and the noise multiplier), or null. */
  privacy: { delta: number; noiseMultiplier: number } | null;
}

export class Session {
  readonly plan: FederationPlan;
  readonly pool: SimPool;
  readonly weights: Float32Array;
  readonly ema: Ema | null;
  readonly optimizer: Optimizer;
  /** The round's aggregation rule, simulated attack and differential privacy. */
  readonly aggregation: Aggregation;
  /** A differentially private run's mechanism and accounting, or null. */
  readonly privacy: Privacy | null;
  readonly runId: string;
  /** The transport's state the checkpoint restored (client cursors, round log), or {} for a fresh run. */
  readonly restored: Record<string, unknown>;
  private progress: FederationProgress;

  private constructor(private readonly opts: SessionOptions) {
    const { config, artifact, dataset } = opts;
    const n = artifact.params;
    this.plan = planFederation(config, dataset.train.count);
    const test = evaluationSplit(dataset.test, config.testSubset);
    const train = opts.remoteClients ? { x: new Float32Array(0), y: new Uint8Array(0), count: 0 } : dataset.train;
    const lowrank = config.perturbation === 'lowrank' ? lowRankPlan(artifact.layout, config.rank) : null;
    this.pool = new SimPool(clientModel(artifact), { train, test }, opts.workers, lowrank, memberBatchShape(config, artifact, lowrank));
    this.weights = this.pool.weights;
    this.weights.set(artifact.initial);
    this.ema = config.ema ? new Ema(this.weights, config.emaDecay) : null;
    this.optimizer = serverOptimizer(config, n);
    this.privacy = privacyOf(config, this.plan.totalSteps);
    this.aggregation = aggregationOf(config, this.privacy?.noiseMultiplier ?? 0);
    this.progress = freshProgress(config);
    this.runId = opts.runId;
    this.restored = {};
  }

  /** Opens a session: the pool is started and, when resuming, the checkpoint restored. */
  static open(opts: SessionOptions): Session {
    const s = new Session(opts);
    try {
      if (opts.resume && opts.checkpointDir && hasCheckpoint(opts.checkpointDir)) s.restore(opts.checkpointDir);
    } catch (e) {
      void s.close();
      throw e;
    }
    return s;
  }

  private restore(dir: string): void {
    const { config, artifact } = this.opts;
    const ck = loadCheckpoint(dir);
    if (!isDeepStrictEqual({ ...withDefaults(ck.config), workers: config.workers }, { ...config })) {
      throw new UserError(`the checkpoint in ${dir} was made with a different configuration`);
    }
    if (ck.weights.length !== artifact.params) {
      throw new UserError(`the checkpoint in ${dir} holds ${ck.weights.length} weights, the model has ${artifact.params} trainable parameters`);
    }
    this.weights.set(ck.weights);
    if (ck.optimizer) this.optimizer.loadState(ck.optimizer);
    if (this.ema && ck.ema) this.ema.loadState(ck.ema);
    this.progress = ck.progress;
    (this as { runId: string }).runId = ck.runId;
    (this as { restored: Record<string, unknown> }).restored = ck.extra;
  }

  /** Steps the checkpoint had completed (0 for a fresh run). */
  get resumedAt(): number {
    return this.progress.step;
  }

  /** Evaluations so far (those the checkpoint restored, then this session's). */
  get metrics(): readonly MetricsRecord[] {
    return this.progress.metrics;
  }

  /** The forward-only strategy of the configuration over `transport`, with this session's optimizer. */
  strategy(transport: ClientTransport): Strategy {
    return makeStrategy(this.opts.config, transport, (sets) => this.pool.reconstruct(sets), this.optimizer, this.aggregation);
  }

  /**
   * Trains until the plan's last step. After every step the checkpoint is saved (when the session has a
   * directory) with `transportState()` as its extra record; `checkpointOptimizer` false leaves the optimizer
   * out (the backprop baseline keeps its own).
   */
  async train(
    strategy: Strategy,
    events: FederationEvents = {},
    transportState: () => Record<string, unknown> = () => ({}),
    checkpointOptimizer = true,
  ): Promise<SessionResult> {
    const { config } = this.opts;
    const dir = this.opts.checkpointDir;
    const wallBase = this.progress.wallOffsetMs;
    const started = performance.now();
    this.progress = await runFederation(
      {
        config,
        plan: this.plan,
        strategy,
        weights: this.weights,
        ema: this.ema,
        evaluate: (w) => this.pool.evaluate(w),
        ...(this.privacy ? { epsilon: this.privacy.epsilon, privacyReduction: this.privacy.reduction } : {}),
        afterStep: dir
          ? (p) =>
              saveCheckpoint(
                dir,
                {
                  runId: this.runId,
                  config,
                  progress: p,
                  weights: this.weights,
                  optimizer: checkpointOptimizer ? this.optimizer.state() : null,
                  ema: this.ema?.state() ?? null,
                  extra: transportState(),
                },
                wallBase + (performance.now() - started),
              )
          : undefined,
      },
      this.progress,
      events,
    );
    return {
      metrics: this.progress.metrics,
      evalWeights: this.evalWeights(),
      weights: this.weights.slice(),
      totalSteps: this.plan.totalSteps,
      privacy: this.privacy ? { delta: this.privacy.delta, noiseMultiplier: this.privacy.noiseMultiplier } : null,
    };
  }

  /** A copy of the weights evaluation uses (the EMA when on). */
  evalWeights(): Float32Array {
    return (this.ema ? this.ema.weights() : this.weights).slice();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * The model's shape for the member-batched low-rank client step (memberBatch), or null where the per-pass path
 * runs: Gaussian directions, the key off, an imported model, or a zoo model the fast path does not cover.
 */
function memberBatchShape(config: RunConfig, artifact: ModelArtifact, lowrank: LowRankPlan | null): MlpShape | null {
  // An ONNX file's model is a path, never 'mlp' (and zooConfigOf takes zoo models only).
  if (!lowrank || !config.memberBatch || config.model !== 'mlp') return null;
  return mlpShape(zooConfigOf(config), artifact.layout);
}
