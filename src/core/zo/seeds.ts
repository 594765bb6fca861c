// Which seed a client's directions come from. The server assigns them, so it can always regenerate z.
import { mixSeed } from '../rng/directions.ts';

export type SeedPolicy = 'shared' | 'per-client';

/** Stands in for the client id when all clients of a round share one seed. */
const SHARED = 0xffffffff;

/**
 * Seed of the directions client `clientId` uses at server step `step` (local step `localStep` under FedAvg).
 * shared: every client of a step gets the same seed; per-client: each its own.
 */
export function directionSeed(
  runSeed: number,
  policy: SeedPolicy,
  step: number,
  clientId: number,
  localStep = 0,
): number {
  return mixSeed(runSeed, step, policy === 'shared' ? SHARED : clientId, localStep);
}
