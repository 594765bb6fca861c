// A FedAvg client: several local zeroth-order steps on successive minibatches with a local optimizer,
// then the model delta goes up. The client rebuilds its own ĝ from its own seeds (it holds them).
import type { Batch, ForwardSession } from '../engine/types.ts';
import { estimate } from '../zo/task.ts';
import { accumulateSets } from '../zo/server.ts';
import { clipMaxAbs } from './clip.ts';
import { makeOptimizer } from './optimizer.ts';
import type { LocalTrainPlan } from './transport.ts';

/** What a FedAvg client sends back. */
export interface LocalTrainResult {
  delta: Float32Array;
  meanLoss: number;
  forwardPasses: number;
}

export async function localTrain(
  session: ForwardSession,
  start: Float32Array,
  task: LocalTrainPlan & { batches: Int32Array[] },
  gather: (indices: Int32Array) => Batch,
): Promise<LocalTrainResult> {
  const n = start.length;
  const local = start.slice();
  const scratch = new Float32Array(n);
  const grad64 = new Float64Array(n);
  const grad = new Float32Array(n);
  const optimizer = makeOptimizer({ optimizer: task.optimizer }, n);
  let lossSum = 0;
  let forwardPasses = 0;
  for (let step = 0; step < task.batches.length; step++) {
    session.setBatch(gather(task.batches[step]));
    const est = await estimate(session, local, scratch, {
      seed: task.seeds[step],
      K: task.K,
      sigma: task.sigma,
      scheme: task.scheme,
      lowrank: task.lowrank ?? null,
    });
    lossSum += est.loss;
    forwardPasses += est.forwardPasses;
    const coefs = new Float32Array(task.K);
    for (let k = 0; k < task.K; k++) coefs[k] = est.scalars[k] / task.K;
    grad64.fill(0);
    accumulateSets(grad64, [{ seed: task.seeds[step], coefs }], 0, n, task.lowrank ?? null);
    for (let i = 0; i < n; i++) grad[i] = grad64[i];
    if (task.clip > 0) clipMaxAbs(grad, task.clip);
    optimizer.step(local, grad, task.lr);
  }
  const delta = new Float32Array(n);
  for (let i = 0; i < n; i++) delta[i] = local[i] - start[i];
  return { delta, meanLoss: lossSum / task.batches.length, forwardPasses };
}
