// What a secure round's task tells each client, derived from the configuration the same way in the simulation
// and in the networked server.
import { secAggThresholdOf, type RunConfig } from '../config/index.ts';
import { dpNoiseSeed } from '../privacy/noise.ts';
import { mixSeed } from '../rng/directions.ts';
import type { SecAggTaskSpec } from './messages.ts';
import { fixedPointScale } from './quantize.ts';

/** How a secure round adds differential privacy: the resolved noise multiplier, and whose noise seeds. */
export interface SecAggDpOptions {
  /** σ (config.noiseMultiplier, or the one targetEpsilon chose: setup.ts privacyOf). */
  noiseMultiplier: number;
  /** true: the noise seeds are the run's (the simulation, reproducible); false: each client's secret (network). */
  seeded: boolean;
}

/**
 * The quantization range of a DP secure round: max(secAggRange, C + 10·σC/√m). A clipped coordinate is at most C
 * and a noise share has std σC/√m, so a share leaves [−range, range] with probability below 1e-22 per coordinate
 * (ten standard deviations), and clipping the noise there does not bias the sum in practice.
 */
export function dpSecAggRange(secAggRange: number, clip: number, noiseMultiplier: number, participants: number): number {
  return Math.max(secAggRange, clip + (10 * noiseMultiplier * clip) / Math.sqrt(participants));
}

/**
 * The secure-aggregation settings of client `clientId`'s task in round `step` with `participants` participants;
 * with `dp` and `config.dpClip` set (dpNoise = 'distributed'), the round's differential privacy too.
 */
export function secAggSpec(
  config: Pick<RunConfig, 'secAggThreshold' | 'participation' | 'clients' | 'secAggRange' | 'seed' | 'K' | 'dpClip'>,
  step: number,
  clientId: number,
  participants: number,
  dp: SecAggDpOptions | null = null,
): SecAggTaskSpec {
  const clip = dp ? config.dpClip : null;
  const range = clip !== null && dp ? dpSecAggRange(config.secAggRange, clip, dp.noiseMultiplier, participants) : config.secAggRange;
  return {
    threshold: Math.min(secAggThresholdOf(config), participants),
    range,
    scale: fixedPointScale(participants, range),
    roundingSeed: mixSeed(config.seed, 0x7361_726e /* "sarn" */, step, clientId),
    dim: config.K + 2,
    ...(clip !== null && dp
      ? { dp: { clip, noiseMultiplier: dp.noiseMultiplier, participants, noiseSeed: dp.seeded ? dpNoiseSeed(config.seed, step, clientId) : null } }
      : {}),
  };
}
