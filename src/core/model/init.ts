// Weight initialisation: fills the flat vector parameter by parameter, in layout order, from one seeded
// uniform stream (UniformRng(seed) by default). uniform(bound) draws w = (2u − 1)·bound, u ∈ [0, 1);
// zeros/ones draw nothing. Parameters use the PyTorch-style InitSpec chosen in zoo.ts.

import { UniformRng } from '../rng/uniform.ts';
import type { ParamLayout } from './types.ts';

/** The only thing init needs from a random source. */
export interface UniformSource {
  /** Uniform in [0, 1). */
  nextFloat(): number;
}
export type UniformFactory = (seed: number) => UniformSource;

/** The project's seeded uniform generator (src/core/rng/uniform.ts, xoshiro128**, 53-bit nextFloat); seed is a uint32. */
export const defaultUniform: UniformFactory = (seed) => new UniformRng(seed);

/** Fresh weights for `layout` from `seed`: deterministic for a given (layout, seed, factory). */
export function initWeights(layout: ParamLayout, seed: number, uniform: UniformFactory = defaultUniform): Float32Array {
  const w = new Float32Array(layout.size);
  const rng = uniform(seed);
  for (const p of layout.params) {
    const { init } = p;
    const view = w.subarray(p.offset, p.offset + p.size);
    switch (init.kind) {
      case 'zeros':
        break; // already zero
      case 'ones':
        view.fill(1);
        break;
      case 'uniform': {
        const { bound } = init;
        for (let i = 0; i < view.length; i++) view[i] = (2 * rng.nextFloat() - 1) * bound;
        break;
      }
      default:
        throw new Error(`parameter "${p.name}": unknown init ${JSON.stringify(init)}`);
    }
  }
  return w;
}
