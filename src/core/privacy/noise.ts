// The client side of differential privacy, one definition for the plain aggregation (src/core/fl/aggregation.ts)
// and the secure one (src/core/secagg/quantize.ts secAggVector): a client's K-vector clipped to L2 norm C, and,
// under distributed noise, its share N(0, (σC)²/m) of the Gaussian noise on the sum of m clients.
// Platform-free.
import { mixSeed } from '../rng/directions.ts';
import { UniformRng } from '../rng/uniform.ts';

/** Domain tag of the DP noise streams ("dpn!"). */
export const DP_NOISE_DOMAIN = 0x6470_6e21;

/** Scales `v` to L2 norm at most `c` in place; returns the scale (1 = untouched). */
export function clipL2(v: Float32Array, c: number): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const norm = Math.sqrt(s);
  if (norm <= c) return 1;
  const scale = c / norm;
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * scale;
  return scale;
}

/** The std of one of m clients' noise shares: σC/√m (the m shares add up to N(0, (σC)²)). */
export function shareStd(noiseMultiplier: number, clip: number, participants: number): number {
  return (noiseMultiplier * clip) / Math.sqrt(participants);
}

/** The seed of client `clientId`'s noise share in round `step` of a run seeded `runSeed` (reproducible runs). */
export function dpNoiseSeed(runSeed: number, step: number, clientId: number): number {
  return mixSeed(runSeed, DP_NOISE_DOMAIN, step, clientId);
}

/** N(0, 1) draws from the seeded stream UniformRng(seed).normal() (the same numbers on every engine). */
export function seededNormals(seed: number): () => number {
  const rng = new UniformRng(seed);
  return () => rng.normal();
}

/**
 * A client's distributed-DP share: `values` (float32) clipped to L2 ≤ `clip` by clipL2, then, in float64,
 * `std`·normal() added to each coordinate in order (none when std = 0).
 */
export function noisedShare(values: Float32Array, clip: number, std: number, normal: () => number): { values: Float64Array; clipped: boolean } {
  const v = values.slice();
  const clipped = clipL2(v, clip) < 1;
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]!;
  if (std > 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! + std * normal();
  return { values: out, clipped };
}
