export {
  BLOCK,
  accumulateDirection,
  type DirectionBackend,
  directionBackend,
  fillDirection,
  mixSeed,
  perturbInto,
  setDirectionBackend,
} from './directions.ts';
export { UniformRng, type UniformRngState } from './uniform.ts';
export { dexp, dlog } from './detmath.ts';
export { fmix32, murmur3Words, seedState } from './hash.ts';
