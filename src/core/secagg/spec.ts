// What a secure round's task tells each client, derived from the configuration the same way in the simulation
// and in the networked server.
import { secAggThresholdOf, type RunConfig } from '../config/index.ts';
import { mixSeed } from '../rng/directions.ts';
import type { SecAggTaskSpec } from './messages.ts';
import { fixedPointScale } from './quantize.ts';

/** The secure-aggregation settings of client `clientId`'s task in round `step` with `participants` participants. */
export function secAggSpec(
  config: Pick<RunConfig, 'secAggThreshold' | 'participation' | 'clients' | 'secAggRange' | 'seed' | 'K'>,
  step: number,
  clientId: number,
  participants: number,
): SecAggTaskSpec {
  return {
    threshold: Math.min(secAggThresholdOf(config), participants),
    range: config.secAggRange,
    scale: fixedPointScale(participants, config.secAggRange),
    roundingSeed: mixSeed(config.seed, 0x7361_726e /* "sarn" */, step, clientId),
    dim: config.K + 2,
  };
}
