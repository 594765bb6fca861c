// The difference schemes of the BAFFLE estimator: how the K scalars come from forward losses.

export type Scheme = 'forward' | 'central';

/** Forward passes one client spends on one minibatch: K+1 (forward) or 2K (central). */
export function forwardPassesPerEstimate(K: number, scheme: Scheme): number {
  return scheme === 'forward' ? K + 1 : 2 * K;
}

/**
 * a_k from losses: forward  a_k = (L(W+σz_k) − L(W)) / σ
 *                  central  a_k = (L(W+σz_k) − L(W−σz_k)) / (2σ)
 * Differences are taken in float64 of the float32 losses, as they come from the engine.
 */
export function scalarsFromLosses(
  plus: Float32Array,
  reference: { base: number } | { minus: Float32Array },
  sigma: number,
): Float32Array {
  const a = new Float32Array(plus.length);
  if ('base' in reference) {
    for (let k = 0; k < plus.length; k++) a[k] = (plus[k] - reference.base) / sigma;
  } else {
    for (let k = 0; k < plus.length; k++) a[k] = (plus[k] - reference.minus[k]) / (2 * sigma);
  }
  return a;
}
