export { BLOCK, accumulateDirection, fillDirection, mixSeed, perturbInto } from './directions.ts';
export { UniformRng, type UniformRngState } from './uniform.ts';
export { dexp, dlog } from './detmath.ts';
export { fmix32, murmur3Words, seedState } from './hash.ts';
