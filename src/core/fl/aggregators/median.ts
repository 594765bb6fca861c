// Coordinate-wise median (Yin et al. 2018): each coordinate the median of the clients' values (unweighted; the
// mean of the two middle values for an even count). Tolerates fewer than half Byzantine clients per coordinate.
import { all, dimensionOf, divided, type Aggregate, type Aggregator, type ClientVector } from './types.ts';

export class MedianAggregator implements Aggregator {
  readonly name = 'median';
  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    const d = dimensionOf(vectors);
    const m = vectors.length;
    const column = new Float64Array(m);
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      for (let c = 0; c < m; c++) column[c] = vectors[c]!.values[i]!;
      column.sort();
      out[i] = m % 2 === 1 ? column[(m - 1) / 2]! : (column[m / 2 - 1]! + column[m / 2]!) / 2;
    }
    return { values: divided(out, divisor), used: all(vectors), excluded: [] };
  }
}
