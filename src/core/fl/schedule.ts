// Learning-rate schedule of the BAFFLE reference recipe: a constant warm-up rate for the first
// `warmupSteps` server steps, then the constant base rate.
//
// The official code warms up for one epoch at lr 0.02 on CIFAR-10/Fashion-MNIST (none on MNIST). An
// "epoch" there is one pass over each client's shard, so the caller converts it to server steps as
// warmupSteps = ceil(shardSize / batchSize) (FedSGD form: one server step per minibatch round).

export interface LrSchedule {
  /** Base learning rate, used from step `warmupSteps` on. */
  lr: number;
  /** Number of initial steps run at `warmupLr`. Default 0 (no warm-up). */
  warmupSteps?: number;
  /** Learning rate during warm-up. Default (undefined or null) `lr`. */
  warmupLr?: number | null;
}

/**
 * Learning rate of server step `step` (0-based): `warmupLr` for step < warmupSteps, else `lr`.
 */
export function lrAt(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`lrAt: step must be a non-negative integer, got ${step}`);
  const warmupSteps = s.warmupSteps ?? 0;
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`lrAt: warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
  return step < warmupSteps ? (s.warmupLr ?? s.lr) : s.lr;
}
