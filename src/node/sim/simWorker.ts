// A simulation worker: one single-threaded engine session, playing whichever client the next task names.
import { workerData } from 'node:worker_threads';
import { exampleSize } from '../../core/model/artifact.ts';
import { BatchGatherer } from '../../core/data/batch.ts';
import { OrtSession } from '../engine/ort.ts';
import { LowRankBatchSession } from '../engine/lowrankBatch.ts';
import { serveTasks } from '../engine/serve.ts';
import { crossEntropy } from '../../core/engine/metrics.ts';
import { runPasses, type PartialLosses } from '../../core/zo/task.ts';
import { accumulateSets } from '../../core/zo/server.ts';
import { localTrain } from '../../core/fl/localTrain.ts';
import type { EvaluateResult, SharedState, SimTask } from './simTasks.ts';

const shared = workerData as SharedState & { workerIndex: number };
const model = shared.model;
const size = exampleSize(model);
const train = new BatchGatherer({ x: new Float32Array(shared.trainX), y: new Uint8Array(shared.trainY) }, size);
const testX = new Float32Array(shared.testX);
const testY = new Uint8Array(shared.testY);
const weights = new Float32Array(shared.weights);
const evalWeights = new Float32Array(shared.evalWeights);
const grad = new Float64Array(shared.grad);
const scratch = new Float32Array(weights.length);
// The engine cannot read shared memory directly: tasks copy what they need into these private buffers.
const current = new Float32Array(weights.length);
const evalBuffer = new Float32Array(weights.length);
// Created on first use: a worker that only rebuilds ĝ (a server with remote clients between evaluations) needs none.
let sessionReady: Promise<OrtSession> | null = null;
const engine = () => (sessionReady ??= OrtSession.create(model));
// The member-batched step of low-rank runs on a zoo mlp (memberBatch): all of a share's members in one engine run.
let batchedReady: Promise<LowRankBatchSession> | null = null;
const batched = () => (batchedReady ??= LowRankBatchSession.create(shared.memberBatch!.shape, shared.memberBatch!.plan));

const EVAL_BATCH = 250;

serveTasks<SimTask>(async (task) => {
  switch (task.kind) {
    case 'losses': {
      current.set(weights);
      let result: PartialLosses;
      if (shared.memberBatch && task.task.lowrank) {
        const session = await batched();
        session.setBatch(train.gather(task.indices));
        result = await session.runPasses(current, task.task, task.range);
      } else {
        const session = await engine();
        session.setBatch(train.gather(task.indices));
        result = await runPasses(session, current, scratch, task.task, task.range);
      }
      const transfer = [result.plus.buffer as ArrayBuffer];
      if (result.minus) transfer.push(result.minus.buffer as ArrayBuffer);
      return { result, transfer };
    }
    case 'reconstruct': {
      grad.fill(0, task.start, task.end);
      accumulateSets(grad, task.sets, task.start, task.end, task.lowrank);
      return { result: null };
    }
    case 'evaluate': {
      const session = await engine();
      const total: EvaluateResult = { lossSum: 0, correct: 0, count: 0 };
      evalBuffer.set(evalWeights);
      for (let s = task.start; s < task.end; s += EVAL_BATCH) {
        const e = Math.min(task.end, s + EVAL_BATCH);
        const batch = { x: testX.slice(s * size, e * size), y: testY.slice(s, e), count: e - s };
        session.setBatch(batch);
        const part = crossEntropy(await session.logits(evalBuffer), batch.y, batch.count, model.classes);
        total.lossSum += part.lossSum;
        total.correct += part.correct;
        total.count += part.count;
      }
      return { result: total };
    }
    case 'local-train': {
      const session = await engine();
      current.set(weights);
      const result = await localTrain(session, current, task, (indices) => train.gather(indices));
      return { result, transfer: [result.delta.buffer as ArrayBuffer] };
    }
  }
});
