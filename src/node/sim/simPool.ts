// The simulation's workers behind typed calls: client forward passes, the server's ĝ rebuild split over
// parameter slices, and evaluation. Data and model state sit in shared memory, mapped once per worker.
import type { MlpShape } from '../../core/zo/lowrankBatch.ts';
import os from 'node:os';
import type { Dataset } from '../../core/data/types.ts';
import type { ClientModel } from '../../core/model/artifact.ts';
import type { PartialLosses } from '../../core/zo/task.ts';
import { WorkerPool } from '../engine/pool.ts';
import { BLOCK } from '../../core/rng/directions.ts';
import type { DirectionSet } from '../../core/zo/server.ts';
import type { LowRankPlan } from '../../core/rng/lowrank.ts';
import type {
  EvaluateResult,
  LocalTrainResult,
  LocalTrainTask,
  LossesTask,
  SharedState,
  SimTask,
} from './simTasks.ts';

function sharedCopy<T extends Float32Array | Uint8Array>(src: T): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(sab).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return sab;
}

/** Test examples per evaluation task: fixed, so that sums run in the same order whatever the worker count. */
const EVAL_CHUNK = 500;

export class SimPool {
  readonly weights: Float32Array;
  private readonly evalWeights: Float32Array;
  readonly grad: Float64Array;
  private readonly testCount: number;
  private readonly pool: WorkerPool<SimTask, unknown>;

  /**
   * `lowrank`: the run's low-rank plan (perturbation 'lowrank'), which the clients' tasks and the rebuild of ĝ
   * use; null = Gaussian directions.
   */
  constructor(
    model: ClientModel,
    dataset: Pick<Dataset, 'train' | 'test'>,
    workers: number,
    readonly lowrank: LowRankPlan | null = null,
    memberBatch: MlpShape | null = null,
  ) {
    const params = model.params;
    const state: SharedState = {
      model,
      trainX: sharedCopy(dataset.train.x),
      trainY: sharedCopy(dataset.train.y),
      testX: sharedCopy(dataset.test.x),
      testY: sharedCopy(dataset.test.y),
      weights: new SharedArrayBuffer(params * 4),
      evalWeights: new SharedArrayBuffer(params * 4),
      grad: new SharedArrayBuffer(params * 8),
      memberBatch: memberBatch && lowrank ? { shape: memberBatch, plan: lowrank } : null,
    };
    this.weights = new Float32Array(state.weights);
    this.evalWeights = new Float32Array(state.evalWeights);
    this.testCount = dataset.test.count;
    this.grad = new Float64Array(state.grad);
    this.pool = new WorkerPool<SimTask, unknown>(new URL('./simWorker.ts', import.meta.url), workers, state);
  }

  get workers(): number {
    return this.pool.size;
  }

  losses(task: Omit<LossesTask, 'kind'>): Promise<PartialLosses> {
    return this.pool.run({ kind: 'losses', ...task }) as Promise<PartialLosses>;
  }

  localTrain(task: Omit<LocalTrainTask, 'kind'>): Promise<LocalTrainResult> {
    return this.pool.run({ kind: 'local-train', ...task }) as Promise<LocalTrainResult>;
  }

  /** grad = Σ_sets Σ_k coef_k z_k, each worker rebuilding a slice of the parameters (no reduction needed). */
  async reconstruct(sets: DirectionSet[]): Promise<Float64Array> {
    const n = this.grad.length;
    const blocks = Math.ceil(n / BLOCK);
    const slices = Math.min(this.pool.size, blocks);
    const jobs: Promise<unknown>[] = [];
    for (let s = 0; s < slices; s++) {
      const start = Math.floor((blocks * s) / slices) * BLOCK;
      const end = Math.min(n, Math.floor((blocks * (s + 1)) / slices) * BLOCK);
      jobs.push(this.pool.run({ kind: 'reconstruct', sets, start, end, lowrank: this.lowrank }));
    }
    await Promise.all(jobs);
    return this.grad;
  }

  /** Loss and accuracy of `weights` on the pool's whole test split (pass the evaluation subset in). */
  async evaluate(weights: Float32Array): Promise<EvaluateResult> {
    this.evalWeights.set(weights);
    const count = this.testCount;
    const jobs: Promise<EvaluateResult>[] = [];
    for (let start = 0; start < count; start += EVAL_CHUNK) {
      const end = Math.min(count, start + EVAL_CHUNK);
      jobs.push(this.pool.run({ kind: 'evaluate', start, end }) as Promise<EvaluateResult>);
    }
    const parts = await Promise.all(jobs);
    const total: EvaluateResult = { lossSum: 0, correct: 0, count: 0 };
    for (const p of parts) {
      total.lossSum += p.lossSum;
      total.correct += p.correct;
      total.count += p.count;
    }
    return total;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export function defaultWorkers(): number {
  return os.availableParallelism();
}
