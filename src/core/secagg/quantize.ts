// Fixed point in Z_2^32 for secure aggregation. A client clips every coordinate of its vector to [−R, R],
// multiplies by the scale S and rounds stochastically: q = floor(v·S + u), u uniform in [0, 1) from a seeded
// ChaCha20 stream (so runs are reproducible), and sends q mod 2^32. The server adds the words mod 2^32 and reads
// the sum as a signed 32-bit integer: with S the largest power of two such that m·(R·S + 1) ≤ 2^31 − 1 for at
// most m summands, the true integer sum never wraps, and
//   |Σ_c q_c / S − Σ_c clip(v_c)| < m / S   for every coordinate (each client's rounding error is in (−1/S, 1/S)),
// and E[q/S] = clip(v) (stochastic rounding is unbiased).
import { keystreamWords } from './chacha20.ts';

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
 */
export function secAggVector(scalars: Float32Array, examples: number, batchSize: number, loss: number): Float64Array {
  const K = scalars.length;
  const w = Math.min(1, examples / batchSize);
  const v = new Float64Array(K + 2);
  for (let k = 0; k < K; k++) v[k] = w * scalars[k]!;
  v[K] = w;
  v[K + 1] = loss;
  return v;
}
