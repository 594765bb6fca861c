// Quantities every part derives from the configuration the same way.
import type { RunConfig } from './keys.ts';

/** Participants per round: the sampled fraction of the clients, at least one. */
export function participantsOf(config: Pick<RunConfig, 'participation' | 'clients'>): number {
  return Math.max(1, Math.round(config.participation * config.clients));
}

/** Byzantine clients Krum assumes: the `byzantine` key, or the simulated attackers among the participants. */
export function assumedByzantine(config: Pick<RunConfig, 'byzantine' | 'attackFraction' | 'participation' | 'clients'>): number {
  return config.byzantine ?? Math.round(config.attackFraction * participantsOf(config));
}

/** Secure aggregation's Shamir threshold: the key, or a majority of the participants (at least 2). */
export function secAggThresholdOf(config: Pick<RunConfig, 'secAggThreshold' | 'participation' | 'clients'>): number {
  return config.secAggThreshold ?? Math.max(2, Math.floor(participantsOf(config) / 2) + 1);
}
