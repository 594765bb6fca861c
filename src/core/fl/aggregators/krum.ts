// Krum and Multi-Krum (Blanchard et al. 2017): score each vector by the sum of squared distances to its
// m − f − 2 nearest others; Krum keeps the best-scored vector, Multi-Krum averages the `select` best
// (unweighted). Needs m ≥ 2f + 3 vectors for f Byzantine ones.
import { dimensionOf, divided, type Aggregate, type Aggregator, type ClientVector } from './types.ts';

export class KrumAggregator implements Aggregator {
  readonly name: 'krum' | 'multi-krum';
  constructor(
    /** Byzantine vectors tolerated. */
    readonly f: number,
    /** Vectors averaged (1 = Krum); null = m − f. */
    readonly select: number | null,
  ) {
    this.name = select === 1 ? 'krum' : 'multi-krum';
  }

  /** The fewest vectors the rule works with, for f Byzantine ones. */
  static minimum(f: number): number {
    return 2 * f + 3;
  }

  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    const d = dimensionOf(vectors);
    const m = vectors.length;
    if (m < KrumAggregator.minimum(this.f)) throw new Error(`${this.name}: ${m} vectors, fewer than 2f + 3 = ${KrumAggregator.minimum(this.f)} for f = ${this.f}`);
    const dist = new Float64Array(m * m);
    for (let a = 0; a < m; a++) {
      for (let b = a + 1; b < m; b++) {
        let s = 0;
        const va = vectors[a]!.values;
        const vb = vectors[b]!.values;
        for (let i = 0; i < d; i++) {
          const x = va[i]! - vb[i]!;
          s += x * x;
        }
        dist[a * m + b] = s;
        dist[b * m + a] = s;
      }
    }
    const neighbours = m - this.f - 2;
    const scores = vectors.map((_, a) => {
      const row = Array.from({ length: m }, (_, b) => dist[a * m + b]!).filter((_, b) => b !== a).sort((x, y) => x - y);
      return row.slice(0, neighbours).reduce((s, x) => s + x, 0);
    });
    const order = scores.map((s, i) => ({ s, i })).sort((x, y) => x.s - y.s || x.i - y.i);
    const k = Math.min(m, this.select ?? m - this.f);
    const chosen = order.slice(0, k).map((o) => o.i);
    const out = new Float64Array(d);
    for (const c of chosen) {
      const v = vectors[c]!.values;
      for (let i = 0; i < d; i++) out[i] += v[i]! / k;
    }
    const kept = new Set(chosen);
    return {
      values: divided(out, divisor),
      used: chosen.map((c) => vectors[c]!.clientId),
      excluded: vectors.filter((_, c) => !kept.has(c)).map((v) => ({ clientId: v.clientId, reason: `${this.name}: not among the ${k} best-scored` })),
    };
  }
}
