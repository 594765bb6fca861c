// Norm screening, for vectors that are not comparable coordinate by coordinate (per-client directions: client
// c's k-th scalar multiplies its own z_ck). A Byzantine client can still only act through the size of its
// vector, so clients whose L2 norm exceeds `factor` × the median norm are left out, and the rest averaged
// (example-weighted) as the mean does. It does not stop an attacker who stays within the bound.
import { dimensionOf, medianOf, weightedMean, type Aggregate, type Aggregator, type ClientVector } from './types.ts';

export class NormScreenAggregator implements Aggregator {
  readonly name = 'norm-screen';
  constructor(readonly factor: number) {
    if (!(factor >= 1)) throw new Error(`norm-screen: the factor must be ≥ 1, got ${factor}`);
  }
  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    dimensionOf(vectors);
    const norms = vectors.map((v) => Math.sqrt(v.values.reduce((s, x) => s + x * x, 0)));
    const median = medianOf(norms);
    const bound = this.factor * median;
    const kept = vectors.filter((_, i) => norms[i]! <= bound);
    return {
      values: weightedMean(kept, divisor),
      used: kept.map((v) => v.clientId),
      excluded: vectors
        .map((v, i) => ({ v, n: norms[i]! }))
        .filter(({ n }) => n > bound)
        .map(({ v, n }) => ({ clientId: v.clientId, reason: `norm-screen: ‖a‖ = ${n.toPrecision(3)} > ${this.factor} × median ${median.toPrecision(3)}` })),
    };
  }
}
