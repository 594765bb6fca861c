// A backprop-baseline worker: one tfjs model (wasm or cpu backend), answering gradient and local-training
// tasks for any client. Weights arrive in shared memory, in the project's flat layout.
import { workerData } from 'node:worker_threads';
import { serveTasks } from '../engine/serve.ts';
import { makeOptimizer } from '../../core/fl/optimizer.ts';
import type { BpGradResult, BpLocalTrainResult, BpSharedState, BpTask } from './bpTasks.ts';
import { TfjsModel } from './model.ts';

const shared = workerData as BpSharedState & { workerIndex: number };
const [c, h, w] = shared.model.inputShape;
const imageSize = c * h * w;
const trainX = new Float32Array(shared.trainX);
const trainY = new Uint8Array(shared.trainY);
const weights = new Float32Array(shared.weights);
const modelReady = TfjsModel.create(shared.model, shared.backend);

function setBatch(model: TfjsModel, indices: Int32Array): void {
  const n = indices.length;
  const x = new Float32Array(n * imageSize);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    x.set(trainX.subarray(j * imageSize, (j + 1) * imageSize), i * imageSize);
    y[i] = trainY[j]!;
  }
  model.setBatch(x, y, n);
}

serveTasks<BpTask>(async (task) => {
  const model = await modelReady;
  switch (task.kind) {
    case 'grad': {
      model.setWeights(weights.slice());
      setBatch(model, task.indices);
      const { loss, grad } = model.lossAndGradient();
      const result: BpGradResult = { grad, loss };
      return { result, transfer: [grad.buffer as ArrayBuffer] };
    }
    case 'local-train': {
      const start = weights.slice();
      const local = start.slice();
      const grad = new Float32Array(local.length);
      const optimizer = makeOptimizer({ optimizer: task.optimizer }, local.length);
      let lossSum = 0;
      for (const indices of task.batches) {
        model.setWeights(local);
        setBatch(model, indices);
        lossSum += model.lossAndGradient(grad).loss;
        optimizer.step(local, grad, task.lr);
      }
      const delta = new Float32Array(local.length);
      for (let i = 0; i < delta.length; i++) delta[i] = local[i]! - start[i]!;
      const result: BpLocalTrainResult = { delta, meanLoss: lossSum / task.batches.length, forwardPasses: task.batches.length };
      return { result, transfer: [delta.buffer as ArrayBuffer] };
    }
  }
});
