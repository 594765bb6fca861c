// A simulation worker: one single-threaded engine session, playing whichever client the next task names.
import { workerData } from 'node:worker_threads';
import { buildModel } from '../model/index.ts';
import { OrtSession } from '../engine/ort.ts';
import { serveTasks } from '../engine/serve.ts';
import { crossEntropy } from '../engine/metrics.ts';
import type { Batch } from '../engine/types.ts';
import { perturbedLosses } from '../zo/client.ts';
import { accumulateSets } from '../zo/server.ts';
import { localTrain } from './localTrain.ts';
import type { EvaluateResult, LossesResult, SharedState, SimTask } from './simTasks.ts';

const shared = workerData as SharedState & { workerIndex: number };
const model = buildModel(shared.model);
const [c, h, w] = shared.model.inputShape;
const imageSize = c * h * w;
const trainX = new Float32Array(shared.trainX);
const trainY = new Uint8Array(shared.trainY);
const testX = new Float32Array(shared.testX);
const testY = new Uint8Array(shared.testY);
const weights = new Float32Array(shared.weights);
const evalWeights = new Float32Array(shared.evalWeights);
const grad = new Float64Array(shared.grad);
const scratch = new Float32Array(weights.length);
// The engine cannot read shared memory directly: tasks copy what they need into these private buffers.
const current = new Float32Array(weights.length);
const evalBuffer = new Float32Array(weights.length);
const sessionReady = OrtSession.create(model);

/** Copies the examples at `indices` into a batch (reusing the buffers when the size allows). */
let batchX = new Float32Array(0);
let batchY = new Uint8Array(0);
function gather(indices: Int32Array): Batch {
  const n = indices.length;
  if (batchY.length !== n) {
    batchX = new Float32Array(n * imageSize);
    batchY = new Uint8Array(n);
  }
  for (let i = 0; i < n; i++) {
    const j = indices[i];
    batchX.set(trainX.subarray(j * imageSize, (j + 1) * imageSize), i * imageSize);
    batchY[i] = trainY[j];
  }
  return { x: batchX, y: batchY, count: n };
}

const EVAL_BATCH = 250;

serveTasks<SimTask>(async (task) => {
  const session = await sessionReady;
  switch (task.kind) {
    case 'losses': {
      session.setBatch(gather(task.indices));
      current.set(weights);
      const plus = await perturbedLosses(session, current, scratch, task.seed, task.sigma, 1, task.kStart, task.kEnd);
      const minus = task.minus
        ? await perturbedLosses(session, current, scratch, task.seed, task.sigma, -1, task.kStart, task.kEnd)
        : null;
      const base = task.base ? await session.loss(current) : null;
      const result: LossesResult = { plus, minus, base };
      return { result, transfer: minus ? [plus.buffer as ArrayBuffer, minus.buffer as ArrayBuffer] : [plus.buffer as ArrayBuffer] };
    }
    case 'reconstruct': {
      grad.fill(0, task.start, task.end);
      accumulateSets(grad, task.sets, task.start, task.end);
      return { result: null };
    }
    case 'evaluate': {
      const total: EvaluateResult = { lossSum: 0, correct: 0, count: 0 };
      evalBuffer.set(evalWeights);
      for (let s = task.start; s < task.end; s += EVAL_BATCH) {
        const e = Math.min(task.end, s + EVAL_BATCH);
        const batch = { x: testX.slice(s * imageSize, e * imageSize), y: testY.slice(s, e), count: e - s };
        session.setBatch(batch);
        const part = crossEntropy(await session.logits(evalBuffer), batch.y, batch.count, model.config.classes);
        total.lossSum += part.lossSum;
        total.correct += part.correct;
        total.count += part.count;
      }
      return { result: total };
    }
    case 'local-train': {
      current.set(weights);
      const result = await localTrain(session, current, task, gather);
      return { result, transfer: [result.delta.buffer as ArrayBuffer] };
    }
  }
});
