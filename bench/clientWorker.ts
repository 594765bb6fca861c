// Bench worker for the client step: one single-threaded OrtSession, the client's hot loop
// (perturbInto → session.loss, fresh perturbed weights every pass), with the time of each part.
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { workerData } from 'node:worker_threads';
import { OrtSession } from '../src/node/engine/ort.ts';
import { serveTasks } from '../src/node/engine/serve.ts';
import { buildModel } from '../src/core/model/index.ts';
import type { ModelConfig } from '../src/core/model/types.ts';
import { perturbInto } from '../src/core/rng/directions.ts';
import { lowRankPlan, perturbLowRank } from '../src/core/rng/lowrank.ts';
import { clockDiff, threadClock } from './clock.ts';
import { syntheticBatch } from './lib.ts';

export interface ClientWorkerData {
  config: ModelConfig;
  batch: number;
  sigma: number;
  /** Direction distribution (default 'gaussian'); 'lowrank' uses rank (default 1). */
  perturbation?: 'gaussian' | 'lowrank';
  rank?: number;
}

export interface ClientRunTask {
  seed: number;
  kStart: number;
  kEnd: number;
  /**
   * Instead of the client loop: `batchedPasses` unperturbed forward passes over one batch of
   * batchedExamples examples (the batched-inference reference); the result's cpuMs is their on-CPU time.
   */
  batchedExamples?: number;
  batchedPasses?: number;
}

export interface ClientRunResult {
  passes: number;
  /** Milliseconds in perturbInto (regenerate z_k and form W + σ z_k). */
  regenMs: number;
  /** Milliseconds in session.loss (gather into the engine layout + onnxruntime run, incl. the binding's overhead). */
  forwardMs: number;
  /** Of forwardMs: the gather of the flat weights into the engine layout (optimised graph), and run(). */
  gatherMs: number;
  runMs: number;
  /** The engine's graph ('optimized' or 'plain'). */
  graph: string;
  /** This thread's on-CPU and run-queue milliseconds over the task. */
  cpuMs: number;
  waitMs: number;
  /** Sum of the losses (keeps the work observable). */
  lossSum: number;
  /** The losses themselves (what a client reduces to its K scalars). */
  losses: Float32Array;
}

const data = workerData as ClientWorkerData & { workerIndex: number };
const model = buildModel(data.config);
const weights = model.initWeights(1);
const scratch = new Float32Array(weights.length);
const plan = data.perturbation === 'lowrank' ? lowRankPlan(model.layout.params, data.rank ?? 1) : null;
const smallBatch = syntheticBatch(data.config.inputShape, data.batch, data.config.classes);
const ready = OrtSession.create(zooArtifact(model, { weights, trainable: ['all'] }), { timing: true }).then((s) => {
  s.setBatch(smallBatch);
  return s;
});

serveTasks<ClientRunTask>(async (task) => {
  const session = await ready;
  if (task.batchedExamples) {
    session.setBatch(syntheticBatch(data.config.inputShape, task.batchedExamples, data.config.classes));
    await session.loss(weights); // warm-up at this batch size
    const passes = task.batchedPasses ?? 3;
    const c0 = threadClock();
    const t0 = performance.now();
    let lossSum = 0;
    for (let i = 0; i < passes; i++) lossSum += await session.loss(weights);
    const forwardMs = performance.now() - t0;
    const c = clockDiff(c0, threadClock());
    session.setBatch(smallBatch);
    const none = new Float32Array(0);
    const result: ClientRunResult = { passes, regenMs: 0, forwardMs, gatherMs: 0, runMs: 0, graph: session.graph, cpuMs: c.cpuNs / 1e6, waitMs: c.waitNs / 1e6, lossSum, losses: none };
    return { result };
  }
  let regenMs = 0;
  let forwardMs = 0;
  let lossSum = 0;
  const losses = new Float32Array(task.kEnd - task.kStart);
  const g0 = session.timing.gatherMs;
  const r0 = session.timing.runMs;
  const c0 = threadClock();
  for (let k = task.kStart; k < task.kEnd; k++) {
    const t0 = performance.now();
    if (plan) perturbLowRank(scratch, weights, data.sigma, plan, task.seed, k);
    else perturbInto(scratch, weights, data.sigma, task.seed, k);
    const t1 = performance.now();
    const l = await session.loss(scratch);
    losses[k - task.kStart] = l;
    lossSum += l;
    forwardMs += performance.now() - t1;
    regenMs += t1 - t0;
  }
  const c = clockDiff(c0, threadClock());
  const result: ClientRunResult = {
    passes: task.kEnd - task.kStart,
    regenMs,
    forwardMs,
    gatherMs: session.timing.gatherMs - g0,
    runMs: session.timing.runMs - r0,
    graph: session.graph,
    cpuMs: c.cpuNs / 1e6,
    waitMs: c.waitNs / 1e6,
    lossSum,
    losses,
  };
  return { result, transfer: [losses.buffer as ArrayBuffer] };
});
