// Direction screening against a robust reference, in the spirit of FLTrust (Cao et al. 2021), whose reference
// is a gradient the server computes on its own root data; here the reference is the round's coordinate-wise
// median, so the server needs no data. A client whose vector points away from the reference (cosine ≤ 0), or
// whose norm exceeds `factor` × the median norm, is left out; the rest are averaged, example-weighted, as the
// mean does. Why a whole-vector test: with batches of 32 each of a client's K scalars is mostly minibatch noise,
// so a flipped scalar looks like an honest one coordinate by coordinate, but the K of them together still
// correlate with the common direction (docs/robustness.md measures both, and a second pass that did not help).
import { MedianAggregator } from './median.ts';
import { dimensionOf, divided, medianOf, weightedMean, type Aggregate, type Aggregator, type ClientVector } from './types.ts';

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export class CosineScreenAggregator implements Aggregator {
  readonly name = 'cosine-screen';
  constructor(readonly factor: number) {
    if (!(factor >= 1)) throw new Error(`cosine-screen: the factor must be ≥ 1, got ${factor}`);
  }
  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    dimensionOf(vectors);
    const reference = new MedianAggregator().aggregate(vectors).values;
    const refNorm = Math.sqrt(dot(reference, reference));
    const scored = vectors.map((v) => {
      const norm = Math.sqrt(dot(v.values, v.values));
      return { v, norm, cosine: norm > 0 && refNorm > 0 ? dot(v.values, reference) / (norm * refNorm) : 0 };
    });
    const bound = this.factor * medianOf(scored.map((s) => s.norm));
    const reasonOf = (s: (typeof scored)[number]): string | null =>
      s.cosine <= 0
        ? `cosine-screen: cos(a, median) = ${s.cosine.toPrecision(3)} ≤ 0`
        : s.norm > bound
          ? `cosine-screen: ‖a‖ = ${s.norm.toPrecision(3)} > ${this.factor} × median ${(bound / this.factor).toPrecision(3)}`
          : null;
    const kept = scored.filter((s) => reasonOf(s) === null);
    // A round where no vector agrees with the reference (all zero, or a degenerate median) falls back to it.
    if (kept.length === 0) return { values: divided(new Float64Array(reference), divisor), used: vectors.map((v) => v.clientId), excluded: [] };
    return {
      values: weightedMean(kept.map((s) => s.v), divisor),
      used: kept.map((s) => s.v.clientId),
      excluded: scored.flatMap((s) => {
        const reason = reasonOf(s);
        return reason === null ? [] : [{ clientId: s.v.clientId, reason }];
      }),
    };
  }
}
