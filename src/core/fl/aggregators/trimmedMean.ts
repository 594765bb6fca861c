// Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the ⌊β·m⌋ largest and the ⌊β·m⌋
// smallest values and average the rest (unweighted). Tolerates up to ⌊β·m⌋ Byzantine clients; β < 1/2.
import { all, dimensionOf, divided, type Aggregate, type Aggregator, type ClientVector } from './types.ts';

export class TrimmedMeanAggregator implements Aggregator {
  readonly name = 'trimmed-mean';
  constructor(readonly beta: number) {
    if (!(beta >= 0 && beta < 0.5)) throw new Error(`trimmed-mean: β must be in [0, 0.5), got ${beta}`);
  }
  /** Values trimmed from each end for m clients. */
  static trimmed(beta: number, m: number): number {
    return Math.floor(beta * m);
  }
  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    const d = dimensionOf(vectors);
    const m = vectors.length;
    const t = TrimmedMeanAggregator.trimmed(this.beta, m); // β < 1/2, so 2t < m
    const column = new Float64Array(m);
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      for (let c = 0; c < m; c++) column[c] = vectors[c]!.values[i]!;
      column.sort();
      let s = 0;
      for (let c = t; c < m - t; c++) s += column[c]!;
      out[i] = s / (m - 2 * t);
    }
    return { values: divided(out, divisor), used: all(vectors), excluded: [] };
  }
}
