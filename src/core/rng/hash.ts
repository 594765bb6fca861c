/**
 * Integer hashing for seeds (pure 32-bit integer arithmetic: Math.imul, xor, shifts; identical everywhere).
 *
 * - `mixSeed(...parts)` = MurmurHash3_x86_32 (Austin Appleby, seed 0) of the parts taken as little-endian
 *   uint32 words, i.e. of the 4·n-byte string p0[0..3] p1[0..3] ...; so it can be reproduced with any
 *   MurmurHash3 implementation. The part count is hashed too, so mixSeed(0) != mixSeed(0, 0).
 * - `seedState(a, b, c, d)` maps 128 input bits bijectively to a 128-bit xoshiro128** state (see below).
 */

/** A uint32 check shared by the rng modules: an integer 0 <= x <= 2^32 - 1, else RangeError. */
export function checkU32(x: number, name: string): void {
  if (!(Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
    throw new RangeError(`${name} must be an integer in [0, 2^32 - 1], got ${String(x)}`);
  }
}

/** MurmurHash3 32-bit finalizer (fmix32), a bijection of uint32 with full avalanche. Returns a uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3_x86_32 of a sequence of uint32 words (little-endian bytes), with a uint32 seed. */
export function murmur3Words(words: ArrayLike<number>, seed = 0): number {
  let h = seed | 0;
  for (let i = 0; i < words.length; i++) {
    let k1 = Math.imul(words[i]! | 0, 0xcc9e2d51);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, 0x1b873593);
    h ^= k1;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= (words.length * 4) | 0;
  return fmix32(h);
}

/**
 * Derive a uint32 seed from uint32 parts, e.g. `mixSeed(runSeed, round, clientId)`.
 * Definition: MurmurHash3_x86_32(seed = 0) of the parts as little-endian uint32 words.
 * Every part must be an integer in [0, 2^32 - 1] (RangeError otherwise).
 */
export function mixSeed(...parts: number[]): number {
  for (let i = 0; i < parts.length; i++) checkU32(parts[i]!, `mixSeed part ${i}`);
  return murmur3Words(parts, 0);
}

/** Domain word of the direction generator: state = seedState(seed, k, block, DIRECTION_DOMAIN). */
export const DIRECTION_DOMAIN = 0xbaff1e01;
/** Domain word of the directions' secondary (slow-path) stream: seedState(seed, k, block, SLOW_DOMAIN). */
export const SLOW_DOMAIN = 0xbaff1e03;
/** Domain word of UniformRng: state = seedState(seed, 0, 0, UNIFORM_DOMAIN). */
export const UNIFORM_DOMAIN = 0xbaff1e02;

/**
 * xoshiro128** state from four uint32 words (a, b, c, d), written as int32 into out[0..3] = (s0, s1, s2, s3).
 *
 * Two rounds of x0 = F(x0 + x3 + c0), x1 = F(x1 + x0 + c1), x2 = F(x2 + x1 + c2), x3 = F(x3 + x2 + c3)
 * (sums mod 2^32, F = fmix32, round constants c_j = (j + 1) * 0x9E3779B9 mod 2^32, j = 0..7 over both rounds).
 * Each step is invertible, so distinct inputs give distinct states (no collisions between blocks, directions
 * or seeds), and after two rounds every output word depends on every input bit.
 * The all-zero state (reached by exactly one of the 2^128 inputs) is replaced by (1, 0, 0, 0).
 */
export function seedState(a: number, b: number, c: number, d: number, out: Int32Array): void {
  let x0 = a | 0;
  let x1 = b | 0;
  let x2 = c | 0;
  let x3 = d | 0;
  x0 = fmix32((x0 + x3 + 0x9e3779b9) | 0);
  x1 = fmix32((x1 + x0 + 0x3c6ef372) | 0);
  x2 = fmix32((x2 + x1 + 0xdaa66d2b) | 0);
  x3 = fmix32((x3 + x2 + 0x78dde6e4) | 0);
  x0 = fmix32((x0 + x3 + 0x1715609d) | 0);
  x1 = fmix32((x1 + x0 + 0xb54cda56) | 0);
  x2 = fmix32((x2 + x1 + 0x5384540f) | 0);
  x3 = fmix32((x3 + x2 + 0xf1bbcdc8) | 0);
  if ((x0 | x1 | x2 | x3) === 0) x0 = 1;
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}
