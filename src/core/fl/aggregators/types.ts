// An aggregator turns the round's client vectors — K scalars under BAFFLE, a gradient or model delta under the
// backprop baseline — into one vector, or says which clients it left out. One rule per file; a new rule is a
// file and its test. Flower's strategies and DISCO's aggregator/ folder are the models.

/** One client's vector and its aggregation weight (examples behind it). */
export interface ClientVector {
  clientId: number;
  values: Float32Array;
  examples: number;
}

export interface Aggregate {
  /** The aggregate vector (same length as the inputs). */
  values: Float64Array;
  /** Clients whose vectors the aggregate used (all, unless the rule selects or screens). */
  used: number[];
  /** Clients the rule left out, with the reason (for the round log). */
  excluded: { clientId: number; reason: string }[];
}

export interface Aggregator {
  readonly name: string;
  /** The aggregate of the vectors, divided by `divisor` (BAFFLE's 1/K, folded in where the rule allows). */
  aggregate(vectors: readonly ClientVector[], divisor?: number): Aggregate;
}

/**
 * The example-weighted mean of `vectors` divided by `divisor`: Σ_c (n_c / Σn / divisor) v_c in float64 — the
 * arithmetic of the FedSGD aggregation before the rules became pluggable, so a mean run keeps its bits.
 */
export function weightedMean(vectors: readonly ClientVector[], divisor = 1): Float64Array {
  const d = vectors[0]?.values.length ?? 0;
  const out = new Float64Array(d);
  const total = vectors.reduce((s, v) => s + v.examples, 0);
  for (const v of vectors) {
    const w = v.examples / total / divisor;
    for (let i = 0; i < d; i++) out[i] += w * v.values[i]!;
  }
  return out;
}

/** `values` divided by `divisor`, in place. */
export function divided(values: Float64Array, divisor: number): Float64Array {
  if (divisor !== 1) for (let i = 0; i < values.length; i++) values[i] = values[i]! / divisor;
  return values;
}

/** All vectors must have one length; throws otherwise. */
export function dimensionOf(vectors: readonly ClientVector[]): number {
  if (vectors.length === 0) throw new Error('aggregate: no vectors');
  const d = vectors[0]!.values.length;
  for (const v of vectors) if (v.values.length !== d) throw new Error(`aggregate: client ${v.clientId} sent ${v.values.length} values, expected ${d}`);
  return d;
}

export const all = (vectors: readonly ClientVector[]): Aggregate['used'] => vectors.map((v) => v.clientId);

/** The median of `xs` (the mean of the two middle values for an even count). */
export function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length;
  return m % 2 === 1 ? s[(m - 1) / 2]! : (s[m / 2 - 1]! + s[m / 2]!) / 2;
}
