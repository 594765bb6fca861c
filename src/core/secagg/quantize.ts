// Fixed point in Z_2^32 for secure aggregation. A client clips every coordinate of its vector to [−R, R],
// multiplies by the scale S and rounds stochastically: q = floor(v·S + u), u uniform in [0, 1) from a seeded
// ChaCha20 stream (so runs are reproducible), and sends q mod 2^32. The server adds the words mod 2^32 and reads
// the sum as a signed 32-bit integer: with S the largest power of two such that m·(R·S + 1) ≤ 2^31 − 1 for at
// most m summands, the true integer sum never wraps, and
//   |Σ_c q_c / S − Σ_c clip(v_c)| < m / S   for every coordinate (each client's rounding error is in (−1/S, 1/S)),
// and E[q/S] = clip(v) (stochastic rounding is unbiased).
import { noisedShare, seededNormals, shareStd } from '../privacy/noise.ts';
import { keystreamWords } from './chacha20.ts';
import type { SecAggTaskSpec } from './messages.ts';

const TWO_32 = 4294967296;
const TWO_31 = 2147483648;

/** The scale S = 2^e for at most `summands` vectors clipped to [−range, range]. */
export function fixedPointScale(summands: number, range: number): number {
  if (!Number.isInteger(summands) || summands < 1) throw new Error(`summands must be a positive integer, got ${summands}`);
  if (!(range > 0) || !Number.isFinite(range)) throw new Error(`range must be a positive number, got ${range}`);
  const e = Math.floor(Math.log2((TWO_31 - 1 - summands) / (summands * range)));
  let s = 2 ** e;
  // log2 of a float can be off by one ulp at a power of two: make the bound hold exactly.
  while (summands * (range * s + 1) > TWO_31 - 1) s /= 2;
  return s;
}

/** The bound on each coordinate's error of a sum of `summands` vectors: summands / S. */
export function quantizationBound(summands: number, scale: number): number {
  return summands / scale;
}

/** The rounding key for a seed: the seed as uint32 little-endian followed by 28 zero bytes. */
export function roundingKey(seed: number): Uint8Array {
  const key = new Uint8Array(32);
  new DataView(key.buffer).setUint32(0, seed >>> 0, true);
  return key;
}

/** Clipped, scaled and stochastically rounded: the words q_i mod 2^32 (u_i = word i of ChaCha20(roundingKey(seed)) / 2^32). */
export function quantize(values: ArrayLike<number>, range: number, scale: number, seed: number): Uint32Array {
  const u = keystreamWords(roundingKey(seed), values.length);
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) throw new Error(`value ${i} is NaN`);
    const c = v > range ? range : v < -range ? -range : v;
    out[i] = Math.floor(c * scale + u[i]! / TWO_32) >>> 0;
  }
  return out;
}

/** A sum of words mod 2^32 read as signed 32-bit integers divided by the scale. */
export function dequantize(words: Uint32Array, scale: number): Float64Array {
  const out = new Float64Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    out[i] = (w >= TWO_31 ? w - TWO_32 : w) / scale;
  }
  return out;
}

/**
 * The vector a client adds into the secure sum (length K + 2): its K scalars times its weight w = examples /
 * batchSize ∈ (0, 1], then w, then its loss reading. The server divides Σ w·a by Σ w (the example-weighted mean
 * the plain protocol computes) and Σ loss by the number of survivors; it never sees one client's weight or loss.
 *
 * Under differential privacy (`spec.dp`): the K scalars clipped to L2 ≤ C plus this client's noise share
 * N(0, (σC)²/m) per coordinate (privacy/noise.ts, the plain distributed path's own function), weight 1 (an example
 * count would break the sensitivity bound C), loss 0 (an un-noised loss would be a release the accountant does
 * not cover). The noise comes from the seeded stream `spec.dp.noiseSeed`, or, when that is null, from a
 * ChaCha20 stream under a fresh 32-byte key from `random` (which must then be given).
 */
export function secAggVector(
  scalars: Float32Array,
  examples: number,
  batchSize: number,
  loss: number,
  spec?: Pick<SecAggTaskSpec, 'dp'>,
  random?: (n: number) => Uint8Array,
): Float64Array {
  const K = scalars.length;
  const v = new Float64Array(K + 2);
  const dp = spec?.dp;
  if (dp) {
    let normal: () => number;
    if (dp.noiseSeed !== null) normal = seededNormals(dp.noiseSeed);
    else if (random) normal = secretNormals(random(32), K);
    else throw new Error('secAggVector: a secret noise stream needs a random source');
    const share = noisedShare(scalars, dp.clip, shareStd(dp.noiseMultiplier, dp.clip, dp.participants), normal);
    v.set(share.values);
    v[K] = 1;
    v[K + 1] = 0;
    return v;
  }
  const w = Math.min(1, examples / batchSize);
  for (let k = 0; k < K; k++) v[k] = w * scalars[k]!;
  v[K] = w;
  v[K + 1] = loss;
  return v;
}

/**
 * `count` N(0, 1) draws (then no more) from the ChaCha20 stream of a secret 32-byte key, by Box–Muller on
 * 53-bit uniforms (four words per pair of draws): the network's noise, which nobody but the client can replay.
 */
export function secretNormals(key: Uint8Array, count: number): () => number {
  const pairs = Math.ceil(count / 2);
  const w = keystreamWords(key, 4 * pairs, new Uint8Array(12).fill(0x64));
  const out = new Float64Array(2 * pairs);
  for (let p = 0; p < pairs; p++) {
    const u1 = 1 - ((w[4 * p]! >>> 5) * 67108864 + (w[4 * p + 1]! >>> 6)) / 9007199254740992; // (0, 1]
    const u2 = ((w[4 * p + 2]! >>> 5) * 67108864 + (w[4 * p + 3]! >>> 6)) / 9007199254740992;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[2 * p] = r * Math.cos(2 * Math.PI * u2);
    out[2 * p + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  let i = 0;
  return () => {
    if (i >= out.length) throw new Error('secretNormals: stream exhausted');
    return out[i++]!;
  };
}
